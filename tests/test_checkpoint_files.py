"""Choosing the checkpoint to trust from the files themselves (trpo_tf/checkpoint_files.py), on real
TensorFlow checkpoints written by tf.train.CheckpointManager and damaged the ways disks and users do."""

from __future__ import annotations

from pathlib import Path

import pytest
import tensorflow as tf

from trpo_tf.checkpoint_files import newest_intact, read_index, rewrite_index
from trpo_tf.run_dir import RunDirError


def _checkpoints(directory: Path, numbers=(1, 2, 3)) -> Path:
    weights = tf.Variable(tf.zeros([64, 64]))
    manager = tf.train.CheckpointManager(tf.train.Checkpoint(w=weights), str(directory), max_to_keep=5)
    for n in numbers:
        weights.assign(tf.fill([64, 64], float(n)))
        manager.save(checkpoint_number=n)
    return directory


def _garble(prefix: Path) -> None:
    data = prefix.with_name(prefix.name + ".data-00000-of-00001")
    blob = bytearray(data.read_bytes())
    for i in range(len(blob) // 4, len(blob) // 4 + 64):
        blob[i] ^= 0x5A
    data.write_bytes(bytes(blob))


def test_intact_run_uses_the_index(tmp_path: Path) -> None:
    choice = newest_intact(_checkpoints(tmp_path))
    assert choice.number == 3 and choice.index_ok and choice.path == str(tmp_path / "ckpt-3")


@pytest.mark.parametrize("damage", ["deleted", "empty", "binary", "text"])
def test_a_missing_or_damaged_index_falls_back_to_the_files(tmp_path: Path, damage: str) -> None:
    _checkpoints(tmp_path)
    index = tmp_path / "checkpoint"
    {"deleted": index.unlink, "empty": lambda: index.write_bytes(b""),
     "binary": lambda: index.write_bytes(b"\x00\xff\xfe garbage"),
     "text": lambda: index.write_text("hello {{ world\n")}[damage]()
    assert read_index(tmp_path) is None
    choice = newest_intact(tmp_path, verify_older=True)
    assert choice.number == 3 and not choice.index_ok and choice.intact_older == [2, 1]
    rewrite_index(tmp_path, choice)
    assert read_index(tmp_path) == [1, 2, 3]
    assert tf.train.latest_checkpoint(str(tmp_path)).endswith("ckpt-3")


def test_an_unlisted_damaged_checkpoint_is_skipped(tmp_path: Path) -> None:
    """An interrupted save (files written, index not yet) that is also damaged: the listed one wins."""
    _checkpoints(tmp_path)
    (tmp_path / "checkpoint").unlink()
    _garble(tmp_path / "ckpt-3")
    choice = newest_intact(tmp_path)
    assert choice.number == 2 and [Path(p).name for p, _ in choice.skipped] == ["ckpt-3"]


def test_a_committed_checkpoint_that_is_damaged_is_an_error(tmp_path: Path) -> None:
    _checkpoints(tmp_path)
    _garble(tmp_path / "ckpt-3")
    with pytest.raises(RunDirError, match=r"ckpt-3 is corrupted: .*newest intact one is ckpt-2") as info:
        newest_intact(tmp_path)
    assert "\n" not in str(info.value)


def test_a_committed_checkpoint_whose_files_are_gone_is_an_error(tmp_path: Path) -> None:
    _checkpoints(tmp_path)
    for f in tmp_path.glob("ckpt-3.*"):
        f.unlink()
    with pytest.raises(RunDirError, match="lists checkpoint ckpt-3 but its files are missing"):
        newest_intact(tmp_path)


def test_nothing_intact_is_an_error_and_nothing_intact_means_none(tmp_path: Path) -> None:
    _checkpoints(tmp_path, numbers=(1, 2))
    (tmp_path / "checkpoint").unlink()
    for n in (1, 2):
        _garble(tmp_path / f"ckpt-{n}")
    with pytest.raises(RunDirError, match="no intact checkpoint"):
        newest_intact(tmp_path)
    assert newest_intact(tmp_path / "nothing-here").path is None


def test_an_unlisted_newer_intact_checkpoint_wins(tmp_path: Path) -> None:
    """Killed between writing ckpt-3 and rewriting the index: ckpt-3 is complete (every CRC checks)."""
    _checkpoints(tmp_path)
    rewrite_index(tmp_path, newest_intact(tmp_path, verify_older=True).__class__(
        str(tmp_path / "ckpt-2"), 2, True, [], [1]))
    assert read_index(tmp_path) == [1, 2]
    choice = newest_intact(tmp_path)
    assert choice.number == 3 and not choice.index_ok
