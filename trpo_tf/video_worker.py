"""Replay recorded episodes with rendering on and write them as MP4 or GIF — in a process WITHOUT TensorFlow.

Run as a script (``python -P video_worker.py SPEC.json``), never imported from ``trpo_tf``: MuJoCo's OSMesa
renderer and TensorFlow cannot share a process here (rendering after ``import tensorflow`` segfaults;
importing TensorFlow after libOSMesa segfaults). :mod:`trpo_tf.video` runs the policy with TensorFlow and
records the actions; this worker resets the same env on the same seeds and applies the same actions, which
reproduces the episodes exactly (both simulators are deterministic), rendering every step.

SPEC.json: ``{"gym_id", "env_kwargs", "episodes": [{"seed", "actions"}], "discrete", "out", "gif_max_fps"}``.
Prints one JSON line: ``{"path", "frames", "fps", "returns"}``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np


def replay(spec: dict[str, Any]) -> dict[str, Any]:
    """Render the recorded episodes of ``spec`` and write the video; returns what was written."""
    if not os.environ.get("DISPLAY") and not os.environ.get("WAYLAND_DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "osmesa")  # headless; must be set before `import mujoco`
    import gymnasium as gym

    import robots  # noqa: F401  (registers our tasks)

    env = gym.make(spec["gym_id"], render_mode="rgb_array", **spec["env_kwargs"])
    frames: list[np.ndarray] = []
    returns: list[float] = []
    try:
        for episode in spec["episodes"]:
            env.reset(seed=episode["seed"])
            frames.append(_frame(env))
            total = 0.0
            for a in episode["actions"]:
                action = int(a) if spec["discrete"] else np.asarray(a, np.float32)
                _, reward, _, _, _ = env.step(action)
                total += float(reward)
                frames.append(_frame(env))
            returns.append(total)
        fps = float(env.metadata.get("render_fps") or spec.get("fps") or 30)
    finally:
        env.close()
    gif_max = float(spec.get("gif_max_fps", 25))
    out = Path(spec["out"])
    if out.suffix.lower() == ".gif" and fps > gif_max:
        stride = int(np.ceil(fps / gif_max))
        frames, fps = frames[::stride], fps / stride
    write_video(frames, out, fps)
    return {"path": str(out), "frames": len(frames), "fps": round(fps, 2), "returns": returns}


def _frame(env: Any) -> np.ndarray:
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
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    try:
        if out.suffix.lower() == ".mp4":
            # H.264 wants sizes divisible by 2; macro_block_size=16 pads frames to a multiple of 16.
            with imageio.get_writer(tmp, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=7,
                                    macro_block_size=16, ffmpeg_log_level="error") as writer:
                for frame in frames:
                    writer.append_data(frame)
        else:
            iio.imwrite(tmp, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: video_worker.py SPEC.json", file=sys.stderr)
        return 2
    spec = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    print(json.dumps(replay(spec)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
