"""Atomic writes: the file appears whole under its name, with the permissions a plain open() gives, or not at all."""

import os
import stat

import pytest

from audiolm.formats.atomic import atomic_path, remove_temporaries, write_text
from audiolm.formats.tensors import start_model_folder


def test_atomic_write_has_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        write_text(tmp_path / "a.txt", "hello")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").read_text() == "hello"
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o644


def test_failed_write_leaves_nothing(tmp_path):
    write_text(tmp_path / "b.txt", "old")
    with pytest.raises(RuntimeError), atomic_path(tmp_path / "b.txt") as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert (tmp_path / "b.txt").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.txt"]


def test_remove_temporaries_takes_only_what_a_killed_writer_left(tmp_path):
    kept = [tmp_path / "model.safetensors", tmp_path / "config.json", tmp_path / "notes.tmp.txt"]
    stale = [tmp_path / ".model.abc123.tmp.safetensors", tmp_path / ".config.x9.tmp.json", tmp_path / ".tmpq1w2e3"]
    other = tmp_path / ".index.zz.tmp.json"  # another name's temporary: left when stems are given
    for path in [*kept, *stale, other]:
        path.write_text("x")
    remove_temporaries(tmp_path, ("model", "config"))
    assert all(p.exists() for p in [*kept, other]) and not any(p.exists() for p in stale)
    remove_temporaries(tmp_path)
    assert not other.exists() and all(p.exists() for p in kept)


def test_a_save_killed_midway_leaves_a_folder_loaders_refuse(tmp_path):
    """Model folders are written weights first, config last: starting a save removes the old config, so new weights
    can never sit beside an old config.json."""
    import torch

    from audiolm.codec.model import Codec, CodecConfig
    from audiolm.errors import FileError

    tiny = CodecConfig(encoder_dim=16, encoder_layers=1, latent_dim=16, num_codebooks=2, codebook_size=8, decoder_dim=16,
                       decoder_layers=1)
    torch.manual_seed(0)
    Codec(tiny).save(tmp_path / "codec")
    (tmp_path / "codec" / ".model.k1ll3d.tmp.safetensors").write_bytes(b"half")
    start_model_folder(tmp_path / "codec")  # what a new save does first; then the process is killed
    assert sorted(p.name for p in (tmp_path / "codec").iterdir()) == ["model.safetensors"]
    with pytest.raises(FileError, match="config.json"):
        Codec.load(tmp_path / "codec")


def test_check_writable_refuses_a_path_under_a_file_and_creates_nothing(tmp_path):
    from audiolm.errors import FileError
    from audiolm.formats.atomic import check_writable

    check_writable(tmp_path / "new" / "deeper" / "out.wav")  # folders that do not exist yet are fine
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileError, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "sub" / "out.wav")
