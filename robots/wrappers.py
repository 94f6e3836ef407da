"""Randomization as gymnasium wrappers, one per concern, each drawing from its own seeded stream.

Order around the env (outermost first): observation noise → action delay → action noise → pushes →
physics → the task. An action from the policy is delayed, then noised, then applied; an observation is
noised last, as a sensor would. Each wrapper re-derives its generator from the seed given to ``reset``
(:func:`robots.randomization.episode_rng`, one salt per wrapper) and otherwise continues it, so a vector
env seeded once replays exactly. Settings that can only give their nominal value leave the env untouched:
a nominal randomization is the plain env, bit for bit.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium as gym
import numpy as np

from robots.physics import PhysicsInterface, physics_of
from robots.randomization import (
    PER_ITEM_AXES,
    PHYSICS_AXES,
    Randomization,
    RandomizationError,
    draw,
    episode_rng,
    is_nominal,
    noise_std,
)

_SALT = {"physics": 1, "pushes": 2, "action_noise": 3, "delay": 4, "obs_noise": 5}


class _Seeded(gym.Wrapper):
    """A wrapper with its own generator, re-derived on every seeded reset."""

    salt = 0

    def __init__(self, env: gym.Env) -> None:
        super().__init__(env)
        self.rng = episode_rng(None, self.salt)

    def _reseed(self, seed: int | None) -> None:
        if seed is not None:
            self.rng = episode_rng(seed, self.salt)


class PhysicsRandomization(_Seeded):
    """Draw the physics factors of each episode and apply them through the task's physics interface."""

    salt = _SALT["physics"]

    def __init__(self, env: gym.Env, physics: PhysicsInterface, settings: dict[str, Any]) -> None:
        super().__init__(env)
        self.physics, self.settings = physics, settings
        self.factors: dict[str, Any] = {}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._reseed(seed)
        sizes = self.physics.sizes()
        factors: dict[str, Any] = {}
        for axis, value in self.settings.items():
            if axis == "com_offset":
                factors[axis] = self.rng.uniform(-value, value, 3)
            elif axis in PER_ITEM_AXES:  # one draw per body / actuator
                factors[axis] = draw(value, self.rng, size=sizes[axis])
            else:
                factors[axis] = draw(value, self.rng)
        self.physics.apply(factors)
        self.factors = factors
        return obs, info

    def close(self) -> None:
        super().close()


class RandomPushes(_Seeded):
    """Every ``interval_steps`` control steps, add a velocity change U(−v, v) per horizontal axis."""

    salt = _SALT["pushes"]

    def __init__(self, env: gym.Env, physics: PhysicsInterface, velocity: float, interval_steps: int) -> None:
        super().__init__(env)
        self.physics, self.velocity, self.interval = physics, float(velocity), max(1, int(interval_steps))
        self._t = 0
        self.pushes: list[np.ndarray] = []  # the pushes of the current episode

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._reseed(seed)
        self._t, self.pushes = 0, []
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        self._t += 1
        if self._t % self.interval == 0:
            dv = self.rng.uniform(-self.velocity, self.velocity, 2)
            self.physics.push(dv)
            self.pushes.append(dv)
        return self.env.step(action)


