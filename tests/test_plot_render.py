"""``trpo plot`` and ``trpo render`` through real subprocesses: a PNG of mean ± std over two seeds, MP4 and
GIF videos of a MuJoCo task (OSMesa) and a PyBullet task (tiny renderer). The runs they read are trained
in-process (``trpo_tf.train`` with the task's preset, as ``trpo train`` does; test_cli.py drives ``trpo train``):
a process start-up per run was most of this file's time."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pytest

from cli_helpers import trpo, user_error_line

TINY = dict(n_steps=64, eval_episodes=0, jit_compile=False, n_envs=1, vector_env="sync", critic_epochs=2)


def _train(task: str, steps: int, seed: int, out) -> None:
    """What ``trpo train --task TASK --steps S --seed N --set <TINY> --out OUT`` runs, in this process."""
    from trpo_tf import config_for_task, train

    train(config_for_task(task, {**TINY, "total_steps": steps, "seed": seed}), out, progress=False)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Two seeds of gripper-reach (MuJoCo) and one panda-reach-bullet (PyBullet), 3 and 1 iterations."""
    root = tmp_path_factory.mktemp("plot")
    made = {}
    for name, task, steps, seed in (("reach0", "gripper-reach", 192, 0), ("reach1", "gripper-reach", 192, 1),
                                    ("panda", "panda-reach-bullet", 64, 0)):
        _train(task, steps, seed, root / name)
        made[name] = root / name
    return made


def test_plot_of_two_seeds_is_a_png_with_a_band(runs: dict, tmp_path) -> None:
    out = tmp_path / "curve.png"
    result = trpo("plot", str(runs["reach0"]), str(runs["reach1"]), "--out", str(out))
    assert result.returncode == 0, result.stderr
    image = iio.imread(out)
    assert image.shape[0] > 300 and image.shape[1] > 500
    assert len(np.unique(image.reshape(-1, image.shape[-1]), axis=0)) > 20  # not a blank canvas


def test_plot_other_columns_and_unknown_column(runs: dict, tmp_path) -> None:
    result = trpo("plot", str(runs["reach0"]), "--x", "iteration", "--y", "kl", "--out", str(tmp_path / "kl.png"))
    assert result.returncode == 0, result.stderr and (tmp_path / "kl.png").is_file()
    bad = trpo("plot", str(runs["reach0"]), "--y", "reward_of_the_year", "--out", str(tmp_path / "x.png"))
    assert "no column 'reward_of_the_year'" in user_error_line(bad)
    assert not (tmp_path / "x.png").exists()


@pytest.mark.parametrize("name", ["reach0", "panda"])
@pytest.mark.parametrize("fmt", ["mp4", "gif"])
def test_render_writes_a_video(runs: dict, tmp_path, name: str, fmt: str) -> None:
    out = tmp_path / f"{name}.{fmt}"
    result = trpo("render", str(runs[name]), "--out", str(out), "--max-frames", "30")
    assert result.returncode == 0, result.stderr
    assert "invalid pointer" not in result.stderr and "Segmentation" not in result.stderr  # see the next test
    assert f"wrote {out}: 30 frames" in result.stdout  # both tasks run at <= 25 Hz: no GIF frame skipping
    frames = iio.imread(out, index=None) if fmt == "gif" else np.stack(_ffmpeg(out))
    assert frames.ndim == 4 and frames.shape[0] >= 10 and frames.shape[-1] >= 3
    assert frames.std() > 5  # the robot is drawn, not a flat colour
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no partial file left behind


def test_evaluate_exits_cleanly_with_tensorflow_and_mujoco_in_one_process(runs: dict) -> None:
    """No ``os._exit`` any more: the interpreter's own teardown (TensorFlow + MuJoCo) ends with exit code 0 and
    nothing on stderr about a crash (free(): invalid pointer / SIGSEGV would be 134 / 139). ``render`` (TensorFlow
    + OSMesa-rendered MuJoCo) is checked the same way by test_render_writes_a_video[mp4-reach0] and [gif-reach0]."""
    result = trpo("evaluate", str(runs["reach0"]), "--episodes", "1")
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])
    assert "invalid pointer" not in result.stderr and "Segmentation" not in result.stderr


def test_render_of_a_task_without_its_renderer_is_a_usage_error(tmp_path) -> None:
    run = tmp_path / "cartpole"
    _train("cartpole", 64, 0, run)
    result = trpo("render", str(run), "--out", str(tmp_path / "c.gif"))
    try:
        import pygame  # noqa: F401
    except ImportError:  # gymnasium[classic-control] not installed: exit 2 with the install hint
        assert "classic-control" in user_error_line(result) or "pygame" in user_error_line(result)
        assert not (tmp_path / "c.gif").exists()
    else:
        assert result.returncode == 0, result.stderr


def _ffmpeg(path) -> list[np.ndarray]:
    import imageio.v2 as imageio

    with imageio.get_reader(path, format="FFMPEG") as reader:
        return [np.asarray(frame) for frame in reader]
