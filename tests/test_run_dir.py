"""The run directory: THE check (one readable line per kind of damage), run.json's task description, and the
atomic writes everything goes through."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import gymnasium as gym
import pytest

from trpo_tf.files import atomic_path, write_json_atomic
from trpo_tf.run_dir import RunDir, RunDirError, RunInfo, TaskDescription

OLD_RUN = Path(__file__).parent / "data" / "run-0.1.0"


def test_check_accepts_a_run_and_names_each_kind_of_damage(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    assert RunDir(run).check().latest_checkpoint().endswith("ckpt-2")
    with pytest.raises(RunDirError, match="does not exist"):
        RunDir(tmp_path / "nope").check()
    (tmp_path / "foreign").mkdir()
    with pytest.raises(RunDirError, match="not a trpo-tf run directory"):
        RunDir(tmp_path / "foreign").check()
    data = run / "checkpoints" / "ckpt-2.data-00000-of-00001"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(RunDirError, match="ckpt-2 is corrupted"):
        RunDir(run).check()
    shutil.rmtree(run / "checkpoints")
    assert RunDir(run).check(require_checkpoint=False).latest_checkpoint() is None
    with pytest.raises(RunDirError, match="no checkpoint yet"):
        RunDir(run).check()


def test_run_info_takes_the_description_or_derives_it_from_the_env():
    env = gym.make("Pendulum-v1")
    derived = RunInfo.from_env(TaskDescription("Pendulum-v1", "Pendulum-v1", {}), env)
    layout = [{"name": "cos", "size": 1, "unit": "", "description": ""},
              {"name": "sin", "size": 1, "unit": "", "description": ""},
              {"name": "omega", "size": 1, "unit": "rad/s", "description": ""}]
    given = RunInfo.from_env(TaskDescription("swing", "Pendulum-v1", {"g": 9.81}, layout, 50.0), env)
    env.close()
    assert derived.control_hz == pytest.approx(20.0) and [f["name"] for f in derived.obs_layout] == \
        ["obs_0", "obs_1", "obs_2"]
    assert given.task == "swing" and given.control_hz == 50.0 and given.obs_layout == layout
    assert given.env_kwargs == {"g": 9.81} and given.action_high == [2.0] and not given.discrete
    assert given.description() == TaskDescription("swing", "Pendulum-v1", {"g": 9.81}, layout, 50.0)


def test_read_info_rejects_an_unknown_format(tmp_path):
    run = tmp_path / "run"
    shutil.copytree(OLD_RUN, run)
    data = json.loads((run / "run.json").read_text())
    assert RunDir(run).read_info().gym_id == "Pendulum-v1"
    (run / "run.json").write_text(json.dumps({**data, "format": "trpo-tf-run/99"}))
    with pytest.raises(RunDirError, match="unsupported format"):
        RunDir(run).read_info()


def test_atomic_writes_leave_the_old_file_or_the_new_one(tmp_path):
    target = tmp_path / "eval.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    write_json_atomic(target, {"a": 2})
    assert json.loads(target.read_text()) == {"a": 2} and os.listdir(tmp_path) == ["eval.json"]
