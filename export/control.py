"""A fixed-rate control loop for running a policy on a robot (numpy only; no TensorFlow, no onnxruntime).

Timing: tick k starts at the absolute deadline ``t0 + k / rate_hz`` (``time.perf_counter``), so the
schedule does not drift. The loop sleeps until ``spin_s`` before a deadline, then busy-waits the rest
(``time.sleep`` overshoots by ~70 µs on Linux). A tick runs read_observation → act → apply_action and
*misses its deadline* when it ends after the next tick's start. After a miss the loop does not burst to
catch up: slots already in the past are skipped (counted in ``skipped_ticks``) and the schedule resumes
on the original grid.

Stopping (``LoopReport.reason``):

* ``"completed"`` — ``duration_s`` elapsed or ``max_ticks`` ticks ran;
* ``"stopped"`` — the robot raised ``StopIteration`` from ``read_observation``/``apply_action`` (end of
  an episode; no import from trpo-tf needed), or another thread called :meth:`ControlLoop.request_stop`;
* ``"policy_error: ..."`` / ``"robot_error: ..."`` — an exception from ``act`` / from the robot;
* ``"overruns: ..."`` — more than ``max_overruns`` missed deadlines in total, or more than
  ``max_consecutive_overruns`` in a row.

On errors and overruns ``robot.safe_state()`` is called before ``run`` returns (and on
``KeyboardInterrupt``, which is then re-raised). On "completed"/"stopped" the robot is left as it is
unless ``safe_state_on_exit`` is set, in which case ``safe_state()`` ends every run.

Deployment guards (continuous actions; as ros2_control's ONNX policy controller offers), applied to the
policy's action before the robot gets it, in this order:

* blend-in: over the first ``blend_in_steps`` ticks the command moves from ``default_action`` to the
  policy's action, ``a_i = d + w_i (π(o_i) − d)`` with ``w_i = (i + 1) / N``;
* rate limit: no element changes by more than ``max_action_delta`` from the previous command (the first
  command is limited against ``default_action`` when one is given).

Both keep a command between two in-bounds commands, so they never leave the robot's bounds.
"""

from __future__ import annotations

import math
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Callable, Iterator, Protocol, runtime_checkable

import numpy as np


@runtime_checkable
class RobotInterface(Protocol):
    """What the control loop needs from a robot (or a simulator standing in for one)."""

    def read_observation(self) -> np.ndarray:
        """The current observation, laid out as the policy's ``metadata.obs_layout`` says."""
        ...

    def apply_action(self, action: Any) -> None:
        """Send one action (``(act_dim,)`` float32, or an int for a discrete policy) to the actuators."""
        ...

    def safe_state(self) -> None:
        """Bring the robot to a safe state (brakes, zero torque, hold position...). Must not block long."""
        ...