class ActionNoise(_Seeded):
    """Gaussian noise (σ in action units, fixed or drawn per episode) on each action, clipped to bounds."""

    salt = _SALT["action_noise"]

    def __init__(self, env: gym.Env, sigma: float | tuple[float, float]) -> None:
        super().__init__(env)
        space = env.action_space
        if not isinstance(space, gym.spaces.Box):
            raise RandomizationError("action_noise needs a continuous (Box) action space")
        self.setting, self.sigma = sigma, 0.0
        self._low, self._high = space.low.astype(np.float64), space.high.astype(np.float64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._reseed(seed)
        self.sigma = draw(self.setting, self.rng)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        a = np.asarray(action, np.float64)
        noisy = np.clip(a + self.rng.normal(0.0, self.sigma, a.shape), self._low, self._high)
        return self.env.step(noisy.astype(np.asarray(action).dtype))


class ActionDelay(_Seeded):
    """The env applies the action commanded ``k`` control steps earlier, ``k`` fixed or drawn per episode
    from lo..hi; before the first command has come through, the zero action (the space's centre)."""

    salt = _SALT["delay"]

    def __init__(self, env: gym.Env, steps: int | tuple[int, int]) -> None:
        super().__init__(env)
        space = env.action_space
        self.setting, self.k = steps, 0
        if isinstance(space, gym.spaces.Box):
            self._idle: Any = ((space.low.astype(np.float64) + space.high) / 2).astype(space.dtype)
        else:
            self._idle = 0
        self._queue: deque[Any] = deque()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        self._reseed(seed)
        self.k = draw(self.setting, self.rng, integer=True)
        self._queue = deque([self._idle] * self.k)
        return self.env.reset(seed=seed, options=options)

    def step(self, action: Any):
        self._queue.append(action)
        return self.env.step(self._queue.popleft())


class ObservationNoise(_Seeded):
    """Gaussian noise on each observation element: σ = factor × the field's σ (factor fixed or drawn)."""

    salt = _SALT["obs_noise"]

    def __init__(self, env: gym.Env, sigma: np.ndarray, factor: float | tuple[float, float]) -> None:
        super().__init__(env)
        if sigma.shape != env.observation_space.shape:
            raise RandomizationError(f"obs noise σ has shape {sigma.shape}, the observation "
                                     f"{env.observation_space.shape}")
        self.base_sigma, self.setting, self.sigma = sigma.astype(np.float64), factor, np.zeros_like(sigma)

    def _noisy(self, obs: np.ndarray) -> np.ndarray:
        out = obs + self.rng.normal(0.0, 1.0, obs.shape) * self.sigma
        return out.astype(obs.dtype)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._reseed(seed)
        self.sigma = self.base_sigma * draw(self.setting, self.rng)
        return self._noisy(obs), info

    def step(self, action: Any):
        obs, reward, terminated, truncated, info = self.env.step(action)
        return self._noisy(obs), reward, terminated, truncated, info


def offered_axes(env: gym.Env) -> tuple[str, ...]:
    """Every axis this env can randomize: its simulator's physics axes, then the wrapper axes."""
    physics = physics_of(env)
    axes = list(physics.axes()) if physics is not None else []
    if isinstance(env.action_space, gym.spaces.Box):
        axes += ["action_delay_steps", "action_noise"]
    else:
        axes += ["action_delay_steps"]
    axes.append("obs_noise_scale")
    if physics is not None and physics.can_push():
        axes.append("push_velocity")
    return tuple(axes)


def randomize(env: gym.Env, settings: Randomization, obs_layout: tuple[Any, ...], control_hz: float) -> gym.Env:
    """Wrap ``env`` with what ``settings`` turns on; axes that can only be nominal add no wrapper."""
    active = {k: v for k, v in settings.axes.items() if not is_nominal(v, k)}
    if not active:
        return env
    offered = offered_axes(env)
    missing = [k for k in active if k not in offered]
    if missing:
        raise RandomizationError(f"this task cannot randomize {', '.join(missing)}; it offers: {', '.join(offered)}")
    physics = physics_of(env)
    physical = {k: v for k, v in active.items() if k in PHYSICS_AXES}
    if physical:
        assert physics is not None
        env = PhysicsRandomization(env, physics, physical)
    if "push_velocity" in active:
        assert physics is not None
        env = RandomPushes(env, physics, float(active["push_velocity"]),
                           round(settings.push_interval_s * control_hz))
    if "action_noise" in active:
        env = ActionNoise(env, active["action_noise"])
    if "action_delay_steps" in active:
        env = ActionDelay(env, active["action_delay_steps"])
    if "obs_noise_scale" in active:
        env = ObservationNoise(env, noise_std(obs_layout, settings), active["obs_noise_scale"])
    return env
