"""The runner and run directory through the Python API (the CLI tests drive the same code by subprocess)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

import robots
from trpo_tf import TRPOConfig, config_for_task, load_policy, resume, train
from trpo_tf.app.training import make_trainer
from trpo_tf.env_check import EnvProbe
from trpo_tf.monitor import METRIC_COLUMNS, HealthCheck, metrics_columns, read_metrics
from trpo_tf.run_dir import RunDir, RunDirError, TaskDescription
from trpo_tf.runner import Trainer
from trained_runs import trained_run

# No XLA: a compile costs ~15 s per Trainer (each fresh and resumed run, and each make_trainer: it compiles in
# the background) and proves nothing here; test_update.py / test_perf_paths.py / test_learning.py run XLA.
SMALL = dict(total_steps=1024, n_steps=256, eval_episodes=2, critic_epochs=2, jit_compile=False)


@pytest.fixture(scope="module")
def cartpole_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "cartpole"
    result = train(TRPOConfig(task="CartPole-v1", **SMALL), run_dir, progress=False)
    return run_dir, result


def test_run_directory_holds_everything(cartpole_run):
    run_dir, result = cartpole_run
    run = RunDir(run_dir).check()
    assert yaml.safe_load(run.config.read_text())["total_steps"] == 1024
    info = json.loads(run.info.read_text())
    assert info["gym_id"] == "CartPole-v1" and info["discrete"] and info["act_dim"] == 2
    rows = read_metrics(run.metrics)
    assert metrics_columns(run.metrics) == METRIC_COLUMNS and "critic_s" not in rows[0]  # gone since the fused update
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4]
    assert rows[-1]["env_steps"] == 1024
    assert all(0 <= r["kl"] <= 0.01 for r in rows)
    assert any(run.tensorboard.glob("events.out.tfevents.*"))
    assert json.loads(run.eval.read_text())["episodes"] == 2
    assert run.latest_checkpoint().endswith("ckpt-4")
    assert result["eval"]["mean_return"] > 0


def test_load_policy_acts_on_single_and_batched_observations(cartpole_run):
    run_dir, _ = cartpole_run
    policy = load_policy(run_dir)
    assert policy.env_steps == 1024 and policy.iteration == 4
    single = policy.act(np.zeros(4, np.float32))
    batch = policy.act(np.zeros((5, 4), np.float32))
    assert np.ndim(single) == 0 and batch.shape == (5,)
    assert set(np.unique(policy.act(np.random.default_rng(0).normal(size=(100, 4))))) <= {0, 1}
    with pytest.raises(ValueError, match=r"\(4,\) or \(n, 4\)"):
        policy.act(np.zeros(3))
    facts = policy.provenance()
    assert facts["run_info"]["obs_dim"] == 4 and len(facts["weights_sha256"]) == 64


def test_load_policy_matches_tf_action_and_clips_to_bounds(tmp_path_factory):
    policy = load_policy(trained_run("inverted-pendulum", tmp_path_factory))  # shared, read-only: damaged in memory
    obs = np.random.default_rng(0).normal(scale=50.0, size=(256, 4)).astype(np.float32)
    np.testing.assert_allclose(policy.act(obs), policy.tf_action(obs).numpy(), atol=1e-5)
    # Push the mean far outside the bounds: both paths clip to [-3, 3].
    policy.actor.mean_head.bias.assign([100.0])
    policy._numpy.refresh(policy.actor)
    assert np.all(policy.act(obs) == 3.0) and np.all(policy.tf_action(obs).numpy() == 3.0)


def test_resume_continues_to_a_larger_total_without_duplicate_rows(cartpole_run, tmp_path):
    import shutil

    run_dir, _ = cartpole_run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy)
    resume(copy, total_steps=1536, progress=False)
    rows = read_metrics(RunDir(copy).metrics)
    assert [int(r["iteration"]) for r in rows] == [1, 2, 3, 4, 5, 6]
    assert load_policy(copy).env_steps == 1536


def test_a_run_killed_before_its_first_checkpoint_resumes_from_the_start(tmp_path):
    """What a SIGKILL during start-up leaves: config.yaml and run.json, no checkpoint, maybe a metrics row."""
    run_dir = tmp_path / "early"
    make_trainer(TRPOConfig(task="CartPole-v1", **SMALL), run_dir, progress=False).close()  # files, no training
    (run_dir / "metrics.csv").write_text("iteration,env_steps\n1,256\n")  # a row whose checkpoint never came
    with pytest.raises(RunDirError, match="no checkpoint yet"):
        load_policy(run_dir)
    resume(run_dir, progress=False)
    assert [int(r["iteration"]) for r in read_metrics(RunDir(run_dir).metrics)] == [1, 2, 3, 4]


def test_a_trainer_given_a_probe_opens_no_env_before_training(tmp_path):
    """make_trainer opens ONE probe env (kwargs check, randomization check, spaces): the Trainer takes it."""
    import gymnasium as gym

    made = []

    def make():
        made.append(1)
        return gym.make("CartPole-v1")

    task = TaskDescription("CartPole-v1", "CartPole-v1", {})
    env = gym.make("CartPole-v1")
    probe = EnvProbe.of(task, env)
    env.close()
    config = TRPOConfig(task="CartPole-v1", normalize_obs=False, **SMALL)  # no warm-up envs either
    Trainer(config, tmp_path / "given", make, task, progress=False, probe=probe).close()
    assert made == []
    assert json.loads(RunDir(tmp_path / "given").info.read_text())["act_dim"] == 2
    Trainer(config, tmp_path / "own", make, task, progress=False).close()  # no probe given: it opens one
    assert made == [1]
    assert RunDir(tmp_path / "own").info.read_text() == RunDir(tmp_path / "given").info.read_text()


def test_new_run_refuses_to_overwrite_and_bad_dirs_are_clear(cartpole_run, tmp_path):
    run_dir, _ = cartpole_run
    with pytest.raises(RunDirError, match="already exists"):
        make_trainer(TRPOConfig(task="CartPole-v1", **SMALL), run_dir)
    with pytest.raises(RunDirError, match="does not exist"):
        load_policy(tmp_path / "nope")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("hello")
    with pytest.raises(RunDirError, match="not a trpo-tf run directory"):
        load_policy(tmp_path / "foreign")


def test_unknown_task_lists_known_ones():
    with pytest.raises(robots.UnknownTaskError, match="known tasks: .*hopper"):
        config_for_task("hoper")


def test_any_gymnasium_id_trains_through_the_generic_path(tmp_path):
    result = train(TRPOConfig(task="Pendulum-v1", total_steps=400, n_steps=200, eval_episodes=1, jit_compile=False),
                   tmp_path / "p", progress=False)
    info = RunDir(tmp_path / "p").read_info()
    assert info.task == "Pendulum-v1" and info.obs_dim == 3 and info.action_high == [2.0]
    assert info.control_hz == pytest.approx(20.0)
    assert result["last"]["env_steps"] == 400


def test_registered_task_uses_its_preset_and_kwargs():
    config = config_for_task("ant", {"total_steps": 10})
    assert config.total_steps == 10
    assert robots.get_task("ant").kwargs == {"include_cfrc_ext_in_observation": False}


def test_health_check_warns_once_per_episode_of_trouble():
    health = HealthCheck(window=4)
    good = {"accepted": True, "kl": 0.005, "value_loss": 1.0}
    bad = {"accepted": False, "kl": 0.0, "value_loss": 1.0}
    assert health(good) == []
    messages = [m for _ in range(6) for m in health(bad)]
    assert len(messages) == 1 and "line-search success" in messages[0]  # said once, not every iteration
    rising = [health({"accepted": True, "kl": 0.005, "value_loss": v}) for v in (1, 1, 10, 10)]
    assert any("value loss is rising" in m for ms in rising for m in ms)
    # flickering in and out of range does not repeat the warning within the cooldown
    flicker = [m for v in (10, 1, 1, 10, 10, 100, 100) * 3
               for m in health({"accepted": True, "kl": 0.005, "value_loss": v})]
    assert not any("value loss" in m for m in flicker)


def test_scalar_log_writes_what_eager_summaries_write(tmp_path):
    """runner.ScalarLog (one serialized Summary per row) gives the same TensorBoard tags, steps and values as one
    eager ``tf.summary.scalar`` per finite column; non-finite and non-numeric columns are left out."""
    import math

    import tensorflow as tf
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from trpo_tf.runner import ScalarLog

    rows = [{"kl": 0.004, "accepted": True, "episodes": 3, "success_rate": float("nan"), "reason": "accepted"},
            {"kl": 0.007, "accepted": False, "episodes": 0, "success_rate": float("nan"), "reason": "line search"}]
    eager = tf.summary.create_file_writer(str(tmp_path / "eager"))
    log = ScalarLog(str(tmp_path / "compiled"))
    for step, row in enumerate(rows):
        with eager.as_default(step=step):
            for key, value in row.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    tf.summary.scalar(key, value)
        log.write(row, step=step)
    eager.close()
    log.close()

    def read(path):
        events = EventAccumulator(str(path), size_guidance={"tensors": 0})
        events.Reload()
        return {tag: [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in events.Tensors(tag)]
                for tag in events.Tags()["tensors"]}

    written = read(tmp_path / "compiled")
    assert written == read(tmp_path / "eager")
    assert set(written) == {"kl", "accepted", "episodes"} and written["accepted"] == [(0, 1.0), (1, 0.0)]
