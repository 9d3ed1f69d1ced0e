"""`audiolm codec encode | decode` on a tiny saved codec: round trip, bitrates, and refusals."""

import pytest
import soundfile as sf
import torch

from audiolm.cli.main import main
from audiolm.codec.codes_file import load_codes
from audiolm.codec.model import Codec, CodecConfig
from tests.conftest import write_sine

TINY = dict(encoder_dim=16, encoder_layers=1, encoder_channels=4, latent_dim=16,
             num_codebooks=4, codebook_size=32, decoder_dim=32, decoder_layers=1)


@pytest.fixture
def model_dir(tmp_path):
    torch.manual_seed(0)
    return Codec(CodecConfig(**TINY)).save(tmp_path / "codec")


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_encode_decode_round_trip_at_chosen_bitrates(model_dir, tmp_path, capsys):
    source = write_sine(tmp_path / "in.flac", seconds=1.03, sample_rate=22050, channels=2)
    code, out, _ = run(capsys, "codec", "encode", source, "-o", tmp_path / "x.codes", "--model", model_dir, "--bitrate", "0.5")
    assert code == 0 and "2 levels" in out  # 250 bit/s per level of 32 codes at 50 Hz
    stored = load_codes(tmp_path / "x.codes")
    assert stored.num_codebooks == 2 and stored.codes.shape[1] == 52 and stored.num_samples == 16480
    code, out, _ = run(capsys, "codec", "decode", tmp_path / "x.codes", "-o", tmp_path / "out.wav", "--model", model_dir)
    assert code == 0
    audio, rate = sf.read(str(tmp_path / "out.wav"))
    assert rate == 16000 and len(audio) == 16480
    code, _, err = run(capsys, "codec", "decode", tmp_path / "x.codes", "-o", tmp_path / "more.wav", "--model", model_dir,
                       "--num-codebooks", "3")
    assert code == 1 and "holds 2 levels" in err and not (tmp_path / "more.wav").exists()


def test_decoding_with_another_codec_is_refused(model_dir, tmp_path, capsys):
    source = write_sine(tmp_path / "in.wav", seconds=0.5)
    assert run(capsys, "codec", "encode", source, "-o", tmp_path / "x.codes", "--model", model_dir)[0] == 0
    other = Codec(CodecConfig(**TINY)).save(tmp_path / "retrained")  # same settings, other codebooks
    code, _, err = run(capsys, "codec", "decode", tmp_path / "x.codes", "-o", tmp_path / "y.wav", "--model", other)
    assert code == 1 and "other codebooks" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "y.wav").exists()


def test_bad_inputs_fail_with_one_line(model_dir, tmp_path, capsys):
    (tmp_path / "junk.codes").write_bytes(b"junk")
    (tmp_path / "junk.wav").write_bytes(b"junk")
    cases = [
        (["codec", "decode", tmp_path / "junk.codes", "-o", tmp_path / "o.wav", "--model", model_dir], "corrupt"),
        (["codec", "encode", tmp_path / "junk.wav", "-o", tmp_path / "o.codes", "--model", model_dir], "unreadable"),
        (["codec", "encode", tmp_path / "none.wav", "-o", tmp_path / "o.codes", "--model", model_dir], "no such file"),
        (["codec", "encode", tmp_path / "junk.wav", "-o", tmp_path / "o.codes", "--model", tmp_path / "nomodel"], "no such file"),
    ]
    for argv, words in cases:
        code, _, err = run(capsys, *argv)
        assert code == 1 and words in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not (tmp_path / "o.wav").exists() and not (tmp_path / "o.codes").exists()


def test_train_without_data_fails_clearly(tmp_path, capsys):
    code, _, err = run(capsys, "codec", "train", "--config", "tiny", "-o", tmp_path / "run")
    assert code == 1 and "no training data" in err


def test_export_from_a_run_and_missing_run(tmp_path, capsys):
    from tests.helpers_codec import tone_manifest

    manifest = tone_manifest(tmp_path / "tones", count=3)
    assert run(capsys, "codec", "train", "--config", "tiny", "--manifest", manifest, "-o", tmp_path / "run", "--quiet",
               "--stop-after", "2", "train.num_threads=1")[0] == 0
    code, out, _ = run(capsys, "codec", "export", tmp_path / "run", "-o", tmp_path / "model", "--fp16")
    assert code == 0 and "fp16" in out
    assert Codec.load(tmp_path / "model").encode(torch.zeros(1, 1, 640)).shape == (1, 4, 2)
    code, _, err = run(capsys, "codec", "export", tmp_path / "nothing", "-o", tmp_path / "m2")
    assert code == 1 and "no checkpoint" in err
