"""The parallel acoustic stage inside a bundle: `--acoustic parallel|ar`, every level decoded, the prompt's codes kept,
levels, the acoustic-only baseline and guidance by it, the bundle's checks, and the CLI and bundle commands."""

import shutil

import pytest
import soundfile as sf
import torch

from audiolm.cli.main import main
from audiolm.errors import AudiolmError
from audiolm.generation.maskgit import ParallelSampling
from audiolm.generation.pipeline import AudioLM, StageSampling
from tests.conftest import write_sine
from tests.helpers_lm import tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory.mktemp("bundle"), parallel=True)


def _prompt(seconds: float = 1.3) -> torch.Tensor:
    t = torch.arange(int(seconds * 16000)) / 16000
    return (0.3 * torch.sin(2 * torch.pi * 220 * t))[None, None]


def test_auto_picks_the_parallel_stage_which_decodes_every_level_after_the_prompt(bundle):
    audiolm = AudioLM.load(bundle)
    assert audiolm.acoustic_stage() == "parallel" and audiolm.parallel_levels == 4
    prompt = _prompt()
    ids, codes = audiolm.tokenize(prompt, 4)
    out = audiolm.continue_audio(prompt, 1.0, seed=1)
    assert out.acoustic == "parallel" and out.forward_passes > 0
    assert out.codes.shape[1] == 4 and out.codes.shape[2] == (ids.shape[1] + 25) * 2  # 25 Hz semantic, 50 Hz acoustic
    assert torch.equal(out.codes[:, :, : codes.shape[2]], codes)  # the prompt's codes, every level, kept
    assert out.codes.min() >= 0 and out.codes.max() < 32  # codes, never the MASK id
    assert out.wav.shape[-1] == out.codes.shape[-1] * 320
    assert set(out.seconds_per_stage) == {"tokenize", "semantic", "parallel", "codec", "watermark"}


def test_the_ar_stage_stays_available_and_differs(bundle):
    audiolm = AudioLM.load(bundle)
    ar = audiolm.continue_audio(_prompt(), 1.0, seed=1, acoustic="ar")
    assert ar.acoustic == "ar" and ar.forward_passes == 0 and "coarse" in ar.seconds_per_stage
    assert ar.codes.shape[1] == audiolm.num_levels == 4


def test_levels_choose_how_many_codec_levels_the_parallel_stage_decodes(bundle):
    audiolm = AudioLM.load(bundle)
    one, every = (audiolm.resynthesize(_prompt(1.0), seed=0, levels=n) for n in (1, None))
    assert one.codes.shape[1] == 1 and every.codes.shape[1] == 4
    assert one.forward_passes < every.forward_passes
    with pytest.raises(AudiolmError, match="levels"):
        audiolm.resynthesize(_prompt(1.0), levels=5)
    with pytest.raises(AudiolmError, match="parallel stage"):
        audiolm.resynthesize(_prompt(1.0), acoustic="ar", levels=2)


def test_generation_is_seeded_and_iterations_are_forward_passes(bundle):
    audiolm = AudioLM.load(bundle)
    a, b, c = (audiolm.generate(1.0, seed=s) for s in (3, 3, 4))
    assert torch.equal(a.codes, b.codes) and not torch.equal(a.codes, c.codes)
    few = StageSampling(parallel=ParallelSampling(iterations=(2, 1)))
    many = StageSampling(parallel=ParallelSampling(iterations=(8, 1)))
    passes = [audiolm.generate(1.0, seed=0, sampling=s).forward_passes for s in (few, many)]
    assert passes[1] - passes[0] == 6  # one window: 6 more passes for level 1, the same for the rest


def test_the_acoustic_only_parallel_baseline_reads_no_semantic_ids(bundle):
    audiolm = AudioLM.load(bundle)
    prompt = _prompt()
    ids, codes = audiolm.tokenize(prompt, 4)
    out = audiolm.continue_audio(prompt, 1.0, seed=0, acoustic_only=True)
    assert out.acoustic == "parallel" and out.seconds_per_stage["semantic"] == 0.0
    assert torch.equal(out.codes[:, :, : codes.shape[2]], codes) and torch.equal(out.semantic, ids)


def test_guidance_runs_the_acoustic_only_stage_beside_and_needs_it(bundle, tmp_path, capsys):
    audiolm = AudioLM.load(bundle)
    plain = StageSampling(parallel=ParallelSampling(iterations=(4, 1)))
    guided = StageSampling(parallel=ParallelSampling(iterations=(4, 1), guidance=2.0))
    a, b = (audiolm.resynthesize(_prompt(), seed=0, sampling=s) for s in (plain, guided))
    windows = a.forward_passes // (4 + 3)  # 4 levels: 4 passes for level 1, 1 for each later level
    assert windows >= 1 and b.forward_passes - a.forward_passes == 4 * windows  # level 1's passes, again for the baseline
    assert a.codes.shape == b.codes.shape and not torch.equal(a.codes[:, 0], b.codes[:, 0])
    with pytest.raises(AudiolmError, match="guidance"):
        audiolm.generate(1.0, sampling=StageSampling(parallel=ParallelSampling(guidance=11.0)))  # past limits.MAX_GUIDANCE
    lacking = tmp_path / "no-baseline"
    shutil.copytree(bundle, lacking, ignore=shutil.ignore_patterns("parallel-acoustic-lm"))
    with pytest.raises(AudiolmError, match="guidance needs the acoustic-only parallel stage"):
        AudioLM.load(lacking).generate(1.0, sampling=guided)
    out = tmp_path / "g.wav"
    assert main(["generate", "--models", str(bundle), "--seconds", "0.5", "-o", str(out), "--guidance", "1.5"]) == 0 and out.exists()
    assert main(["generate", "--models", str(lacking), "--seconds", "0.5", "-o", str(out), "--guidance", "1"]) == 1
    assert "guidance needs" in capsys.readouterr().err


