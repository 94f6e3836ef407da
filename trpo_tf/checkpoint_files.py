"""Which checkpoint of a run to trust, decided from the checkpoint files themselves.

``tf.train.CheckpointManager`` writes ``ckpt-N.data-*`` and ``ckpt-N.index``, then rewrites the index file
``checkpoints/checkpoint``, which is therefore the commit point: a checkpoint it lists was completely
written. The index can still go missing or be damaged (a user's ``rm``, a copy that skipped it, a full
disk), and then ``tf.train.latest_checkpoint`` says "no checkpoint" — a resume would restart at iteration 0
and overwrite intact checkpoints and metrics rows. So the files decide:

* every ``ckpt-N`` with an ``.index`` file is a candidate, newest first;
* a candidate is intact when every tensor reads back (TensorFlow checks a CRC32C per tensor);
* the newest intact candidate wins; a damaged candidate newer than it is skipped only if the index does not
  list it (an interrupted save, or no usable index at all); a damaged checkpoint the index lists as
  committed is an error (:class:`RunDirError`): something damaged a finished checkpoint, and the user
  should decide before anything is overwritten;
* so is a checkpoint the index lists, newer than the newest intact one, whose files are gone;
* candidates exist but none is intact: an error too (nothing is touched).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from trpo_tf.run_errors import RunDirError

INDEX_NAME = "checkpoint"
_FILE = re.compile(r"^ckpt-(\d+)\.index$")
_LISTED = re.compile(r'^(?:model_checkpoint_path|all_model_checkpoint_paths):\s*"(?:.*/)?ckpt-(\d+)"\s*$')


@dataclass
class CheckpointChoice:
    """The checkpoint to use (``path`` is a TF prefix such as ``DIR/checkpoints/ckpt-40``, or None)."""

    path: str | None
    number: int | None
    index_ok: bool  # the index file parsed and lists ``number`` as its newest checkpoint
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (prefix, why) of unlisted damaged ones
    intact_older: list[int] = field(default_factory=list)  # intact numbers below ``number`` (verified)


def file_numbers(directory: Path) -> list[int]:
    """Checkpoint numbers with an ``.index`` file, newest first."""
    try:
        names = os.listdir(directory)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return sorted((int(m.group(1)) for m in map(_FILE.match, names) if m), reverse=True)


def read_index(directory: Path) -> list[int] | None:
    """Numbers the index lists, its newest (``model_checkpoint_path``) last; None if missing or damaged."""
    try:
        text = (directory / INDEX_NAME).read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    newest, listed = None, []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith(("all_model_checkpoint_timestamps", "last_preserved_timestamp")):
            continue
        m = _LISTED.match(line)
        if m is None:
            return None
        if line.startswith("model_checkpoint_path"):
            newest = int(m.group(1))
        else:
            listed.append(int(m.group(1)))
    if newest is None:
        return None
    return [n for n in listed if n != newest] + [newest]


def verify(prefix: str) -> str | None:
    """None if every tensor of checkpoint ``prefix`` reads back; otherwise a one-line reason."""
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as exc:  # TF raises DataLossError, IndexError or ValueError depending on the damage
        return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:160]
    return None


def newest_intact(directory: str | os.PathLike, verify_older: bool = False) -> CheckpointChoice:
    """Decide which checkpoint in ``directory`` to restore (see the module docstring); ``verify_older`` also
    verifies the older ones (to rebuild the index). Raises :class:`RunDirError` as described there."""
    directory = Path(directory)
    listed = read_index(directory)  # before the files: TF writes them first, then the index
    numbers = file_numbers(directory)
    committed = set(listed or [])
    if not numbers:
        if listed:
            raise RunDirError(f"{directory / INDEX_NAME} lists checkpoint(s) {sorted(committed)} but their files "
                              "are missing; nothing was changed")
        return CheckpointChoice(None, None, index_ok=listed is not None)
    skipped: list[tuple[str, str]] = []
    damaged_committed: tuple[int, str] | None = None
    chosen: int | None = None
    for n in numbers:
        prefix = str(directory / f"ckpt-{n}")
        if not Path(prefix + ".index").exists():  # removed meanwhile (a training run's retention)
            continue
        reason = verify(prefix)
        if reason is None:
            chosen = n
            break
        if n in committed and damaged_committed is None:
            damaged_committed = (n, reason)
        skipped.append((prefix, reason))
    if damaged_committed is not None:
        n, reason = damaged_committed
        hint = (f"; the newest intact one is ckpt-{chosen} (move ckpt-{n}.* away to continue from it)"
                if chosen is not None else "")
        raise RunDirError(f"checkpoint {directory / f'ckpt-{n}'} is corrupted: {reason}{hint}")
    lost = sorted(n for n in committed if n not in numbers and (chosen is None or n > chosen))
    if lost:
        hint = (f"; the newest intact one is ckpt-{chosen} (delete {directory / INDEX_NAME} to continue from it)"
                if chosen is not None else "")
        raise RunDirError(f"{directory / INDEX_NAME} lists checkpoint ckpt-{lost[-1]} but its files are "
                          f"missing{hint}")
    if chosen is None:
        raise RunDirError(f"no intact checkpoint in {directory}: " + "; ".join(
            f"{Path(p).name} {why}" for p, why in skipped)[:400] + "; nothing was changed")
    older = [n for n in numbers if n < chosen]
    if verify_older:
        older = [n for n in older if verify(str(directory / f"ckpt-{n}")) is None]
    index_ok = listed is not None and listed[-1] == chosen
    return CheckpointChoice(str(directory / f"ckpt-{chosen}"), chosen, index_ok, skipped, older)


def rewrite_index(directory: str | os.PathLike, choice: CheckpointChoice) -> None:
    """Write an index listing ``choice`` and its intact elders (atomically), so that the checkpoint manager's
    retention and ``tf.train.latest_checkpoint`` agree with the files again."""
    if choice.path is None:
        return
    directory = Path(directory)
    names = [f"ckpt-{n}" for n in sorted(choice.intact_older)] + [f"ckpt-{choice.number}"]
    text = f'model_checkpoint_path: "{names[-1]}"\n' + "".join(
        f'all_model_checkpoint_paths: "{name}"\n' for name in names)
    tmp = directory / f".{INDEX_NAME}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, directory / INDEX_NAME)
