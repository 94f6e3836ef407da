"""The peer: SB3-contrib TRPO (PyTorch CPU) timed the way ``trpo_tf.app.bench`` times ours. Prints one JSON object.

Runs in its own venv, never a project dependency:

    python3 -m venv /work/sb3env && /work/sb3env/bin/pip install torch==2.13.0 sb3-contrib "gymnasium[mujoco]"
    /work/sb3env/bin/python benchmarks/sb3_baseline.py update --cg-iters 10 --critic-epochs 5
    /work/sb3env/bin/python benchmarks/sb3_baseline.py train --steps 50000

``update``: one ``TRPO.train()`` on a 2,048-sample batch collected from Hopper-v5 (obs 11, act 3), 64×64 tanh
actor and critic, minibatch 128; policy, critic and Adam state restored before every timed run.
``train``: end-to-end ``learn()`` env-steps/s with the RL-Zoo Hopper preset (2 envs, n_steps 1024, batch 128,
CG 25, damping 0.1, 20 critic updates, lr 1e-3, VecNormalize).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import time

import gymnasium as gym
import torch
from sb3_contrib import TRPO
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import VecNormalize


def machine_info() -> dict:
    return {"cpu_count": os.cpu_count(), "load_avg_1_5_15": [round(x, 2) for x in os.getloadavg()],
            "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def bench_update(cg_iters: int, critic_epochs: int, batch: int, critic_batch: int, damping: float,
                 repeats: int, warmup: int, seed: int) -> dict:
    env = gym.make("Hopper-v5")
    model = TRPO("MlpPolicy", env, n_steps=batch, batch_size=critic_batch, cg_max_steps=cg_iters,
                 cg_damping=damping, n_critic_updates=critic_epochs, learning_rate=1e-3, target_kl=0.01,
                 policy_kwargs={"net_arch": {"pi": [64, 64], "vf": [64, 64]}, "activation_fn": torch.nn.Tanh},
                 seed=seed, verbose=0)
    model.learn(total_timesteps=batch)  # one real rollout (and one train) so the buffer holds a Hopper batch
    policy_state = copy.deepcopy(model.policy.state_dict())
    optim_state = copy.deepcopy(model.policy.optimizer.state_dict())
    times = []
    for i in range(warmup + repeats):
        model.policy.load_state_dict(policy_state)
        model.policy.optimizer.load_state_dict(optim_state)
        start = time.perf_counter()
        model.train()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return {"update_ms_median": round(1000 * statistics.median(times), 3),
            "update_ms_min": round(1000 * min(times), 3),
            "settings": {"batch": batch, "obs_dim": 11, "act_dim": 3, "hidden": [64, 64], "activation": "tanh",
                         "cg_iters": cg_iters, "damping": damping, "critic_epochs": critic_epochs,
                         "critic_batch": critic_batch, "repeats": repeats, "warmup": warmup},
            "machine": machine_info()}


def bench_train(steps: int, seed: int) -> dict:
    venv = VecNormalize(make_vec_env("Hopper-v5", n_envs=2, seed=seed), gamma=0.99)
    model = TRPO("MlpPolicy", venv, n_steps=1024, batch_size=128, gamma=0.99, gae_lambda=0.95, cg_max_steps=25,
                 cg_damping=0.1, n_critic_updates=20, learning_rate=1e-3, sub_sampling_factor=1, seed=seed,
                 verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=steps)
    wall = time.perf_counter() - start
    done = model.num_timesteps
    venv.close()
    return {"env_steps": done, "wall_s": round(wall, 2), "steps_per_s": round(done / wall, 1),
            "settings": {"task": "Hopper-v5", "n_envs": 2, "n_steps": 1024, "batch_size": 128, "cg_iters": 25,
                         "damping": 0.1, "critic_epochs": 20, "lr": 1e-3, "vec_normalize": True},
            "machine": machine_info()}


def main() -> None:
    parser = argparse.ArgumentParser(description="SB3-contrib TRPO timings (run under /work/sb3env)")
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("update", help="one train() on a 2,048-sample batch")
    up.add_argument("--cg-iters", type=int, default=10)
    up.add_argument("--critic-epochs", type=int, default=5)
    up.add_argument("--batch", type=int, default=2048)
    up.add_argument("--critic-batch", type=int, default=128)
    up.add_argument("--damping", type=float, default=0.1)
    up.add_argument("--repeats", type=int, default=20)
    up.add_argument("--warmup", type=int, default=3)
    tr = sub.add_parser("train", help="end-to-end Hopper-v5 learn() env-steps/s")
    tr.add_argument("--steps", type=int, default=50_000)
    for p in (up, tr):
        p.add_argument("--seed", type=int, default=0)
        p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    if args.command == "update":
        result = bench_update(args.cg_iters, args.critic_epochs, args.batch, args.critic_batch, args.damping,
                              args.repeats, args.warmup, args.seed)
    else:
        result = bench_train(args.steps, args.seed)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
