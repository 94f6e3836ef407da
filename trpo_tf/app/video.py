"""Videos of a trained policy: deterministic episodes, rendered headless, written as MP4 or GIF.

One process: the policy acts and the simulator renders in the same episode loop
(:func:`trpo_tf.episodes.run_episodes`). MuJoCo renders through OSMesa, PyBullet through its CPU tiny
renderer. (This used to replay recorded actions in a second, TensorFlow-free process, because OSMesa and
TensorFlow crashed together; :mod:`trpo_tf.headless` fixed that at the root — measured 2026-11-21: Hopper
and the MuJoCo gripper rendered between XLA-compiled calls in one process, exit code 0;
tests/test_plot_render.py renders through the real ``trpo render`` command.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from trpo_tf.app.errors import UsageError
from trpo_tf.files import atomic_path

FORMATS = (".mp4", ".gif")
GIF_MAX_FPS = 25  # GIF players show frames no faster than ~50 Hz; 25 keeps files small


def render_run(run_dir: str | os.PathLike, out: str | os.PathLike, episodes: int = 1, seed: int = 0,
               max_frames: int = 1000) -> dict[str, Any]:
    """Render ``episodes`` deterministic episodes (seeds ``seed``, ``seed+1``, …) of the newest checkpoint of
    ``run_dir`` into ``out`` (at most ``max_frames`` frames). Returns ``{"path", "frames", "fps", "returns"}``.

    The file is written under a temporary name and renamed: an interrupted render leaves no partial video.
    """
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise UsageError(f"video file must end in .mp4 or .gif, got {out.name!r}")
    if episodes < 1 or max_frames < 2:
        raise UsageError(f"episodes must be >= 1 and max_frames >= 2, got {episodes} and {max_frames}")
    import robots
    from trpo_tf.episodes import EpisodeEnv, run_episodes
    from trpo_tf.policy import load_policy

    policy = load_policy(run_dir)
    make_env = robots.EnvFactory(policy.info.gym_id, dict(policy.info.env_kwargs), render_mode="rgb_array")
    frames: list[np.ndarray] = []
    fps: list[float] = []

    def grab(runner: EpisodeEnv) -> bool:
        if not fps:
            fps.append(float(runner.env.metadata.get("render_fps") or policy.info.control_hz or 30))
        frames.append(frame(runner.env))
        return len(frames) < max_frames

    result = run_episodes(policy.act, _renderable(make_env, policy.info.task), episodes, seed, observe=grab)
    rate = fps[0]
    if out.suffix.lower() == ".gif" and rate > GIF_MAX_FPS:
        stride = int(np.ceil(rate / GIF_MAX_FPS))
        frames, rate = frames[::stride], rate / stride
    out.parent.mkdir(parents=True, exist_ok=True)
    write_video(frames, out, rate)
    return {"path": str(out), "frames": len(frames), "fps": round(rate, 2), "returns": result["returns"]}


def _renderable(make_env: Callable[[], Any], task: str) -> Callable[[], Any]:
    """``make_env``, checked once: a task that cannot render images here becomes one readable error line
    (exit 2), e.g. a classic-control task without pygame (``pip install "gymnasium[classic-control]"``)."""
    import gymnasium as gym

    def build() -> Any:
        env = make_env()
        modes = env.metadata.get("render_modes", [])
        try:
            if "rgb_array" not in modes:
                raise UsageError(f"task {task} cannot render images (render modes: {modes})")
            env.reset(seed=0)
            env.render()
        except (ImportError, gym.error.DependencyNotInstalled) as exc:  # classic control without pygame
            env.close()
            raise UsageError(f"task {task} cannot render here: {str(exc).strip().splitlines()[0]}") from None
        except BaseException:
            env.close()
            raise
        return env

    return build


def frame(env: Any) -> np.ndarray:
    """The env's current RGB image as a contiguous uint8 [H, W, 3] array."""
    image = env.render()
    if image is None:
        raise ValueError("the environment returned no image for render_mode='rgb_array'")
    return np.ascontiguousarray(np.asarray(image)[..., :3]).astype(np.uint8)


def write_video(frames: list[np.ndarray], out: Path, fps: float) -> None:
    """MP4 (H.264 via imageio-ffmpeg's bundled ffmpeg) or looping GIF (Pillow), written atomically."""
    import imageio.v2 as imageio
    import imageio.v3 as iio

    if not frames:
        raise ValueError("no frames to write")
    with atomic_path(out) as tmp:
        if out.suffix.lower() == ".mp4":
            # H.264 wants sizes divisible by 2; macro_block_size=16 pads frames to a multiple of 16.
            with imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
                                    macro_block_size=16, ffmpeg_log_level="error") as writer:
                for image in frames:
                    writer.append_data(image)
        else:
            iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
