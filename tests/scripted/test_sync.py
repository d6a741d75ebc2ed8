"""aegis_scripted.sync: the agent's thread primitives."""

from __future__ import annotations

import time

from aegis_scripted import sync


def test_flag_wait_times_out_then_sees_a_set():
    flag = sync.Flag()
    started = time.monotonic()
    assert flag.wait(0.05) is False and not flag.is_set()
    assert time.monotonic() - started >= 0.04
    flag.set()
    flag.set()  # idempotent
    assert flag.is_set() and flag.wait(0) is True and flag.wait() is True


def test_start_runs_the_target_and_flags_its_end():
    gate, seen = sync.Flag(), []

    def target():
        gate.wait(5)
        seen.append("ran")

    done = sync.start(target)
    assert not done.is_set()
    gate.set()
    assert done.wait(5) is True
    assert seen == ["ran"]


def test_several_waiters_all_wake():
    flag, woke, lock = sync.Flag(), [], sync.Lock()

    def waiter():
        if flag.wait(5):
            with lock:
                woke.append(1)

    ends = [sync.start(waiter) for _ in range(4)]
    flag.set()
    assert all(end.wait(5) for end in ends)
    assert len(woke) == 4
