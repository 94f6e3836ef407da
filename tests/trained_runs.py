"""Small, really trained runs for the export tests (``test_onnx_export.py``, ``test_sim_runtime.py``).

Each task trains once per pytest process (2 TRPO iterations of 512 steps, a few seconds) and is shared
by both test files. Parity does not need a good policy, only a real checkpoint with real statistics.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from trpo_tf import Policy, TRPOConfig, load_policy, train

TINY = dict(total_steps=1024, n_steps=512, n_envs=1, vector_env="sync", eval_episodes=0,
            critic_epochs=1, jit_compile=False)

_RUNS: dict[str, Path] = {}
_EXPORTS: dict[str, tuple[Policy, object]] = {}


def trained_run(task: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The run directory of a tiny real training run on ``task`` (defaults + :data:`TINY`; presets are
    left out on purpose: these tests are about the export, not about tuned hyperparameters)."""
    if task not in _RUNS:
        run_dir = tmp_path_factory.mktemp("runs") / task.replace("/", "_")
        train(TRPOConfig(task=task, **TINY), run_dir, progress=False)
        _RUNS[task] = run_dir
    return _RUNS[task]


def exported_run(task: str, tmp_path_factory: pytest.TempPathFactory) -> tuple[Policy, object]:
    """(loaded policy, ``ExportResult``) of :func:`trained_run`'s run, exported once per pytest process.
    Read-only for the tests that share it: a test that damages a policy loads its own copy."""
    if task not in _EXPORTS:
        from export.onnx import export_policy

        policy = load_policy(trained_run(task, tmp_path_factory))
        out = tmp_path_factory.mktemp("exports") / task.replace("/", "_") / "policy.onnx"
        _EXPORTS[task] = (policy, export_policy(policy, out))
    return _EXPORTS[task]
