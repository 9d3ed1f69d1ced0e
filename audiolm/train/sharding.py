"""How the training loop holds its modules across processes (torchrun), and activation checkpointing.

    sharding = Sharding(modules, "fsdp", processes=4, device=device, bf16=True, checkpointing=True)
    sharding.models                        # what the task's losses call: DDP wrappers, or the FSDP-sharded modules
    with sharding.no_sync(): ...           # micro-batches before the last: gradients stay local
    states = sharding.full_states()        # collective: each module's full state dict, on the main process's CPU
    optimizer_state = sharding.full_optimizer_state(optimizer)      # collective too
    load_optimizer_state(optimizer, state)                          # a full state dict, sharded like the parameters
    task.export(sharding.whole(), run_dir)                          # collective: whole modules on the main process

`train.strategy=ddp` (DistributedDataParallel): every process holds the whole model, gradients are all-reduced.
`train.strategy=fsdp` (FSDP2, `fully_shard`): each process holds 1/N of every weight, gradient and AdamW moment; a
unit's weights are gathered just before it runs and freed after, its gradients reduce-scattered. The units are each
of a module's `blocks` (a ModuleList: the Transformer's, the SSL encoder's) and what is left of the module around them.
On CUDA with bf16 precision a unit is gathered and computed in bf16 and its gradients are reduced in fp32; the sharded
weights and the optimizer stay fp32. On the CPU (gloo) everything stays fp32.
`train.activation_checkpointing` wraps each block (under either strategy, or none): its activations are recomputed in
the backward pass instead of kept (less memory, about one more forward of compute); the state dict keys are unchanged.

Files never see the sharding: checkpoints hold full tensors with the names and the optimizer layout of a module trained
in one process, so a run resumes under either strategy whichever wrote its checkpoint.
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Iterable, Iterator

import torch
from torch import nn
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor
from torch.nn.parallel import DistributedDataParallel

STRATEGIES = ("ddp", "fsdp")


class Sharding:
    """The loop's `modules` (name -> module, on `device`) across `processes` processes; trained modules (any parameter
    requiring grad) are wrapped or sharded when there are several processes, others stay whole on every process."""

    def __init__(self, modules: dict[str, nn.Module], strategy: str, processes: int, device: torch.device, bf16: bool,
                 checkpointing: bool, main: bool = True) -> None:
        assert strategy in STRATEGIES, f"strategy must be one of {STRATEGIES}, got {strategy!r}"
        self.modules, self.main = modules, main
        trained = [name for name, m in modules.items() if any(p.requires_grad for p in m.parameters())]
        self.sharded = strategy == "fsdp" and processes > 1
        # for export: each sharded module's copy, its parameters on the meta device (no memory), filled when gathered
        self._blueprints = {name: _blueprint(modules[name]) for name in trained} if self.sharded and main else {}
        if checkpointing:
            for module in modules.values():
                for i, block in enumerate(_blocks(module)):
                    module.blocks[i] = checkpoint_wrapper(block)
        self.models = dict(modules)
        if processes > 1 and not self.sharded:
            for name in trained:
                self.models[name] = DistributedDataParallel(modules[name], device_ids=[device.index] if device.type == "cuda" else None)
        if self.sharded:
            mesh = init_device_mesh(device.type, (processes,))
            bf16 = bf16 and device.type == "cuda"
            policy = MixedPrecisionPolicy(param_dtype=torch.bfloat16 if bf16 else None, reduce_dtype=torch.float32 if bf16 else None)
            for name in trained:
                for block in _blocks(modules[name]):
                    fully_shard(block, mesh=mesh, mp_policy=policy)
                fully_shard(modules[name], mesh=mesh, mp_policy=policy)  # the module itself: it stays the object the task holds

    @contextlib.contextmanager
    def no_sync(self) -> Iterator[None]:
        """Gradients of the backward passes inside stay on each process (summed there); the next backward outside
        synchronises them all."""
        with contextlib.ExitStack() as stack:
            for model in self.models.values():
                if isinstance(model, DistributedDataParallel):
                    stack.enter_context(model.no_sync())
                elif isinstance(model, FSDPModule):
                    model.set_requires_gradient_sync(False)
                    stack.callback(model.set_requires_gradient_sync, True)
            yield

    def full_states(self) -> dict[str, dict[str, torch.Tensor]]:
        """Each module's state dict with full tensors, on the CPU on the main process; collective under FSDP (every
        process calls it; the others get empty dicts)."""
        return {name: _gathered(module.state_dict().items(), self.main) for name, module in self.modules.items()}

    def full_optimizer_state(self, optimizer: torch.optim.Optimizer) -> dict:
        """`optimizer.state_dict()` with full tensors (what one process training the whole model would hold), on the
        main process; collective under FSDP (the others get an empty dict)."""
        state = optimizer.state_dict()
        if not self.sharded:
            return state
        gathered = {index: _gathered(values.items(), self.main) for index, values in state["state"].items()}
        return {"state": gathered, "param_groups": state["param_groups"]} if self.main else {}

    def whole(self) -> dict[str, nn.Module]:
        """The modules whole (for `Task.export` on the main process); collective under FSDP, where the main process
        gets copies holding the gathered weights on the CPU (the sharded modules cannot run there alone)."""
        if not self.sharded:
            return self.modules
        states = self.full_states()
        whole = dict(self.modules)
        for name, blueprint in self._blueprints.items():
            blueprint.load_state_dict(states[name], assign=True)
            whole[name] = blueprint.to("cpu")  # its buffers that are not in the state dict, e.g. a rotary table
        return whole


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict) -> None:
    """Load a full `optimizer.state_dict()` (from `Sharding.full_optimizer_state`, or one process): under FSDP each
    tensor shaped like its parameter (AdamW's moments) is sharded like it first. Every process loads the same file,
    so each keeps its own shard without communication."""
    params = [p for group in optimizer.param_groups for p in group["params"]]
    for index, values in state["state"].items():
        param = params[int(index)]
        if isinstance(param, DTensor):
            for key, value in values.items():
                if isinstance(value, torch.Tensor) and value.dim() and value.shape == param.shape:
                    values[key] = distribute_tensor(value.to(param.device), param.device_mesh, param.placements, src_data_rank=None)
    optimizer.load_state_dict(state)


def _blocks(module: nn.Module) -> list[nn.Module]:
    """A module's repeated blocks: its `blocks` ModuleList (the units of FSDP and activation checkpointing), else none."""
    blocks = getattr(module, "blocks", None)
    return list(blocks) if isinstance(blocks, nn.ModuleList) else []


def _blueprint(module: nn.Module) -> nn.Module:
    """A deep copy of `module` whose parameters are on the meta device: the structure without the weights' memory
    (buffers are copied as they are)."""
    memo = {id(p): nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad) for p in module.parameters()}
    return copy.deepcopy(module, memo)


def _gathered(items: Iterable[tuple], main: bool) -> dict:
    """{key: tensor} with each sharded tensor gathered whole (every process must call this, in the same order), on the
    CPU; empty except on the main process. Other values pass through."""
    out = {}
    for key, value in items:
        if isinstance(value, DTensor):
            value = value.full_tensor()
        if main:
            out[key] = value.detach().cpu() if isinstance(value, torch.Tensor) else value
    return out
