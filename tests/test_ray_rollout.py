"""Ray rollout workers on a real two-node Ray cluster (one machine): the same batches as the in-process
collector, TensorFlow-free workers on both nodes, a SIGKILLed worker restarted and its segment collected
again, a raising worker's traceback on the driver; and ``trpo train --ray ADDRESS`` on that cluster with a
worker and then the driver killed, resumed to the end.

One cluster (head + one worker node, 1 CPU each) serves the whole module.
"""

from __future__ import annotations

import csv
import functools
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode

import ray
from ray import cloudpickle
from ray.cluster_utils import Cluster

from cli_helpers import TRPO_COMMAND, user_error_line
from trpo_tf.acting import NumpyActor
from trpo_tf.models import build_models
from trpo_tf.ray_rollout import RayRolloutCollector, block_sizes, concat_batches
from trpo_tf.rollout import RolloutCollector

cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import this test module

ARRAYS = ("obs", "actions", "rewards", "terminated", "truncated", "last_obs", "final_index", "final_obs")


@pytest.fixture(scope="module")
def cluster():
    started = time.perf_counter()
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False})
    c.add_node(num_cpus=1)
    ray.init(address=c.address, logging_level="WARNING")
    print(f"\ntwo-node Ray cluster up in {time.perf_counter() - started:.1f} s")
    try:
        yield c
    finally:
        ray.shutdown()
        c.shutdown()


def _actor(env_fn, seed: int = 0) -> NumpyActor:
    probe = env_fn()
    actor, _ = build_models(probe.observation_space, probe.action_space, [16, 16], init_log_std=-0.5)
    probe.close()
    actor.normalizer.update(np.random.default_rng(seed).normal(0.5, 2.0, size=(64, actor.normalizer.obs_dim)))
    return NumpyActor(actor)


def _in_process(env_fn, n_envs: int, acting: NumpyActor, seed: int) -> RolloutCollector:
    envs = gym.vector.SyncVectorEnv([env_fn] * n_envs, autoreset_mode=AutoresetMode.SAME_STEP)
    return RolloutCollector(envs, acting, seed)


def _assert_same(a, b) -> None:
    for key in ARRAYS:
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)
    assert sorted(a.episode_returns) == sorted(b.episode_returns)
    assert sorted(a.episode_lengths) == sorted(b.episode_lengths)


@pytest.mark.parametrize("gym_id, kwargs", [
    ("Hopper-v5", {"max_episode_steps": 40}),  # Gaussian actions, falls and time limits
    ("CartPole-v1", {"max_episode_steps": 15}),  # categorical actions
])
def test_ray_batches_equal_in_process_batches(cluster, gym_id, kwargs):
    env_fn = functools.partial(gym.make, gym_id, **kwargs)
    acting = _actor(env_fn)
    local = _in_process(env_fn, 5, acting, seed=3)
    remote = RayRolloutCollector(env_fn, [3, 2], acting, seed=3)
    try:
        truncations = terminations = 0
        for it in range(2):
            a, b = local.collect(60, np.random.default_rng(it)), remote.collect(60, np.random.default_rng(it))
            _assert_same(a, b)
            truncations += len(a.final_index)
            terminations += int(a.terminated.sum())
        assert truncations > 0
        assert gym_id == "CartPole-v1" or terminations > 0
        assert remote.last_timing["overhead_s"] >= 0.0
    finally:
        local.close()
        remote.close()


def test_workers_are_tensorflow_free_and_spread_over_both_nodes(cluster):
    env_fn = functools.partial(gym.make, "CartPole-v1")
    remote = RayRolloutCollector(env_fn, [1, 1], _actor(env_fn), seed=0)
    try:
        assert "tensorflow" in sys.modules  # the driver has it …
        assert not any(info["tensorflow_loaded"] for info in remote.infos)  # … the workers do not
        nodes = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
        assert len(nodes) == 2
        assert {info["node_id"] for info in remote.infos} == nodes
        assert all(info["pid"] != os.getpid() for info in remote.infos)
    finally:
        remote.close()


