"""Opening an environment the user named: failures the user caused become one-line :class:`EnvSetupError`\\ s.

Three kinds, all found before a run directory is touched:

* a missing optional dependency (gymnasium's ``DependencyNotInstalled``, e.g. Box2D for LunarLander): its
  message already carries the install command;
* ``env_kwargs`` the environment rejects, at construction or at the first reset/step (``g="abc"`` for
  Pendulum only fails when the physics runs);
* spaces the learner cannot use: observations must be a flat ``Box`` vector, actions a flat ``Box`` or
  ``Discrete`` (e.g. FrozenLake's ``Discrete(16)`` observations are refused with the reason).

An exception from an environment opened *without* user kwargs is not the user's doing: it propagates with
its traceback.

:class:`EnvProbe` is what a :class:`~trpo_tf.runner.Trainer` needs to know about its env before it builds any
(spaces and the run.json description): one checked env, read and closed. The app opens that env once and
also checks the randomization against it, so a training start constructs one probe env, not two.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from trpo_tf.run_dir import RunInfo, TaskDescription


class EnvSetupError(ValueError):
    """The environment cannot be used as asked. Its message is one readable line."""


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:240]


def space_problem(observation_space: gym.Space, action_space: gym.Space) -> str | None:
    """Why the learner cannot use these spaces (None if it can)."""
    obs = observation_space
    if not (isinstance(obs, gym.spaces.Box) and len(obs.shape) == 1 and obs.shape[0] >= 1
            and np.issubdtype(obs.dtype, np.number)):
        return (f"observation space {obs} is not supported; trpo-tf needs a flat Box of numbers "
                "(wrap the env with gymnasium.wrappers.FlattenObservation or a one-hot wrapper)")
    act = action_space
    if isinstance(act, gym.spaces.Discrete):
        return None if act.n >= 2 and act.start == 0 else f"action space {act} needs n >= 2 and start 0"
    if not (isinstance(act, gym.spaces.Box) and len(act.shape) == 1 and act.shape[0] >= 1):
        return f"action space {act} is not supported; trpo-tf needs a flat Box or a Discrete action space"
    return None


def open_env(make: Callable[[], gym.Env], name: str, user_kwargs: Mapping[str, Any] | None = None,
             try_step: bool = True) -> gym.Env:
    """``make()`` checked as described in the module docstring; with user kwargs and ``try_step`` the env is
    also reset (seed 0) and stepped once with a random action. Returns the env (the caller closes it)."""
    try:
        env = make()
    except gym.error.DependencyNotInstalled as exc:
        raise EnvSetupError(f"{name} needs a package that is not installed: {_first_line(exc)}") from None
    except Exception as exc:
        if user_kwargs:
            raise EnvSetupError(f"{name} rejected env_kwargs {dict(user_kwargs)!r}: {_first_line(exc)}") from None
        raise
    problem = space_problem(env.observation_space, env.action_space)
    if problem:
        env.close()
        raise EnvSetupError(f"{name}: {problem}")
    if user_kwargs and try_step:
        try:
            env.reset(seed=0)
            env.step(env.action_space.sample())
        except Exception as exc:
            env.close()
            raise EnvSetupError(f"{name} fails with env_kwargs {dict(user_kwargs)!r}: {_first_line(exc)}") \
                from None
    return env


@dataclass(frozen=True)
class EnvProbe:
    """An env that passed :func:`open_env`, as the learner needs it: its spaces and its run.json record."""

    observation_space: gym.Space
    action_space: gym.Space
    info: RunInfo

    @classmethod
    def of(cls, task: TaskDescription, env: gym.Env) -> "EnvProbe":
        """Read an open env (the caller closes it)."""
        return cls(env.observation_space, env.action_space, RunInfo.from_env(task, env))

    @classmethod
    def open(cls, make: Callable[[], gym.Env], task: TaskDescription,
             user_kwargs: Mapping[str, Any] | None = None) -> "EnvProbe":
        """Open one env with :func:`open_env` (same errors), read it, close it."""
        env = open_env(make, task.gym_id, user_kwargs)
        try:
            return cls.of(task, env)
        finally:
            env.close()
