"""An env that raises mid-episode, as a simulator whose solver blows up would. Its own module (gymnasium only),
so a worker process that unpickles the factory imports nothing else of the tests (no TensorFlow)."""

from __future__ import annotations

import os

import gymnasium as gym


class DivergesAt(gym.Wrapper):
    """Raises on its ``at``-th step, unless it runs in process ``spared_pid``."""

    def __init__(self, env: gym.Env, at: int, spared_pid: int = 0) -> None:
        super().__init__(env)
        self.at, self.steps, self.spared_pid = at, 0, spared_pid

    def step(self, action):
        self.steps += 1
        if self.steps == self.at and os.getpid() != self.spared_pid:
            raise ValueError(f"contact solver diverged at step {self.at}")
        return self.env.step(action)


def diverging_cartpole(at: int, spared_pid: int = 0) -> gym.Env:
    return DivergesAt(gym.make("CartPole-v1"), at, spared_pid)
