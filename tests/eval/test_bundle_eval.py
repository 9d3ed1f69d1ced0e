"""`audiolm eval` of a bundle with both acoustic stages (AR coarse LM and parallel): every acoustic section measures
each stage, named by stage, on the same prompts and seeds; a bundle with only the parallel stage keeps the plain names."""

import json
import shutil

import pytest

from audiolm.eval.bundle_eval import BundleEvaluation, EvalConfig, evaluate_bundle
from tests.helpers_eval import speech_corpus
from tests.helpers_lm import tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")
STAGES = ("AR", "parallel")


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory.mktemp("bundle"), parallel=True)


def test_the_report_and_results_carry_both_acoustic_stages(bundle, tmp_path):
    manifest = speech_corpus(tmp_path)
    out = tmp_path / "report"
    config = EvalConfig(prompts=2, prompt_seconds=1.0, continue_seconds=0.5, resynth=2, pairs=2, examples=1, asr="tiny.en")
    evaluate_bundle(bundle, manifest, out, config, progress=False, log=lambda _: None)
    results = json.loads((out / "results.json").read_text())
    assert set(results["acoustic_stages"]) == set(STAGES) and results["acoustic_stages"]["parallel"]["levels"] == 4
    continuation = results["continuation"]
    systems = {f"{kind} ({stage})" for kind in ("full", "acoustic-only") for stage in STAGES}
    assert set(continuation["speaker"]) == systems | {"prompt"}
    assert set(continuation["generation_seconds_per_second"]) == systems
    assert continuation["acoustic"]["full (parallel)"] == "parallel" and continuation["acoustic"]["full (AR)"] == "ar"
    assert all(v > 0 for v in continuation["forward_passes_per_second"].values())
    wer = results["intelligibility"]["wer"]
    resynthesis = {f"resynthesis (true semantic tokens, {stage})" for stage in STAGES}
    assert set(wer) == {"original", "codec, 4 levels (the AR and parallel stages')", "codec, 4 levels"} | resynthesis
    assert set(results["intelligibility"]["resynthesis_speaker_similarity"]) == resynthesis
    acoustic_lms = results["coarse_lm"]["systems"]
    assert set(acoustic_lms) == systems
    assert [len(acoustic_lms[f"full ({stage})"]["ce_per_level"]) for stage in STAGES] == [2, 4]  # coarse levels; every level
    assert acoustic_lms["full (parallel)"]["objective"] == "masked" and "shuffled_ce_1" in acoustic_lms["full (parallel)"]
    assert "shuffled_ce_1" not in acoustic_lms["acoustic-only (parallel)"]
    report = (out / "report.md").read_text()
    for text in ("**AR**: autoregressive coarse LM + fine LM", "**parallel**: parallel", "## Acoustic LMs",
                 "| full (parallel) | parallel |", "continuation, acoustic-only (AR) model",
                 "resynthesis (true semantic tokens, parallel)"):
        assert text in report, text
    assert (out / "examples" / "prompt0-full-parallel.wav").is_file() and (out / "examples" / "resynth0-ar.wav").is_file()


def test_the_acoustic_lm_section_is_seeded(bundle, tmp_path):
    manifest = speech_corpus(tmp_path)
    config = EvalConfig(resynth=2, asr="tiny.en")
    a, b = (BundleEvaluation(bundle, manifest, tmp_path / "r", config, progress=False).coarse_lm() for _ in range(2))
    assert a == b
    other = BundleEvaluation(bundle, manifest, tmp_path / "r", EvalConfig(resynth=2, asr="tiny.en", seed=1), progress=False).coarse_lm()
    assert other["systems"]["full (parallel)"] != a["systems"]["full (parallel)"]  # other masks
    assert other["systems"]["full (AR)"] == a["systems"]["full (AR)"]  # teacher-forced: no draws


def test_a_bundle_with_only_the_parallel_stage_keeps_the_plain_names(bundle, tmp_path):
    from tests.helpers_codec import tone_manifest

    only = tmp_path / "parallel-only"
    shutil.copytree(bundle, only)
    for part in ("coarse-lm", "fine-lm", "coarse-acoustic-lm"):
        shutil.rmtree(only / part)
    manifest = tone_manifest(tmp_path / "tones", count=3, seconds=2.0)
    config = EvalConfig(kind="piano", split="valid", prompts=1, prompt_seconds=1.0, continue_seconds=0.5, resynth=1, asr="tiny.en")
    results = evaluate_bundle(only, manifest, tmp_path / "report", config, progress=False, log=lambda _: None)
    assert set(results["continuation"]["generation_seconds_per_second"]) == {"full", "acoustic-only"}
    assert set(results["coarse_lm"]["systems"]) == {"full", "acoustic-only"}
    assert set(results["codec"]["mel_distance"]) == {"4 levels (the LMs')", "4 levels"}
    assert "**AR**" not in (tmp_path / "report" / "report.md").read_text()
