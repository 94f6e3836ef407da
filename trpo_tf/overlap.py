"""The critic fit of iteration k beside its policy step and the env steps of iteration k+1 (issue 13; config
``overlap_critic``).

The next collection needs only θ_{k+1} and the new normalizer statistics; φ_{k+1} (the fitted critic) is
first needed by the next GAE. So :meth:`trpo_tf.algorithm.TRPO.update_policy` computes the new statistics in
numpy *without assigning them*, starts the critic fit in a background thread and runs the policy step beside
it (:meth:`PendingCriticFit.beside`); the runner loads the numpy actor with (θ_{k+1}, stats_{k+1}), collects
batch k+1 (the fit goes on beside it if the policy step ended first), and only then calls
:meth:`PendingCriticFit.join`, which waits for the fit, re-raises its exception (with the thread's traceback)
and assigns the statistics. While the thread runs, nothing writes a variable it reads: the critic fit sees the
normalizer's variables frozen at stats_k, exactly as in :class:`trpo_tf.update.TRPOUpdate`.

A compiled TensorFlow call releases the GIL while it runs, so the fit takes whichever core is free: the one
the policy step leaves, then a share of the two that step MuJoCo. The maths is that of
:class:`trpo_tf.update.TRPOUpdate` (the same two graphs, the same seeds, the same order of reads and writes);
only when the numbers arrive changes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from trpo_tf.critic import CriticTrainer

T = TypeVar("T")


class PendingCriticFit:
    """A critic fit running in a background thread; :meth:`join` returns its diagnostics."""

    def __init__(self, critic_trainer: CriticTrainer, obs: np.ndarray, returns: np.ndarray, seed: int,
                 after_join: Callable[[], None] | None = None) -> None:
        """Start ``critic_trainer.fit(obs, returns, seed)`` now; ``after_join`` runs in the joining thread once
        the fit has ended (the normalizer's assignment)."""
        self._after_join = after_join
        self._result: dict[str, float] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(critic_trainer, obs, returns, seed), daemon=True,
                                        name="trpo-critic-fit")
        self._thread.start()

    @classmethod
    def beside(cls, step: Callable[[], T], critic_trainer: CriticTrainer, obs: np.ndarray, returns: np.ndarray,
               seed: int, after_join: Callable[[], None] | None = None) -> tuple[T, PendingCriticFit]:
        """Start the fit, run ``step()`` (the policy step) in this thread beside it, and return (its result, the
        running fit). If ``step`` raises, the fit's thread is waited for before the error goes on."""
        fit = cls(critic_trainer, obs, returns, seed, after_join)
        try:
            return step(), fit
        except BaseException:
            fit.abandon()  # the fit's own error, if any, is the lesser news
            raise

    def _run(self, critic_trainer: CriticTrainer, obs: np.ndarray, returns: np.ndarray, seed: int) -> None:
        try:
            self._result = critic_trainer.fit(obs, returns, seed)
        except BaseException as exc:  # re-raised by join(), in the caller's thread
            self._error = exc

    def join(self) -> dict[str, Any]:
        """Wait for the fit; re-raise its exception (same object, with the thread's traceback), else run ``after_join``
        and return ``value_loss``, ``value_loss_after`` and ``critic_wait_s`` (the seconds waited here)."""
        t0 = time.perf_counter()
        self._thread.join()
        waited = time.perf_counter() - t0
        if self._error is not None:
            error, self._error = self._error, None
            raise error  # its __traceback__ still holds the thread's frames, this frame is added on top
        if self._result is None:
            raise RuntimeError("PendingCriticFit.join() called twice")
        result, self._result = self._result, None
        if self._after_join is not None:
            self._after_join()
        return {**result, "critic_wait_s": waited}

    def abandon(self) -> BaseException | None:
        """Wait for the thread without using its result (the loop is ending on an error); return its error."""
        self._thread.join()
        self._result = None
        error, self._error = self._error, None
        return error


__all__ = ["PendingCriticFit"]
