"""Generalized Advantage Estimation (Schulman et al. 2016) with time-limit bootstrapping, and reward scaling.

    δ_t = r_t + γ · V(s_{t+1}) · (1 − terminated_t) − V(s_t)
    Â_t = δ_t + γλ · (1 − done_t) · Â_{t+1},     R̂_t = Â_t + V(s_t)

On a time-limit truncation the episode did not end in the MDP, so s_{t+1} is the true final observation
and we bootstrap from V(final_obs); on termination the future is worth nothing. Either way the
recursion stops at the episode boundary (done = terminated or truncated).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def compute_gae(rewards: np.ndarray, values: np.ndarray, next_values: np.ndarray, terminated: np.ndarray,
                truncated: np.ndarray, gamma: float, lam: float) -> tuple[np.ndarray, np.ndarray]:
    """Advantages and returns for arrays shaped [T, n_envs].

    ``next_values[t]`` is V of the observation that followed step t: V(s_{t+1}) inside an episode,
    V(final_obs) at a truncation (ignored at a termination). Returns (advantages, returns), float32.
    """
    rewards, values, next_values = (np.asarray(a, np.float64) for a in (rewards, values, next_values))
    terminated, truncated = np.asarray(terminated, bool), np.asarray(truncated, bool)
    if not rewards.shape == values.shape == next_values.shape == terminated.shape == truncated.shape:
        raise ValueError("rewards, values, next_values, terminated, truncated must share one [T, n_envs] shape")
    not_terminal = 1.0 - terminated
    not_done = 1.0 - (terminated | truncated)
    deltas = rewards + gamma * next_values * not_terminal - values
    advantages = np.zeros_like(rewards)
    running = np.zeros(rewards.shape[1:])
    for t in reversed(range(len(rewards))):
        running = deltas[t] + gamma * lam * not_done[t] * running
        advantages[t] = running
    return advantages.astype(np.float32), (advantages + values).astype(np.float32)


class RewardScaler:
    """Divides rewards by the running std of the discounted return (as SB3's VecNormalize does).

    Scaling by a slowly changing positive constant leaves the optimal policy unchanged and keeps the
    critic's regression targets near unit scale, which matters for locomotion returns in the thousands.
    """

    def __init__(self, n_envs: int, gamma: float, clip: float = 10.0, epsilon: float = 1e-8) -> None:
        self.gamma, self.clip, self.epsilon = gamma, clip, epsilon
        self.discounted = np.zeros(n_envs)
        self.count, self.mean, self.var = 1e-4, 0.0, 1.0

    def __call__(self, rewards: np.ndarray, dones: np.ndarray) -> np.ndarray:
        """Scale rewards [T, n_envs] collected in order; updates the statistics as it goes.

        Row t is divided by the std of every discounted return seen up to and including row t. Merging the
        rows one at a time (Chan et al.) gives the pooled mean and variance, so they are computed for all
        rows at once from cumulative sums (centred on the previous mean); only the discounted returns
        themselves are a loop over time."""
        rewards = np.asarray(rewards, np.float64)
        keep = ~np.asarray(dones, bool)
        returns = np.empty_like(rewards)  # each env's discounted return after row t, before a reset
        running = self.discounted
        for t in range(len(rewards)):
            running = running * self.gamma + rewards[t]
            returns[t] = running
            running = running * keep[t]  # an episode ended: its return starts again from zero
        self.discounted = running

        centred = returns - self.mean
        count = self.count + rewards.shape[1] * np.arange(1, len(rewards) + 1)
        mean = np.cumsum(centred.sum(axis=1)) / count  # the pooled mean after each row, minus self.mean
        var = np.maximum((self.count * self.var + np.cumsum((centred * centred).sum(axis=1))) / count
                         - mean * mean, 0.0)
        if len(rewards):
            self.count, self.mean, self.var = float(count[-1]), self.mean + float(mean[-1]), float(var[-1])
        scaled = rewards / np.sqrt(var + self.epsilon)[:, None]
        return np.clip(scaled, -self.clip, self.clip).astype(np.float32)

    def state(self) -> dict[str, Any]:
        """Everything that determines the next scaled reward: the statistics and each env's running
        discounted return (without the latter a resumed run would scale its rewards differently)."""
        return {"count": self.count, "mean": self.mean, "var": self.var, "discounted": self.discounted.copy()}

    def load_state(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state`; a state without ``discounted`` (older checkpoints) starts it at zero."""
        self.count, self.mean, self.var = float(state["count"]), float(state["mean"]), float(state["var"])
        discounted = np.asarray(state.get("discounted", np.zeros_like(self.discounted)), np.float64)
        if discounted.shape != self.discounted.shape:
            raise ValueError(f"reward scaler state holds {discounted.shape} running returns, expected "
                             f"{self.discounted.shape} (one per env)")
        self.discounted = discounted.copy()
