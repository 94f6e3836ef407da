"""trpo_tf/compile_cache.py: where TensorFlow's persistent XLA cache goes, the user's own choice kept, off when
asked or when the directory cannot be made; and two real `trpo train` processes, the second reading every
executable the first wrote, give the same numbers."""

from __future__ import annotations

import csv
import os
import subprocess
from pathlib import Path

import pytest

from trpo_tf import compile_cache
from trpo_tf.compile_cache import FLAG, default_directory, enable


def test_enable_adds_the_flag_for_the_directory_asked_for(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_XLA_FLAGS", "--tf_xla_auto_jit=0")
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "xla"))
    assert enable() == tmp_path / "xla" and (tmp_path / "xla").is_dir()
    assert os.environ["TF_XLA_FLAGS"] == f"--tf_xla_auto_jit=0 {FLAG}={tmp_path / 'xla'}"
    assert enable() == tmp_path / "xla"  # a second call finds its own flag and adds nothing
    assert os.environ["TF_XLA_FLAGS"].count(FLAG) == 1


@pytest.mark.parametrize("value", ["0", "off", "False", ""])
def test_the_cache_can_be_turned_off(value: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    monkeypatch.setenv(compile_cache.ENV, value)
    assert enable() is None and "TF_XLA_FLAGS" not in os.environ


def test_the_users_own_cache_flag_is_kept(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TF_XLA_FLAGS", f"{FLAG}=/somewhere/else")
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path))
    assert enable() == Path("/somewhere/else")
    assert os.environ["TF_XLA_FLAGS"] == f"{FLAG}=/somewhere/else"


def test_a_directory_that_cannot_be_made_means_no_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.delenv("TF_XLA_FLAGS", raising=False)
    monkeypatch.setenv(compile_cache.ENV, str(tmp_path / "a-file" / "xla"))
    assert enable() is None and "TF_XLA_FLAGS" not in os.environ


def test_the_default_directory_names_the_tensorflow_version_and_the_cpu(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import tensorflow as tf

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = default_directory()
    assert path.parent == tmp_path / "trpo-tf" / "xla"
    assert path.name.startswith(f"tf-{tf.__version__}-") and len(path.name) > len(f"tf-{tf.__version__}-")


def _rows(run: Path) -> list[dict[str, str]]:
    """metrics.csv without its clock columns (seconds and rates)."""
    with open(run / "metrics.csv") as f:
        return [{k: v for k, v in row.items() if not k.endswith("_s") and k != "steps_per_s"}
                for row in csv.DictReader(f)]


def test_a_run_reading_every_executable_from_the_cache_gives_the_same_numbers(tmp_path: Path) -> None:
    from cli_helpers import TRPO_COMMAND

    cache = tmp_path / "xla"
    env = {k: v for k, v in os.environ.items() if k != "TF_XLA_FLAGS"} | {compile_cache.ENV: str(cache)}
    settings = ["--task", "Pendulum-v1", "--steps", "768", "--no-progress", "--set", "n_steps=256", "n_envs=1",
                "vector_env=sync", "critic_epochs=2", "eval_episodes=0"]  # XLA on: the executables to cache
    cold = subprocess.run([*TRPO_COMMAND, "train", *settings, "--out", str(tmp_path / "cold")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert cold.returncode == 0, cold.stderr
    written = sorted(p.name for p in cache.iterdir())
    assert written and all(name.endswith(".pb") for name in written), written
    warm = subprocess.run([*TRPO_COMMAND, "train", *settings, "--out", str(tmp_path / "warm")], env=env,
                          capture_output=True, text=True, timeout=600)
    assert warm.returncode == 0, warm.stderr
    assert sorted(p.name for p in cache.iterdir()) == written  # every executable came from the cache
    cold_rows, warm_rows = _rows(tmp_path / "cold"), _rows(tmp_path / "warm")
    assert len(cold_rows) == 3 and warm_rows == cold_rows