def test_resynthesis_can_keep_the_inputs_first_levels(bundle):
    audiolm = AudioLM.load(bundle)
    wav = _prompt(0.9)
    _, codes = audiolm.tokenize(wav, 4)
    out = audiolm.resynthesize(wav, seed=0, keep_levels=2)
    assert out.codes.shape == codes.shape and torch.equal(out.codes[:, :2], codes[:, :2])
    assert not torch.equal(out.codes[:, 2:], codes[:, 2:])  # the later levels generated (random tiny models: not the input's)
    for bad in ({"keep_levels": 4}, {"keep_levels": 1, "acoustic": "ar"}, {"keep_levels": 2, "levels": 2}):
        with pytest.raises(AudiolmError, match="keep_levels"):
            audiolm.resynthesize(wav, **bad)


def test_a_bundle_with_only_the_parallel_stage_works_and_refuses_the_ar_stage(bundle, tmp_path):
    only = tmp_path / "parallel-only"
    shutil.copytree(bundle, only)
    for part in ("coarse-lm", "fine-lm", "coarse-acoustic-lm"):
        shutil.rmtree(only / part)
    audiolm = AudioLM.load(only)
    assert audiolm.coarse is None and audiolm.continue_audio(_prompt(), 0.5).codes.shape[1] == 4
    with pytest.raises(AudiolmError, match="no autoregressive acoustic stage"):
        audiolm.continue_audio(_prompt(), 0.5, acoustic="ar")
    shutil.rmtree(only / "parallel-acoustic-lm")
    with pytest.raises(AudiolmError, match="no acoustic-only parallel stage"):
        AudioLM.load(only).continue_audio(_prompt(), 0.5, acoustic_only=True)
    shutil.rmtree(only / "parallel-lm")
    with pytest.raises(AudiolmError, match="no acoustic stage"):
        AudioLM.load(only)


def test_a_parallel_stage_of_other_codes_is_refused(bundle, tmp_path):
    other = tiny_bundle(tmp_path / "other", parallel=True)
    mixed = tmp_path / "mixed"
    shutil.copytree(bundle, mixed)
    shutil.rmtree(mixed / "codec")
    torch.manual_seed(1)
    from audiolm.codec.model import Codec, CodecConfig
    from tests.helpers_lm import TINY_CODEC

    Codec(CodecConfig(**TINY_CODEC)).save(mixed / "codec")  # a codec of other codebooks
    with pytest.raises(AudiolmError, match="trained on other codec tokens"):
        AudioLM.load(mixed)
    assert AudioLM.load(other).parallel is not None


def test_cli_acoustic_levels_and_iterations(bundle, tmp_path, capsys):
    prompt = write_sine(tmp_path / "prompt.wav", seconds=1.2)
    out = tmp_path / "out.wav"
    assert main(["continue", str(prompt), "--models", str(bundle), "--seconds", "0.6", "-o", str(out), "--acoustic", "parallel",
                 "--levels", "2", "--iterations", "4,1", "--parallel-temperature", "0.5"]) == 0
    assert "parallel" in capsys.readouterr().out
    assert abs(sf.info(out).duration - 1.2 - 0.6) <= 0.04 + 1e-9
    for args, message in ((["--levels", "0"], "--levels"), (["--iterations", "4,0"], "--iterations"),
                          (["--iterations", "x"], "--iterations")):
        assert main(["generate", "--models", str(bundle), "--seconds", "0.5", "-o", str(tmp_path / "g.wav"), *args]) == 1
        assert message in capsys.readouterr().err


def test_bundle_command_writes_a_parallel_only_bundle(bundle, tmp_path):
    out = tmp_path / "assembled"
    assert main(["bundle", "-o", str(out), "--tokenizer", str(bundle / "semantic"), "--codec", str(bundle / "codec"),
          "--semantic-lm", str(bundle / "semantic-lm"), "--parallel-lm", str(bundle / "parallel-lm"),
          "--parallel-acoustic-lm", str(bundle / "parallel-acoustic-lm")]) == 0
    audiolm = AudioLM.load(out)
    assert audiolm.coarse is None and audiolm.parallel is not None and audiolm.parallel_acoustic is not None
    assert main(["bundle", "-o", str(tmp_path / "none"), "--tokenizer", str(bundle / "semantic"), "--codec", str(bundle / "codec"),
                 "--semantic-lm", str(bundle / "semantic-lm")]) == 1
    assert not (tmp_path / "none").exists()
