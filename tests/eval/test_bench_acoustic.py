"""benchmarks/bench_acoustic.py end to end on a tiny random bundle with both acoustic stages: every measure of every
system lands in the markdown and JSON results, and the same seed gives the same measures."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest

from tests.helpers_eval import speech_corpus
from tests.helpers_lm import tiny_bundle

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    spec = importlib.util.spec_from_file_location("bench_acoustic", ROOT / "benchmarks" / "bench_acoustic.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bench")
    return tiny_bundle(folder / "bundle", parallel=True), speech_corpus(folder)


def _run(bundle, manifest, out, *extra) -> dict:
    assert _bench().main(["--models", str(bundle), "--manifest", str(manifest), "--utterances", "2", "--prompts", "2",
                          "--prompt-seconds", "1", "--seconds", "0.5", "--levels", "1,2,6", "--out", str(out), "--quiet", *extra]) == 0
    return json.loads(out.with_suffix(".json").read_text())


def test_the_benchmark_measures_both_stages_at_each_level_and_sweeps_iterations(corpus, tmp_path):
    bundle, manifest = corpus
    result = _run(bundle, manifest, tmp_path / "acoustic", "--asr", "tiny.en", "--iterations", "4,1", "--sweep-iterations", "1,2")
    names = [r["system"] for r in result["systems"]]
    assert names == ["AR, 4 levels", "parallel, 1 level", "parallel, 2 levels"]  # 6 > the stage's 4 levels: left out
    for row in result["systems"]:
        assert 0 <= row["wer"] and 0 <= row["codec_wer"] and 0 <= row["continuation_accuracy"] <= 1
        assert row["forward_passes_per_second"] > 0 and row["resynthesis_seconds_per_second"] > 0
    assert [r["level_1_iterations"] for r in result["sweep"]] == [1, 2, 4]
    passes = [r["forward_passes_per_second"] for r in result["sweep"]]
    assert passes == sorted(passes) and passes[0] < passes[-1]
    accuracy = result["token_accuracy"]
    assert len(accuracy["AR"]["accuracy_per_level"]) == 2 and len(accuracy["parallel"]["accuracy_per_level"]) == 4
    assert result["original_wer"] < 0.5 and result["asr"] == "Whisper tiny.en" and result["threads"] == 1
    text = (tmp_path / "acoustic.md").read_text()
    for heading in ("benchmarks/bench_acoustic.py --models", "## Resynthesis: intelligibility", "## Speaker", "## Token accuracy per level",
                    "## Cost", "## Level-1 iterations", "| parallel, 2 levels | 2 |"):
        assert heading in text, heading


def test_the_temperature_sweep_scores_each_level_1_temperature(corpus, tmp_path):
    bundle, manifest = corpus
    result = _run(bundle, manifest, tmp_path / "t", "--no-asr", "--levels", "2", "--iterations", "2,1", "--sweep-temperature", "0,0.8")
    rows = result["temperature_sweep"]
    assert [r["level_1_temperature"] for r in rows] == [0.8, 0.0] and all(r["levels"] == 2 for r in rows)
    assert all(-1 <= r["resynthesis_similarity"] <= 1 for r in rows)
    default = next(r for r in result["systems"] if r["system"] == "parallel, 2 levels")
    assert rows[0]["resynthesis_similarity"] == default["resynthesis_similarity"]  # 0.8 is the default: the same system
    assert "## Level-1 temperature" in (tmp_path / "t.md").read_text()


def test_guidance_adds_systems_measured_like_the_others(corpus, tmp_path):
    bundle, manifest = corpus
    result = _run(bundle, manifest, tmp_path / "g", "--no-asr", "--levels", "2", "--iterations", "2,1", "--guidance", "0,1.5")
    rows = {r["system"]: r for r in result["systems"]}
    assert list(rows) == ["AR, 4 levels", "parallel, 2 levels", "parallel, 2 levels, guidance 1.5"]  # 0: the plain stage
    plain, guided = rows["parallel, 2 levels"], rows["parallel, 2 levels, guidance 1.5"]
    assert plain["guidance"] == 0.0 and guided["guidance"] == 1.5
    assert guided["forward_passes_per_second"] > plain["forward_passes_per_second"]  # level 1 runs the baseline too
    assert 0 <= guided["continuation_accuracy"] <= 1 and "| parallel, 2 levels, guidance 1.5 | 2 |" in (tmp_path / "g.md").read_text()


def test_the_oracle_keeps_the_true_first_levels_in_resynthesis(corpus, tmp_path):
    bundle, manifest = corpus
    result = _run(bundle, manifest, tmp_path / "o", "--asr", "tiny.en", "--levels", "4", "--iterations", "2,1", "--oracle-levels", "1,3,4")
    assert [r["true_levels"] for r in result["oracle"]] == [1, 3]  # 4 of 4 levels would leave nothing to generate
    assert all(r["levels"] == 4 and r["wer"] >= 0 and -1 <= r["resynthesis_similarity"] <= 1 for r in result["oracle"])
    text = (tmp_path / "o.md").read_text()
    assert "## Which levels carry the words" in text and "| levels 1-3 |" in text and "| all (the codec alone) |" in text


def test_the_benchmark_is_seeded_and_runs_without_asr(corpus, tmp_path):
    bundle, manifest = corpus
    first, second = (_run(bundle, manifest, tmp_path / name, "--no-asr") for name in ("a", "b"))
    keys = ("wer", "resynthesis_similarity", "continuation_accuracy", "continuation_own_prompt")
    assert [[r[k] for k in keys] for r in first["systems"]] == [[r[k] for k in keys] for r in second["systems"]]
    assert first["token_accuracy"] == second["token_accuracy"] and first["systems"][0]["wer"] is None
    assert "no ASR" in (tmp_path / "a.md").read_text()


def test_the_benchmark_needs_the_parallel_stage(corpus, tmp_path, capsys):
    bundle, manifest = corpus
    only = tmp_path / "ar-only"
    shutil.copytree(bundle, only, ignore=shutil.ignore_patterns("parallel*"))
    assert _bench().main(["--models", str(only), "--manifest", str(manifest), "--out", str(tmp_path / "x"), "--quiet"]) == 1
    assert "needs the parallel acoustic stage" in capsys.readouterr().err and not (tmp_path / "x.md").exists()


def test_a_bundle_without_the_ar_stage_measures_the_parallel_one(corpus, tmp_path):
    bundle, manifest = corpus
    only = tmp_path / "parallel-only"
    shutil.copytree(bundle, only, ignore=shutil.ignore_patterns("coarse*", "fine*"))
    result = _run(only, manifest, tmp_path / "p", "--no-asr", "--levels", "2,4", "--iterations", "2,1")
    assert [r["system"] for r in result["systems"]] == ["parallel, 2 levels", "parallel, 4 levels"]
    assert list(result["token_accuracy"]) == ["parallel"] and len(result["token_accuracy"]["parallel"]["accuracy_per_level"]) == 4
    assert "| parallel, 4 levels | 4 |" in (tmp_path / "p.md").read_text()
