"""`audiolm semantic eval` on a tiny corpus of "phones" (one tone per phone) with alignments."""

import random

import numpy as np
import soundfile as sf

from audiolm.cli.main import main
from audiolm.data.manifest import Entry, write_manifest
from tests.helpers_codec import tone_manifest

PHONES = {"a": 220.0, "b": 330.0, "c": 495.0, "d": 740.0}


def _corpus(folder, speakers: int = 3, utterances: int = 3) -> str:
    rng = random.Random(0)
    entries = []
    for s in range(speakers):
        for u in range(utterances):
            labels = ["sil"]
            for _ in range(16):
                labels.append(rng.choice([p for p in PHONES if p != labels[-1]]))
            labels.append("sil")
            t = np.arange(1600) / 16000  # 0.1 s per phone
            wav = np.concatenate([0.3 * np.sin(2 * np.pi * PHONES[p] * (1 + 0.05 * s) * t) if p in PHONES else 0.001 * np.ones(1600)
                                  for p in labels]).astype(np.float32)
            sf.write(str(folder / f"s{s}-{u}.wav"), wav, 16000)
            phones = [[p, round(i * 0.1, 3), round((i + 1) * 0.1, 3)] for i, p in enumerate(labels)]
            entries.append(Entry(id=f"s{s}-{u}", path=f"s{s}-{u}.wav", duration=len(labels) * 0.1, sample_rate=16000,
                                 speaker=f"s{s}", split="test", phones=phones))
    write_manifest(folder / "manifest.jsonl", entries)
    return str(folder / "manifest.jsonl")


def test_semantic_eval_scores_mfcc_and_a_tokenizer(tmp_path, capsys):
    manifest = _corpus(tmp_path)
    tones = tone_manifest(tmp_path / "tones", count=4, seconds=1.0)
    assert main(["semantic", "fit-kmeans", "--encoder", "mfcc-25hz", "-k", "8", "--manifest", str(tones), "-o",
                 str(tmp_path / "tok"), "--quiet"]) == 0
    capsys.readouterr()
    code = main(["semantic", "eval", str(tmp_path / "tok"), "--mfcc", "--manifest", manifest, "--splits", "test", "--quiet",
                 "-o", str(tmp_path / "report.md")])
    out, _ = capsys.readouterr()
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("| ") and "representation" not in line]
    assert [r.split("|")[1].strip() for r in rows] == ["MFCC (continuous)", "tok (continuous)", "tok (K=8)"]
    mfcc_within = float(rows[0].split("|")[3])
    assert mfcc_within < 10  # tones per phone: MFCCs tell the phones apart
    assert "9 utterances of 3 held-out speakers" in (tmp_path / "report.md").read_text()


def test_semantic_eval_needs_alignments(tmp_path, capsys):
    tones = tone_manifest(tmp_path / "tones", count=3, seconds=0.5)
    code = main(["semantic", "eval", "--mfcc", "--manifest", str(tones), "--quiet"])
    _, err = capsys.readouterr()
    assert code == 1 and "no entries with phone alignments" in err
