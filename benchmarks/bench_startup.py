"""Start-up cost of the CLI: `audiolm --help`, the imports `audiolm continue` needs, and the whole command.

    .venv/bin/python benchmarks/bench_startup.py --label after
    git worktree add /tmp/before <commit> && .venv/bin/python benchmarks/bench_startup.py --repo /tmp/before --label before
    .venv/bin/python benchmarks/bench_startup.py --label "parallel, 12 levels" --models models/speech --continue-args "--acoustic parallel"

Each figure is the best of `--repeats` fresh processes (the least disturbed by whatever else the machine runs);
`-X importtime` gives the cumulative import time of the heaviest packages. The whole command's fastest run also
reports its own stage timings (tokenize, semantic LM, acoustic stage, codec); start-up is the wall time they leave
(imports, loading the models, reading the prompt, writing the wav). Results for every label are kept in
benchmarks/results/startup.json and printed as tables into benchmarks/results/startup.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
CONTINUE_IMPORTS = "import audiolm.cli.main, audiolm.generation.pipeline, audiolm.audio.io"  # what `continue` imports
WATCHED = ("torch", "numba", "scipy.signal", "pyloudnorm", "audiolm.audio.dsp", "audiolm.lm.fused_step", "audiolm.generation.pipeline")


def best_wall(command: list[str], env: dict, repeats: int, cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of the fastest of `repeats` runs: CPU time (user + system of the child) barely
    changes with what else the machine runs, wall time does."""
    return best_run(command, env, repeats, cwd)[:2]


def best_run(command: list[str], env: dict, repeats: int, cwd: Path) -> tuple[float, float, str]:
    """`best_wall`, and the standard output of the run with the least wall time."""
    best = (float("inf"), float("inf"), "")
    for _ in range(repeats):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        out = subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True, text=True).stdout
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        best = (min(best[0], wall), min(best[1], cpu), out if wall < best[0] else best[2])
    return best


def stage_seconds(output: str) -> dict[str, float]:
    """The stage timings `audiolm continue` prints: "...; tokenize 0.0 s, semantic 0.6 s, parallel 1.4 s, codec 0.1 s)"."""
    return {name: float(value) for name, value in re.findall(r"(\w+) (\d+\.\d+) s", output.rsplit(";", 1)[-1])}


def import_breakdown(env: dict, repeats: int, cwd: Path) -> dict[str, float]:
    """Cumulative seconds per watched module (the fastest of `repeats` runs), from `python -X importtime`."""
    best: dict[str, float] = {}
    for _ in range(repeats):
        err = subprocess.run([sys.executable, "-X", "importtime", "-c", CONTINUE_IMPORTS], env=env, cwd=cwd, check=True,
                             capture_output=True, text=True).stderr
        seen: dict[str, float] = {}
        for line in err.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( *)(\S+)", line)
            if match and match.group(3) in WATCHED:
                seen[match.group(3)] = max(seen.get(match.group(3), 0.0), int(match.group(1)) / 1e6)
        for name in WATCHED:
            best[name] = min(best.get(name, float("inf")), seen.get(name, 0.0))
    return best


def measure(repo: Path, repeats: int, command: bool, models: str = "speech", extra: list[str] | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(repo)}
    cli = [sys.executable, "-m", "audiolm.cli.main"]
    result = {
        "help_s": best_wall([*cli, "--help"], env, repeats, repo),  # (wall, cpu)
        "continue_imports_s": best_wall([sys.executable, "-c", CONTINUE_IMPORTS], env, repeats, repo),
        "imports": import_breakdown(env, repeats, repo),
    }
    if command:
        prompt = repo / "models" / "speech" / "prompts" / "espeak-en-029-steph2-p70.wav"
        with tempfile.TemporaryDirectory() as tmp:
            run = [*cli, "continue", str(prompt), "--seconds", "7", "-o", str(Path(tmp) / "out.wav"), "--models", models, *(extra or [])]
            subprocess.run(run, env=env, cwd=repo, check=True, capture_output=True)  # numba's compile cache warm
            wall, cpu, output = best_run(run, env, max(2, repeats // 2), repo)
            result["continue_7s_s"] = (wall, cpu)
            stages = stage_seconds(output)
            result["continue_stages_s"] = {"start-up": wall - sum(stages.values()), **stages}
            result["continue_args"] = " ".join(run[3:]).replace(str(prompt), "PROMPT").replace(str(Path(tmp) / "out.wav"), "OUT.wav")
    return result


def write_tables(results: dict) -> str:
    def pair(value: list[float] | None) -> str:  # "wall / cpu"
        return f"{value[0]:.2f} / {value[1]:.2f} s" if value else "-"

    lines = ["| label | `audiolm --help` wall / CPU | imports of `continue` wall / CPU | whole `continue` 3 s + 7 s wall / CPU | "
             + " | ".join(f"`{name}`" for name in WATCHED) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(WATCHED)]
    for label, r in results.items():
        cells = " | ".join(f"{r['imports'].get(name, 0.0):.2f}" for name in WATCHED)
        lines.append(f"| {label} | {pair(r['help_s'])} | {pair(r['continue_imports_s'])} | {pair(r.get('continue_7s_s'))} | {cells} |")
    profiled = {label: r for label, r in results.items() if "continue_stages_s" in r}
    if profiled:
        lines += ["", "Where the whole command's time goes (its fastest run; seconds of wall time):", "",
                  "| label | command | start-up | tokenize | semantic LM | acoustic stage | codec |", "|---|---|---:|---:|---:|---:|---:|"]
        for label, r in profiled.items():
            t = r["continue_stages_s"]
            acoustic = sum(t.get(k, 0.0) for k in ("parallel", "coarse", "fine"))
            lines.append(f"| {label} | `{r['continue_args']}` | {t['start-up']:.2f} | {t.get('tokenize', 0):.2f} | "
                         f"{t.get('semantic', 0):.2f} | {acoustic:.2f} | {t.get('codec', 0):.2f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repo", type=Path, default=Path(__file__).resolve().parents[1], help="checkout to measure")
    parser.add_argument("--label", required=True, help="row name in the results table, e.g. before / after")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--no-command", action="store_true", help="skip the whole `continue` command")
    parser.add_argument("--models", default="speech", help="the bundle `continue` runs (default: the bundled speech models)")
    parser.add_argument("--continue-args", default="", help="more options for `continue`, e.g. \"--acoustic ar --threads 1\"")
    args = parser.parse_args()

    result = measure(args.repo.resolve(), args.repeats, not args.no_command, args.models, args.continue_args.split())
    result["machine"] = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    store = RESULTS / "startup.json"
    results = json.loads(store.read_text()) if store.exists() else {}
    results[args.label] = result
    RESULTS.mkdir(exist_ok=True)
    store.write_text(json.dumps(results, indent=2) + "\n")
    table = write_tables(results)
    print(table)
    (RESULTS / "startup.md").write_text(
        "# Start-up time\n\nCommand: `.venv/bin/python benchmarks/bench_startup.py --label LABEL [--repo CHECKOUT]`; each figure "
        "is the best of several fresh processes, as wall time and as CPU time (user + system: what the process itself costs, "
        "nearly independent of other load on the machine); import columns are `python -X importtime` cumulative seconds of that module "
        "within the imports `audiolm continue` needs (0.00: not imported). Machine: " + result["machine"] + ".\n\n" + table + "\n")


if __name__ == "__main__":
    main()
