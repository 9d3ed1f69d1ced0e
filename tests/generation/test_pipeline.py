"""The pipeline end to end on tiny random models: lengths, determinism, the prompt kept, refusals."""

import json

import numpy as np
import pytest
import soundfile as sf
import torch

from audiolm.cli.main import main
from audiolm.errors import AudiolmError
from audiolm.generation.pipeline import AudioLM
from tests.conftest import write_sine
from tests.helpers_lm import tiny_bundle


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return tiny_bundle(tmp_path_factory.mktemp("bundle"))


def _prompt(seconds: float = 1.3) -> torch.Tensor:
    t = torch.arange(int(seconds * 16000)) / 16000
    return (0.3 * torch.sin(2 * torch.pi * 220 * t))[None, None]


@pytest.mark.parametrize("seconds", [0.5, 2.5])
def test_continuation_has_the_requested_length_and_keeps_the_prompt_tokens(bundle, seconds):
    audiolm = AudioLM.load(bundle)
    prompt = _prompt()
    ids, codes = audiolm.tokenize(prompt)
    out = audiolm.continue_audio(prompt, seconds, seed=1)
    new_seconds = out.wav.shape[-1] / 16000 - out.prompt_seconds
    assert abs(new_seconds - seconds) <= 0.04 + 1e-9  # within one semantic frame
    assert out.wav.shape[-1] == out.codes.shape[-1] * 320 and out.codes.shape[1] == 4
    assert torch.equal(out.semantic[:, : ids.shape[1]], ids) and torch.equal(out.codes[:, :, : codes.shape[2]], codes)
    assert out.semantic.shape[1] * 2 == out.codes.shape[2]
    assert set(out.seconds_per_stage) == {"tokenize", "semantic", "coarse", "fine", "codec", "watermark"}


