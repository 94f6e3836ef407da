"""Ctrl-C honoured at safe points instead of wherever the main thread happens to be.

A SIGINT normally raises ``KeyboardInterrupt`` in the middle of whatever Python line runs next, and some of the
libraries an export goes through do not survive that: measured here (2026-11-21, an interrupt timer swept
over ``export_onnx``), an interrupt landing in a ``__del__`` or a garbage-collector callback during TensorFlow's
tracing or tf2onnx is swallowed ("Exception ignored in ..."), and one landing in a Keras checkpoint restore
leaves variables half-built, so that a later call fails with an unrelated ``AttributeError`` — ``trpo
export`` then exits 1 with a traceback instead of 130.

Inside :func:`deferred_interrupts` the first Ctrl-C is only recorded; :func:`interrupt_point` raises
``KeyboardInterrupt`` at the next place the code marks as safe (between the phases of an export). A second
Ctrl-C raises at once, for a user who does not want to wait. Outside the context (or off the main thread,
where Python cannot install signal handlers) :func:`interrupt_point` does nothing.

:func:`mark_work_done` is the other half, for the console script (``trpo_tf.app.cli``): a command calls it
once its files are written, and a Ctrl-C from then on (while the report prints, the command returns through
the dispatcher and its locals' TensorFlow objects are freed) is ignored instead of turning a finished command
into exit 130.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

_requests: list[int] = []  # [Ctrl-C count] while a deferral is active, else empty
_work_done = False  # set by a command once its files are written and only its report is left


def _record(signum: int, frame: object) -> None:
    _requests[-1] += 1
    if _requests[-1] > 1:  # the second Ctrl-C: the user does not want to wait for a safe point
        raise KeyboardInterrupt


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Record Ctrl-C instead of raising it; :func:`interrupt_point` raises it where that is safe. On leaving,
    the previous handler is back and a request that no safe point saw is dropped (the work it would have
    stopped is finished). Nested uses share the outermost one's record."""
    if _requests or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, _record)
    _requests.append(0)
    try:
        yield
    finally:
        _requests.pop()
        signal.signal(signal.SIGINT, previous)


def interrupt_requested() -> bool:
    """Whether Ctrl-C was pressed since :func:`deferred_interrupts` began (for a loop that stops cleanly itself)."""
    return bool(_requests and _requests[-1])


def interrupt_point() -> None:
    """Raise ``KeyboardInterrupt`` if Ctrl-C was pressed since :func:`deferred_interrupts` began."""
    if interrupt_requested():
        raise KeyboardInterrupt


def mark_work_done() -> None:
    """The command's work is complete (its files are written): the console script ignores Ctrl-C from now."""
    global _work_done
    _work_done = True


def reset_work_done() -> None:
    """A new command starts (the console script calls this before dispatching)."""
    global _work_done
    _work_done = False


def work_done() -> bool:
    """Whether the running command has called :func:`mark_work_done`."""
    return _work_done