@dataclass(frozen=True)
class LoopReport:
    """What happened during :meth:`ControlLoop.run`. Latencies are read→act→apply times in µs over the
    last ``history`` ticks (0.0 when no tick ran); ``wake_late_*`` say how late ticks started (the OS
    scheduler: a large max means the process was descheduled, not that the policy was slow)."""

    reason: str
    ticks: int
    missed_deadlines: int
    skipped_ticks: int
    rate_hz: float
    elapsed_s: float
    latency_p50_us: float
    latency_p99_us: float
    latency_max_us: float
    wake_late_p99_us: float
    wake_late_max_us: float
    safe_state_called: bool
    error: BaseException | None = field(default=None, repr=False, compare=False)
    rate_limited_ticks: int = 0  # ticks whose command the rate limit changed

    @property
    def deadline_met_fraction(self) -> float:
        """Fraction of ticks that finished before the next tick's start (1.0 when no tick ran)."""
        return 1.0 - self.missed_deadlines / self.ticks if self.ticks else 1.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (the exception object is left out; its text is in ``reason``)."""
        d = asdict(self)
        del d["error"]
        d["deadline_met_fraction"] = self.deadline_met_fraction
        return d


class ControlLoop:
    """Run ``policy`` on ``robot`` at ``rate_hz``; see the module docstring for timing and stop rules.

    ``policy`` is anything with an ``act(obs)`` method (e.g. :class:`export.runtime.OnnxPolicy`) or a
    plain callable. ``spin_s`` is the busy-wait margin before each deadline (more = more precise, more CPU;
    ``spin_s >= 1 / rate_hz`` busy-waits the whole period). ``history`` bounds the latency record.
    ``realtime_priority`` (Linux, needs root or CAP_SYS_NICE) runs the loop thread under SCHED_FIFO at
    that priority, restoring the old policy afterwards: on a loaded machine this is what keeps other
    processes from delaying ticks by milliseconds.
    """

    def __init__(
        self,
        policy: Any,
        robot: RobotInterface,
        rate_hz: float,
        max_overruns: int | None = None,
        max_consecutive_overruns: int | None = 10,
        spin_s: float = 2e-4,
        history: int = 1_000_000,
        realtime_priority: int | None = None,
        max_action_delta: float | Any | None = None,
        blend_in_steps: int = 0,
        default_action: Any | None = None,
        safe_state_on_exit: bool = False,
    ):
        act = getattr(policy, "act", policy)
        if not callable(act):
            raise ValueError(
                f"policy must have an act(obs) method or be callable, got {type(policy).__name__}"
            )
        methods = ("read_observation", "apply_action", "safe_state")
        missing = [m for m in methods if not callable(getattr(robot, m, None))]
        if missing:
            raise ValueError(f"robot must implement RobotInterface; missing method(s) {missing}")
        if not (isinstance(rate_hz, (int, float)) and math.isfinite(rate_hz) and rate_hz > 0):
            raise ValueError(f"rate_hz must be a positive finite number, got {rate_hz!r}")
        limits = {"max_overruns": max_overruns, "max_consecutive_overruns": max_consecutive_overruns}
        for name, value in limits.items():
            if value is not None and (type(value) is not int or value < 0):
                raise ValueError(f"{name} must be None or an integer >= 0, got {value!r}")
        if not (isinstance(spin_s, (int, float)) and spin_s >= 0):
            raise ValueError(f"spin_s must be a number >= 0, got {spin_s!r}")
        if type(history) is not int or history < 1:
            raise ValueError(f"history must be an integer >= 1, got {history!r}")
        self._act: Callable[[Any], Any] = act
        self.robot = robot
        self.rate_hz = float(rate_hz)
        self.max_overruns = max_overruns
        self.max_consecutive_overruns = max_consecutive_overruns
        self.spin_s = float(spin_s)
        self.history = history
        if realtime_priority is not None:
            if not hasattr(os, "sched_setscheduler"):
                raise ValueError("realtime_priority needs Linux (os.sched_setscheduler)")
            lo, hi = os.sched_get_priority_min(os.SCHED_FIFO), os.sched_get_priority_max(os.SCHED_FIFO)
            if type(realtime_priority) is not int or not lo <= realtime_priority <= hi:
                raise ValueError(f"realtime_priority must be None or an integer in [{lo}, {hi}], "
                                 f"got {realtime_priority!r}")
        self.realtime_priority = realtime_priority
        self.max_action_delta, self.default_action = _guard_arrays(max_action_delta, default_action)
        if type(blend_in_steps) is not int or blend_in_steps < 0:
            raise ValueError(f"blend_in_steps must be an integer >= 0, got {blend_in_steps!r}")
        if blend_in_steps and self.default_action is None:
            raise ValueError("blend_in_steps needs default_action (the command to blend in from)")
        self.blend_in_steps = blend_in_steps
        self.safe_state_on_exit = bool(safe_state_on_exit)
        self._stop_requested = False

    def request_stop(self) -> None:
        """Ask a running loop (e.g. from another thread) to stop after the current tick."""
        self._stop_requested = True

    def run(self, duration_s: float | None = None, max_ticks: int | None = None) -> LoopReport:
        """Run until ``duration_s`` seconds of schedule or ``max_ticks`` ticks (whichever first), a stop,
        an error or too many overruns. With neither limit it runs until stopped."""
        finite = isinstance(duration_s, (int, float)) and 0 < duration_s < math.inf
        if duration_s is not None and not finite:
            raise ValueError(f"duration_s must be None or a positive finite number, got {duration_s!r}")
        if max_ticks is not None and (type(max_ticks) is not int or max_ticks < 1):
            raise ValueError(f"max_ticks must be None or an integer >= 1, got {max_ticks!r}")
        n_slots = None if duration_s is None else max(1, round(duration_s * self.rate_hz))
        size = min(x for x in (n_slots, max_ticks, self.history) if x is not None)
        rec = _Record(latency=np.zeros(size), wake=np.zeros(size))  # preallocated before the first tick
        self._stop_requested = False
        with realtime_scheduling(self.realtime_priority):
            t0 = time.perf_counter()
            try:
                reason, error = self._tick_until_done(t0, n_slots, max_ticks, rec)
            except BaseException:  # KeyboardInterrupt, SystemExit: make the robot safe, then propagate
                _call_safe_state(self.robot)
                raise
            elapsed = time.perf_counter() - t0

        safe_called = reason not in ("completed", "stopped") or self.safe_state_on_exit
        if safe_called:
            safe_error = _call_safe_state(self.robot)
            if safe_error is not None:
                reason += f"; safe_state raised {_describe(safe_error)}"
        return rec.report(reason, self.rate_hz, elapsed, safe_called, error)

    def _guard(self, action: Any, previous: np.ndarray | None, tick: int) -> tuple[np.ndarray, bool]:
        """Blend-in, then rate limit (see the module docstring); returns (command, rate limit acted)."""
        raw = np.asarray(action)
        if raw.dtype.kind != "f" or raw.ndim != 1:
            raise ValueError(f"rate limit and blend-in need a continuous action vector, got {raw.dtype}{raw.shape}")
        a = raw.astype(np.float64)
        if tick < self.blend_in_steps:
            w = (tick + 1) / self.blend_in_steps
            a = self.default_action + w * (a - self.default_action)
        limited = False
        if self.max_action_delta is not None and previous is not None:
            lo, hi = previous - self.max_action_delta, previous + self.max_action_delta
            clipped = np.minimum(np.maximum(a, lo), hi)
            limited = bool((clipped != a).any())
            a = clipped
        return a.astype(raw.dtype), limited

    def _tick_until_done(
        self, t0: float, n_slots: int | None, max_ticks: int | None, rec: _Record
    ) -> tuple[str, Exception | None]:
        """The loop proper; returns (reason, exception). Tick k is due at t0 + k * period."""
        act, robot, spin, period = self._act, self.robot, self.spin_s, 1.0 / self.rate_hz
        guarded = self.max_action_delta is not None or self.blend_in_steps > 0
        previous = self.default_action
        perf, sleep = time.perf_counter, time.sleep
        size = len(rec.latency)
        slot = consecutive = 0
        while rec.ticks != max_ticks and (n_slots is None or slot < n_slots):
            if self._stop_requested:
                return "stopped", None
            deadline = t0 + slot * period
            remaining = deadline - perf()
            if remaining > spin:
                sleep(remaining - spin)
            while perf() < deadline:
                pass
            start = perf()
            try:
                obs = robot.read_observation()
            except StopIteration:
                return "stopped", None
            except Exception as e:
                return f"robot_error: read_observation raised {_describe(e)}", e
            try:
                action = act(obs)
                if guarded:
                    action, limited = self._guard(action, previous, rec.ticks)
                    previous = action
                    rec.limited += limited
            except Exception as e:
                return f"policy_error: {_describe(e)}", e
            try:
                robot.apply_action(action)
            except StopIteration:
                return "stopped", None
            except Exception as e:
                return f"robot_error: apply_action raised {_describe(e)}", e
            end = perf()
            i = rec.ticks % size
            rec.latency[i] = end - start
            rec.wake[i] = start - deadline
            rec.ticks += 1
            slot += 1
            if end <= t0 + slot * period:
                consecutive = 0
                continue
            rec.missed += 1
            consecutive += 1
            next_slot = int((end - t0) / period) + 1  # the first slot still in the future
            rec.skipped += next_slot - slot
            slot = next_slot
            limit = self.max_consecutive_overruns
            if limit is not None and consecutive > limit:
                return (f"overruns: {consecutive} consecutive missed deadlines "
                        f"(max_consecutive_overruns={limit})"), None
            if self.max_overruns is not None and rec.missed > self.max_overruns:
                return (f"overruns: {rec.missed} missed deadlines in {rec.ticks} ticks "
                        f"(max_overruns={self.max_overruns})"), None
        return "completed", None


@dataclass
class _Record:
    """Counters and preallocated per-tick timings (seconds; a ring buffer when ``history`` is short)."""

    latency: np.ndarray
    wake: np.ndarray
    ticks: int = 0
    missed: int = 0
    skipped: int = 0
    limited: int = 0

    def report(
        self, reason: str, rate_hz: float, elapsed: float, safe_called: bool, error: Exception | None
    ) -> LoopReport:
        filled = min(self.ticks, len(self.latency))
        lat, wake = self.latency[:filled] * 1e6, self.wake[:filled] * 1e6
        p50, p99 = np.percentile(lat, [50, 99]) if filled else (0.0, 0.0)
        return LoopReport(
            reason=reason,
            ticks=self.ticks,
            missed_deadlines=self.missed,
            skipped_ticks=self.skipped,
            rate_hz=rate_hz,
            elapsed_s=elapsed,
            latency_p50_us=float(p50),
            latency_p99_us=float(p99),
            latency_max_us=float(lat.max()) if filled else 0.0,
            wake_late_p99_us=float(np.percentile(wake, 99)) if filled else 0.0,
            wake_late_max_us=float(wake.max()) if filled else 0.0,
            safe_state_called=safe_called,
            error=error,
            rate_limited_ticks=self.limited,
        )


@contextmanager
def realtime_scheduling(priority: int | None) -> Iterator[None]:
    """Run the calling thread under SCHED_FIFO ``priority`` inside the block (no-op for None)."""
    if priority is None:
        yield
        return
    old_policy, old_param = os.sched_getscheduler(0), os.sched_getparam(0)
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
    except PermissionError as e:
        raise PermissionError(
            f"realtime_priority={priority} needs root, CAP_SYS_NICE or an rtprio limit (ulimit -r): {e}"
        ) from None
    try:
        yield
    finally:
        os.sched_setscheduler(0, old_policy, old_param)


def _guard_arrays(delta: Any, default: Any) -> tuple[np.ndarray | None, np.ndarray | None]:
    """Validate ``max_action_delta`` (> 0, a number or one per action element) and ``default_action``."""
    out = []
    for name, value in (("max_action_delta", delta), ("default_action", default)):
        if value is None:
            out.append(None)
            continue
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim > 1 or arr.size == 0 or not np.isfinite(arr).all():
            raise ValueError(f"{name} must be a finite number or vector, got {value!r}")
        if name == "max_action_delta" and (arr <= 0).any():
            raise ValueError(f"max_action_delta must be > 0, got {value!r}")
        out.append(arr)
    return out[0], out[1]


def _call_safe_state(robot: RobotInterface) -> Exception | None:
    try:
        robot.safe_state()
    except Exception as e:  # report it; the caller's reason already says why we stopped
        return e
    return None


def _describe(e: BaseException) -> str:
    return f"{type(e).__name__}: {e}"