def test_generation_is_seeded(bundle):
    audiolm = AudioLM.load(bundle)
    a, b, c = (audiolm.continue_audio(_prompt(), 1.5, seed=s).codes for s in (3, 3, 4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_unconditional_resynthesis_and_acoustic_only(bundle):
    audiolm = AudioLM.load(bundle)
    out = audiolm.generate(2.2, seed=0)
    assert out.prompt_seconds == 0 and abs(out.wav.shape[-1] / 16000 - 2.2) <= 0.04
    wav = _prompt(1.2)
    ids, _ = audiolm.tokenize(wav)
    voices = [audiolm.resynthesize(wav, seed=s) for s in (0, 1)]
    assert all(torch.equal(v.semantic, ids) for v in voices)  # the true semantic tokens
    assert not torch.equal(voices[0].codes, voices[1].codes)  # another voice per seed
    prompt_ids, prompt_codes = audiolm.tokenize(_prompt())
    baseline = audiolm.continue_audio(_prompt(), 1.0, seed=0, acoustic_only=True)
    assert baseline.codes.shape[2] == (prompt_ids.shape[1] + 25) * 2
    assert torch.equal(baseline.codes[:, :, : prompt_codes.shape[2]], prompt_codes)


def test_a_bundle_without_a_fine_lm_decodes_the_coarse_levels(bundle, tmp_path):
    import shutil

    coarse_only = tmp_path / "coarse-only"
    shutil.copytree(bundle, coarse_only)
    shutil.rmtree(coarse_only / "fine-lm")
    audiolm = AudioLM.load(coarse_only)
    out = audiolm.continue_audio(_prompt(), 1.0, seed=0)
    assert audiolm.fine is None and out.codes.shape[1] == 2  # the two coarse levels only
    assert out.wav.shape[-1] == out.codes.shape[-1] * 320
    assert audiolm.resynthesize(_prompt(1.0), seed=0).codes.shape[1] == 2


def test_a_bundle_with_mismatched_parts_is_refused(bundle, tmp_path):
    import shutil

    other = tiny_bundle(tmp_path / "other")
    shutil.rmtree(other / "semantic")
    shutil.copytree(bundle / "semantic", other / "semantic")
    config = json.loads((other / "coarse-lm" / "config.json").read_text())
    config["fingerprints"]["semantic"] = "0" * 16
    (other / "coarse-lm" / "config.json").write_text(json.dumps(config))
    with pytest.raises(AudiolmError, match="coarse LM was trained on other semantic tokens"):
        AudioLM.load(other)


def test_cli_continue_generate_resynth(bundle, tmp_path, capsys):
    prompt = write_sine(tmp_path / "prompt.wav", seconds=2.0, sample_rate=22050)
    code = main(["continue", str(prompt), "--seconds", "1.5", "--prompt-seconds", "1", "-o", str(tmp_path / "out.wav"),
                 "--models", str(bundle), "--plot", str(tmp_path / "out.png")])
    out, _ = capsys.readouterr()
    audio, rate = sf.read(str(tmp_path / "out.wav"))
    assert code == 0 and rate == 16000 and abs(len(audio) / rate - 2.5) <= 0.05 and (tmp_path / "out.png").stat().st_size > 1000
    assert "new audio from 1.00 s" in out
    assert main(["generate", "--seconds", "1", "-o", str(tmp_path / "gen.wav"), "--models", str(bundle),
                 "--semantic-temperature", "0"]) == 0
    assert main(["resynth", str(prompt), "--seed", "2", "-o", str(tmp_path / "re.wav"), "--models", str(bundle)]) == 0
    code = main(["continue", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "x.wav"), "--models", str(bundle)])
    _, err = capsys.readouterr()
    assert code == 1 and "missing.wav" in err and not (tmp_path / "x.wav").exists()
    silent = tmp_path / "silent.wav"
    sf.write(str(silent), np.zeros(32000, np.float32), 16000)
    for command in ("continue", "resynth"):  # a silent prompt has no voice to keep: refused, nothing written
        code = main([command, str(silent), "-o", str(tmp_path / "x.wav"), "--models", str(bundle)])
        _, err = capsys.readouterr()
        assert code == 1 and "silent.wav: audio is silent" in err and not (tmp_path / "x.wav").exists()
    code = main(["generate", "-o", str(tmp_path / "x.wav"), "--models", str(tmp_path / "nowhere")])
    _, err = capsys.readouterr()
    assert code == 1 and "no such model bundle" in err


def test_a_linked_codec_loads_and_a_rewrite_replaces_the_link_not_its_target(bundle, tmp_path):
    import shutil

    from audiolm.generation.bundle import write_bundle

    shared = tmp_path / "shared-codec"
    shutil.copytree(bundle / "codec", shared)
    parts = {"semantic": bundle / "semantic-lm", "coarse": bundle / "coarse-lm"}
    out = write_bundle(tmp_path / "music", bundle / "semantic", bundle / "codec", parts)
    shutil.rmtree(out / "codec")
    (out / "codec").symlink_to(shared, target_is_directory=True)  # two bundles sharing one codec
    assert AudioLM.load(out).fine is None
    (out / "semantic" / "MODEL_CARD.md").write_text("card")
    write_bundle(out, out / "semantic", bundle / "codec", parts)  # the tokenizer already in place stays, card and all
    assert (out / "semantic" / "MODEL_CARD.md").read_text() == "card"
    assert not (out / "codec").is_symlink() and (shared / "model.safetensors").is_file() and (out / "codec" / "model.safetensors").is_file()


def test_the_bundled_models_load_by_name_and_continue_their_prompts():
    import json

    from audiolm.audio.io import load_audio
    from audiolm.generation.pipeline import BUNDLED_DIR

    for name in ("speech", "piano"):
        audiolm = AudioLM.load() if name == "speech" else AudioLM.load(name)
        if name == "speech":  # the parallel acoustic stage (all 12 levels) and its acoustic-only baseline
            assert audiolm.coarse is None and audiolm.parallel_levels == 12 and audiolm.parallel_acoustic is not None
        else:  # the paper's piano model: the coarse LM alone
            assert audiolm.fine is None and audiolm.acoustic is None and audiolm.parallel is None
        prompts = json.loads((BUNDLED_DIR / name / "prompts" / "prompts.json").read_text())
        prompt = load_audio(BUNDLED_DIR / name / "prompts" / prompts[0]["file"], 16000)[None]
        out = audiolm.continue_audio(prompt, 0.5, seed=0)
        assert abs(out.prompt_seconds - 3.0) <= 0.04 and abs(out.wav.shape[-1] / 16000 - 3.5) <= 0.04
        assert torch.isfinite(out.wav).all() and out.wav.abs().max() > 1e-3  # real audio, not silence
        assert out.acoustic == ("parallel" if name == "speech" else "ar")
