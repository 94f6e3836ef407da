"""trpo_tf/interrupts.py: Ctrl-C recorded inside ``deferred_interrupts`` and raised at ``interrupt_point``;
a second Ctrl-C at once; the previous handler back on leaving. Real SIGINTs sent to this process."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from trpo_tf.interrupts import deferred_interrupts, interrupt_point


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(0.05)  # the handler runs in the main thread at the next bytecode


def test_outside_a_deferral_interrupt_point_does_nothing() -> None:
    interrupt_point()


def test_ctrl_c_waits_for_the_next_interrupt_point_and_the_handler_is_restored() -> None:
    before = signal.getsignal(signal.SIGINT)
    reached = []
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            _ctrl_c()
            reached.append("after the signal")  # not interrupted here
            interrupt_point()
            reached.append("after the safe point")
    assert reached == ["after the signal"]
    assert signal.getsignal(signal.SIGINT) is before


def test_a_second_ctrl_c_raises_at_once() -> None:
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            _ctrl_c()
            _ctrl_c()
            pytest.fail("the second Ctrl-C did not raise")


def test_a_request_no_safe_point_saw_is_dropped_when_the_work_is_done() -> None:
    with deferred_interrupts():
        _ctrl_c()
    interrupt_point()  # outside: nothing pending
    with deferred_interrupts():  # a new deferral starts clean
        interrupt_point()


def test_nested_deferrals_share_the_outer_record() -> None:
    with pytest.raises(KeyboardInterrupt):
        with deferred_interrupts():
            with deferred_interrupts():
                _ctrl_c()
            interrupt_point()  # the inner one ended; the request is still the outer's


def test_off_the_main_thread_nothing_is_installed() -> None:
    before = signal.getsignal(signal.SIGINT)
    seen = []

    def worker() -> None:
        with deferred_interrupts():
            seen.append(signal.getsignal(signal.SIGINT))
            interrupt_point()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen == [before]


def test_the_console_handler_interrupts_until_the_command_marks_its_work_done() -> None:
    """The ``trpo`` script's handler: Ctrl-C raises while a command works, and is ignored from the moment the
    command calls ``mark_work_done`` (its files written; the report, the return and TensorFlow's frees left)."""
    from trpo_tf.app.cli import _interrupt_until_finished
    from trpo_tf.interrupts import mark_work_done, reset_work_done, work_done

    before = signal.signal(signal.SIGINT, _interrupt_until_finished)
    try:
        reset_work_done()
        with pytest.raises(KeyboardInterrupt):
            _ctrl_c()
        mark_work_done()
        _ctrl_c()  # ignored
        assert work_done()
    finally:
        reset_work_done()
        signal.signal(signal.SIGINT, before)
