"""Videos of a trained policy: deterministic episodes, rendered headless, written as MP4 or GIF.

Two processes, because MuJoCo's OSMesa renderer and TensorFlow crash when loaded together (see
:mod:`trpo_tf.video_worker`): here the policy acts (TensorFlow) in an env without rendering and the
actions are recorded; a fresh Python without TensorFlow replays them on the same seeds with rendering on
(MuJoCo through OSMesa, PyBullet through its CPU tiny renderer) and writes the file with imageio.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from trpo_tf.cli import UsageError

FORMATS = (".mp4", ".gif")
GIF_MAX_FPS = 25  # GIF players show frames no faster than ~50 Hz; 25 keeps files small
WORKER = Path(__file__).with_name("video_worker.py")


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
    from trpo_tf.policy import load_policy
    from trpo_tf.rollout import make_env

    policy = load_policy(run_dir)
    env = make_env(policy.info.gym_id, policy.info.env_kwargs)  # no rendering in this (TensorFlow) process
    try:
        modes = env.metadata.get("render_modes", [])
        if "rgb_array" not in modes:
            raise UsageError(f"task {policy.info.task} cannot render images (render modes: {modes})")
        recorded = record_episodes(env, policy, episodes, seed, max_frames)
    finally:
        env.close()
    out.parent.mkdir(parents=True, exist_ok=True)
    spec = {"gym_id": policy.info.gym_id, "env_kwargs": policy.info.env_kwargs, "episodes": recorded,
            "discrete": policy.discrete, "out": str(out), "fps": policy.info.control_hz,
            "gif_max_fps": GIF_MAX_FPS}
    result = _run_worker(spec)
    expected = [e["return"] for e in recorded]
    if not np.allclose(result["returns"], expected, rtol=1e-6, atol=1e-6):
        raise RuntimeError(f"the replayed episodes differ from the recorded ones (returns {result['returns']} "
                           f"vs {expected}): the simulator is not deterministic for this task")
    return result


def record_episodes(env: Any, policy: Any, episodes: int, seed: int, max_frames: int) -> list[dict[str, Any]]:
    """Deterministic actions per episode (as JSON-able lists), stopping when ``max_frames`` frames are covered
    (an episode of n steps makes n + 1 frames)."""
    recorded, frames = [], 0
    for k in range(episodes):
        obs, _ = env.reset(seed=seed + k)
        frames += 1
        actions: list[Any] = []
        total, done = 0.0, False
        while not done and frames < max_frames:
            action = policy.act(np.asarray(obs, np.float32))
            action = int(action) if policy.discrete else np.asarray(action, np.float32)
            obs, reward, terminated, truncated, _ = env.step(action)
            actions.append(action if policy.discrete else [float(x) for x in action])
            total += float(reward)
            done = terminated or truncated
            frames += 1
        recorded.append({"seed": seed + k, "actions": actions, "return": total})
        if frames >= max_frames:
            break
    return recorded


def _run_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run :mod:`trpo_tf.video_worker` in a clean interpreter (``-P``: the trpo_tf folder is not put on
    ``sys.path``, so nothing of ``trpo_tf`` — and no TensorFlow — is imported there)."""
    with tempfile.TemporaryDirectory(prefix="trpo-render-") as tmp:
        spec_path = Path(tmp) / "spec.json"
        spec_path.write_text(json.dumps(spec), encoding="utf-8")
        done = subprocess.run([sys.executable, "-P", str(WORKER), str(spec_path)], capture_output=True, text=True)
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        raise RuntimeError(f"render worker failed (exit {done.returncode}): {lines[-1] if lines else 'no output'}")
    return json.loads(done.stdout.strip().splitlines()[-1])
