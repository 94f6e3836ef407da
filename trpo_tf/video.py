"""Videos of a trained policy: deterministic episodes rendered headless, written as MP4 or GIF.

MuJoCo renders off-screen through OSMesa when there is no display (``MUJOCO_GL=osmesa``, set before
``import mujoco`` by the ``trpo`` command); PyBullet tasks render with its CPU tiny renderer. MP4 goes
through imageio-ffmpeg (which ships its own ffmpeg binary), GIF through Pillow.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from trpo_tf.cli import UsageError

FORMATS = (".mp4", ".gif")
GIF_MAX_FPS = 25  # browsers play GIF frames no faster than ~50 Hz; 25 keeps files small


def ensure_headless_gl() -> None:
    """Select OSMesa for MuJoCo when there is no display and ``MUJOCO_GL`` is unset.

    MuJoCo picks its OpenGL backend when ``mujoco.rendering.classic.gl_context`` is first imported. If that
    happened before ``MUJOCO_GL`` was set (some import chain loaded mujoco first), re-import that one module
    so the renderer sees the backend now in the environment.
    """
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "osmesa")
    module = sys.modules.get("mujoco.rendering.classic.gl_context")
    wanted = os.environ.get("MUJOCO_GL", "").lower().strip()
    if module is not None and getattr(module, "_MUJOCO_GL", wanted) != wanted:
        importlib.reload(module)


def render_run(run_dir: str | os.PathLike, out: str | os.PathLike, episodes: int = 1, seed: int = 0,
               max_frames: int = 1000) -> dict[str, Any]:
    """Render ``episodes`` deterministic episodes of the newest checkpoint of ``run_dir`` into ``out``.

    Returns ``{"path", "frames", "fps", "returns"}``. The file is written to a temporary name and renamed,
    so an interrupted render never leaves a half-written video under ``out``.
    """
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise UsageError(f"video file must end in .mp4 or .gif, got {out.name!r}")
    if episodes < 1 or max_frames < 1:
        raise UsageError(f"episodes and max_frames must be >= 1, got {episodes} and {max_frames}")
    ensure_headless_gl()
    from trpo_tf.policy import load_policy
    from trpo_tf.rollout import make_env

    policy = load_policy(run_dir)
    env = make_env(policy.info.gym_id, policy.info.env_kwargs, render_mode="rgb_array")
    try:
        if "rgb_array" not in env.metadata.get("render_modes", []):
            raise UsageError(f"task {policy.info.task} cannot render images (render modes: "
                             f"{env.metadata.get('render_modes', [])})")
        fps = float(env.metadata.get("render_fps") or policy.info.control_hz or 30)
        frames, returns = _episode_frames(env, policy, episodes, seed, max_frames)
    finally:
        env.close()
    stride = 1
    if out.suffix.lower() == ".gif" and fps > GIF_MAX_FPS:
        stride = int(np.ceil(fps / GIF_MAX_FPS))
        frames, fps = frames[::stride], fps / stride
    out.parent.mkdir(parents=True, exist_ok=True)
    write_video(frames, out, fps)
    return {"path": str(out), "frames": len(frames), "fps": round(fps, 2), "returns": returns}


def _episode_frames(env: Any, policy: Any, episodes: int, seed: int,
                    max_frames: int) -> tuple[list[np.ndarray], list[float]]:
    frames: list[np.ndarray] = []
    returns: list[float] = []
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        frames.append(_frame(env))
        total, done = 0.0, False
        while not done and len(frames) < max_frames:
            action = policy.act(np.asarray(obs, np.float32))
            if policy.discrete:
                action = int(action)
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            done = terminated or truncated
            frames.append(_frame(env))
        returns.append(total)
        if len(frames) >= max_frames:
            break
    return frames, returns


def _frame(env: Any) -> np.ndarray:
    image = env.render()
    if image is None:
        raise UsageError("the environment returned no image (render_mode='rgb_array' unsupported?)")
    image = np.asarray(image)
    return np.ascontiguousarray(image[..., :3]).astype(np.uint8)


def write_video(frames: list[np.ndarray], out: Path, fps: float) -> None:
    """MP4 (H.264 via imageio-ffmpeg) or GIF (Pillow, looping), written atomically."""
    import imageio.v2 as imageio
    import imageio.v3 as iio

    if not frames:
        raise UsageError("no frames to write")
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        if out.suffix.lower() == ".mp4":
            # H.264 needs even sizes; macro_block_size=16 lets imageio pad frames to a multiple of 16.
            with imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
                                    macro_block_size=16, ffmpeg_log_level="error") as writer:
                for frame in frames:
                    writer.append_data(frame)
        else:
            iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
