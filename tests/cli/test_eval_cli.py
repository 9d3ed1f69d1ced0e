"""`audiolm eval` end to end on a tiny random bundle and a few synthesized held-out utterances, with the real
evaluators (resemblyzer, Whisper base where installed, else tiny.en): every section lands in results.json and the
markdown report."""

import json

from audiolm.cli.main import main
from audiolm.eval.asr import default_model
from tests.helpers_eval import speech_corpus as _corpus
from tests.helpers_lm import tiny_bundle


def test_eval_writes_every_section(tmp_path, capsys):
    bundle = tiny_bundle(tmp_path / "bundle")
    manifest = _corpus(tmp_path)
    out = tmp_path / "report"
    code = main(["eval", "--models", str(bundle), "--manifest", str(manifest), "-o", str(out), "--prompts", "2", "--prompt-seconds", "1",
                 "--seconds", "0.5", "--resynth", "2", "--pairs", "2", "--quiet"])
    assert code == 0 and "report.md" in capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    speaker = results["continuation"]["speaker"]
    assert set(speaker) == {"prompt", "full", "acoustic-only"} and speaker["prompt"]["speakers"] == 2
    assert all(0 <= row["accuracy"] <= 1 for row in speaker.values())
    wer = results["intelligibility"]["wer"]
    assert len(wer) == 4 and wer["original"] < 0.5  # Whisper understands the real synthesized speech
    asr = results["intelligibility"]["asr"]
    assert asr == f"Whisper {default_model()}" and results["config"]["asr"] == default_model()  # base where installed
    assert results["semantic_lm"]["perplexity"] > 1 and results["minimal_pairs"]["lexical"]["pairs"] == 2
    coarse = results["coarse_lm"]["systems"]
    assert set(coarse) == {"full", "acoustic-only"} and all(len(row["ce_per_level"]) == 2 for row in coarse.values())
    report = (out / "report.md").read_text()
    assert f"{asr} word error rate" in report
    for heading in ("## Continuation", "## Intelligibility", "## Semantic LM", "## Coarse LM", "## Minimal pairs", "continuation0.png"):
        assert heading in report
    assert (out / "continuation0.png").stat().st_size > 1000 and (out / "examples" / "prompt0-full.wav").is_file()


def test_eval_refuses_a_split_without_entries(tmp_path, capsys):
    bundle = tiny_bundle(tmp_path / "bundle")
    manifest = _corpus(tmp_path)
    assert main(["eval", "--models", str(bundle), "--manifest", str(manifest), "-o", str(tmp_path / "r"), "--split", "dev"]) == 1
    assert "no entries in split 'dev'" in capsys.readouterr().err


def test_eval_of_a_music_bundle_reports_continuations_perplexity_and_codec(tmp_path, capsys):
    from tests.helpers_codec import tone_manifest

    bundle = tiny_bundle(tmp_path / "bundle")
    manifest = tone_manifest(tmp_path / "tones", count=3, seconds=2.0)
    out = tmp_path / "report"
    assert main(["eval", "--kind", "piano", "--models", str(bundle), "--manifest", str(manifest), "--split", "valid", "-o", str(out),
                 "--prompts", "1", "--prompt-seconds", "1", "--seconds", "0.5", "--resynth", "1", "--quiet"]) == 0
    results = json.loads((out / "results.json").read_text())
    assert "speaker" not in results["continuation"] and "intelligibility" not in results and "minimal_pairs" not in results
    assert set(results["codec"]["mel_distance"]) == {"4 levels (the LMs')", "4 levels"} and results["semantic_lm"]["tokens"] > 0
    assert "## Codec" in (out / "report.md").read_text() and (out / "continuation0.png").is_file()