class _KilledOnce(gym.Wrapper):
    """SIGKILLs its own worker process at its ``at``-th step, once per marker file: a worker dying mid-segment
    (as under the OOM killer), at a step the test controls."""

    def __init__(self, env: gym.Env, marker: str, at: int) -> None:
        super().__init__(env)
        self.marker, self.at, self.steps = marker, at, 0

    def step(self, action):
        self.steps += 1
        if self.steps == self.at:
            try:  # O_EXCL: of the envs reaching step ``at`` together, one kills its process; later lives don't
                os.close(os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return self.env.step(action)
            os.kill(os.getpid(), signal.SIGKILL)
        return self.env.step(action)


def _cartpole(max_episode_steps: int, marker: str | None = None, at: int = 0) -> gym.Env:
    env = gym.make("CartPole-v1", max_episode_steps=max_episode_steps)
    return _KilledOnce(env, marker, at) if marker else env


def test_a_worker_killed_mid_segment_is_restarted_and_its_segment_collected_again(cluster, tmp_path):
    marker = str(tmp_path / "killed")
    plain = functools.partial(_cartpole, 50)
    acting = _actor(plain)
    remote = RayRolloutCollector(functools.partial(_cartpole, 50, marker, 30), [2, 2], acting, seed=5)
    try:
        pids = [info["pid"] for info in remote.infos]
        batch = remote.collect(100, np.random.default_rng(11))  # at step 30 one worker SIGKILLs itself
        assert os.path.exists(marker) and sorted(remote.restarts) == [0, 1]
        dead = remote.restarts.index(1)
        alive = 1 - dead
        assert remote.infos[dead]["pid"] != pids[dead] and remote.infos[alive]["pid"] == pids[alive]
        assert batch.obs.shape == (100, 4, 4)

        # The surviving worker's block is the in-process collector's.
        whole = _in_process(plain, 4, acting, seed=5).collect(100, np.random.default_rng(11))
        np.testing.assert_array_equal(batch.obs[:, 2 * alive:2 * alive + 2], whole.obs[:, 2 * alive:2 * alive + 2])
        # The dead worker's segment was collected again, whole, by its replacement: the same noise streams,
        # its envs reset on the restart seed (exactly what a fresh block collector on that seed gives).
        restart_seed = int(np.random.SeedSequence(5, spawn_key=(dead, 1)).generate_state(1)[0])
        again = RolloutCollector(gym.vector.SyncVectorEnv([plain] * 2, autoreset_mode=AutoresetMode.SAME_STEP),
                                 acting, restart_seed, first_env=2 * dead)
        replay = again.collect(100, np.random.default_rng(11))
        for key in ("obs", "actions", "rewards", "terminated", "truncated"):
            np.testing.assert_array_equal(getattr(batch, key)[:, 2 * dead:2 * dead + 2], getattr(replay, key),
                                          err_msg=key)
        assert remote.collect(10, np.random.default_rng(12)).obs.shape == (10, 4, 4)  # and it goes on
    finally:
        remote.close()


class _FailingEnv(gym.Wrapper):
    """Raises on its 7th step: a bug in the simulator code."""

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.steps = 0

    def step(self, action):
        self.steps += 1
        if self.steps == 7:
            raise ValueError("contact solver diverged at step 7")
        return self.env.step(action)


def _failing_cartpole() -> gym.Env:
    return _FailingEnv(gym.make("CartPole-v1"))


def test_a_raising_worker_gives_the_driver_its_exception_and_traceback(cluster):
    remote = RayRolloutCollector(_failing_cartpole, [1, 1], _actor(_failing_cartpole), seed=0)
    try:
        with pytest.raises(ValueError, match="contact solver diverged at step 7") as info:
            remote.collect(20, np.random.default_rng(0))
        assert str(info.value) == "contact solver diverged at step 7"  # one line for the user …
        remote_tb = str(info.value.__cause__)  # … and the worker's traceback chained to it
        assert isinstance(info.value.__cause__, ray.exceptions.RayTaskError)
        assert 'raise ValueError("contact solver diverged at step 7")' in remote_tb
        assert remote.restarts == [0, 0]  # an exception is not a crash: nothing was restarted
    finally:
        remote.close()


def test_block_sizes_and_concatenation_of_blocks():
    assert block_sizes(8, 2) == [4, 4] and block_sizes(5, 2) in ([3, 2], [2, 3]) and sum(block_sizes(7, 3)) == 7
    with pytest.raises(ValueError, match="workers must be in"):
        block_sizes(2, 3)
    env_fn = functools.partial(gym.make, "CartPole-v1", max_episode_steps=9)
    acting = _actor(env_fn)
    whole = _in_process(env_fn, 3, acting, seed=1).collect(30, np.random.default_rng(4))
    left = RolloutCollector(gym.vector.SyncVectorEnv([env_fn], autoreset_mode=AutoresetMode.SAME_STEP), acting, 1)
    right = RolloutCollector(gym.vector.SyncVectorEnv([env_fn] * 2, autoreset_mode=AutoresetMode.SAME_STEP),
                             acting, 1, first_env=1)
    _assert_same(whole, concat_batches([left.collect(30, np.random.default_rng(4)),
                                        right.collect(30, np.random.default_rng(4))]))
    assert len(whole.final_index) > 0


# ---- `trpo train --ray ADDRESS` on the two-node cluster: a worker killed, then the driver, then resumed ----

TOTAL = 12 * 512
TRAIN = ["--task", "CartPole-v1", "--steps", str(TOTAL), "--no-progress", "--set", "n_envs=2", "n_steps=256",
         "ray_workers=2", "jit_compile=false", "critic_epochs=2", "eval_episodes=2"]


def _rows(run: Path) -> list[dict[str, str]]:
    if not (run / "metrics.csv").exists():
        return []
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def _wait(condition, proc: subprocess.Popen, what: str, timeout: float = 240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        assert proc.poll() is None, f"trpo exited ({proc.returncode}) before {what}"
        time.sleep(0.02)
    proc.kill()
    raise AssertionError(f"timed out waiting for {what}")


def _workers(log: Path) -> dict[int, tuple[int, str]]:
    """{worker: (pid, node id)} from the driver's ``ray worker W: ... pid P on node N`` lines."""
    found = re.findall(r"ray worker (\d+): \d+ envs, pid (\d+) on node (\w+)", log.read_text())
    return {int(w): (int(pid), node) for w, pid, node in found}


@pytest.fixture(scope="module")
def killed_and_resumed(cluster, tmp_path_factory) -> dict:
    tmp = tmp_path_factory.mktemp("ray-train")
    run, log1 = tmp / "run", tmp / "first.log"
    with open(log1, "w") as err:
        proc = subprocess.Popen([*TRPO_COMMAND, "train", *TRAIN, "--ray", cluster.address, "--out", str(run)],
                                stdout=subprocess.DEVNULL, stderr=err)
    workers = _wait(lambda: len(_workers(log1)) == 2 and _workers(log1), proc, "both workers' log lines")
    _wait(lambda: len(_rows(run)) >= 2, proc, "two iterations")
    os.kill(workers[1][0], signal.SIGKILL)  # mid-training: in its segment or waiting for the next one
    rows_at_kill = len(_rows(run))
    _wait(lambda: "ray worker 1 died; restarted" in log1.read_text() and len(_rows(run)) >= rows_at_kill + 2,
          proc, "the restarted worker's iterations")
    proc.send_signal(signal.SIGKILL)  # now the driver
    proc.wait(timeout=30)
    rows_at_driver_kill = len(_rows(run))
    final = subprocess.run([*TRPO_COMMAND, "train", "--resume", str(run), "--no-progress"], capture_output=True,
                           text=True, timeout=300)
    return {"run": run, "workers": workers, "first_log": log1.read_text(), "rows_at_kill": rows_at_kill,
            "rows_at_driver_kill": rows_at_driver_kill, "final": final}


def test_training_places_workers_on_both_nodes(killed_and_resumed, cluster):
    nodes = {node for _, node in killed_and_resumed["workers"].values()}
    assert nodes == {n["NodeID"] for n in ray.nodes() if n["Alive"]} and len(nodes) == 2


def test_training_survives_a_killed_worker_and_a_killed_driver(killed_and_resumed):
    final = killed_and_resumed["final"]
    assert final.returncode == 0, final.stderr[-3000:]
    assert killed_and_resumed["rows_at_kill"] < killed_and_resumed["rows_at_driver_kill"] < TOTAL // 512
    rows = _rows(killed_and_resumed["run"])
    assert [int(r["iteration"]) for r in rows] == list(range(1, TOTAL // 512 + 1))  # each once, in order
    steps = [int(r["env_steps"]) for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == TOTAL
    assert "evaluation: return" in final.stdout


def test_without_ray_installed_vector_env_ray_is_a_one_line_error(tmp_path):
    out = tmp_path / "run"
    blocked = ("import sys; sys.modules['ray'] = None  # as if Ray were not installed\n"
               "from trpo_tf.app.cli import main; sys.exit(main(sys.argv[1:]))")
    result = subprocess.run([sys.executable, "-c", blocked, "train", "--task", "cartpole", "--ray", "--out",
                             str(out)], capture_output=True, text=True, timeout=120)
    line = user_error_line(result)
    assert 'pip install "trpo-tf[ray]"' in line
    assert not out.exists()


def test_an_address_that_does_not_answer_is_a_one_line_config_error():
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = ("import sys\nfrom trpo_tf.config import ConfigError\nfrom trpo_tf.ray_rollout import connect\n"
            f"try:\n    connect('127.0.0.1:{port}')\nexcept ConfigError as exc:\n    print(exc)\n    sys.exit(2)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stdout.strip().startswith(f"cannot reach the Ray cluster at 127.0.0.1:{port}")
    assert "tensorflow" not in result.stderr.lower()
