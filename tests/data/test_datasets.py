"""AudioClips: validation clips cover every speaker; crops are a function of the step's generator."""

import json

import numpy as np
import soundfile as sf
import torch

from audiolm.data.datasets import AudioClips


def _manifest(tmp_path) -> str:
    lines = []
    for speaker, count in (("a", 3), ("b", 2), ("c", 1)):  # a manifest lists each speaker's clips together
        for i in range(count):
            path = tmp_path / f"{speaker}{i}.wav"
            level = {"a": 0.1, "b": 0.2, "c": 0.3}[speaker] + 0.01 * i  # identifies the clip
            sf.write(path, np.full(1600, level, dtype=np.float32), 16000)
            lines.append(json.dumps({"id": f"{speaker}{i}", "path": path.name, "duration": 0.1, "sample_rate": 16000,
                                     "num_channels": 1, "speaker": speaker}))
    (tmp_path / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    return str(tmp_path / "manifest.jsonl")


def test_fixed_clips_take_each_speaker_in_turn(tmp_path):
    clips = AudioClips(_manifest(tmp_path))
    levels = [round(float(c[0, 0, 0]), 2) for c in clips.fixed(5, 800)]
    assert levels == [0.1, 0.2, 0.3, 0.11, 0.21]  # a, b, c, then a and b again
    assert all(c.shape == (1, 1, 800) for c in clips.fixed(5, 800))
    assert len(clips.fixed(100, 800)) == 6


def test_crops_are_a_function_of_the_generator(tmp_path):
    clips = AudioClips(_manifest(tmp_path))
    a = clips.crops(4, 2000, torch.Generator().manual_seed(3))
    assert a.shape == (4, 1, 2000) and torch.equal(a, clips.crops(4, 2000, torch.Generator().manual_seed(3)))
    assert (a[:, :, 1600:] == 0).all()  # clips shorter than the crop are zero-padded
