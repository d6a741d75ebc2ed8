"""aegis_kernel.writer: the one thread per kernel that does the blocking half of durable writes."""

from __future__ import annotations

import threading

import pytest
import trio
import trio.testing

from aegis_kernel.writer import StateWriter


def test_jobs_run_in_order_on_one_thread_and_close_drains_them():
    writer = StateWriter()
    ran: list[tuple[int, str]] = []
    tickets = [writer.submit(lambda n=n: ran.append((n, threading.current_thread().name))) for n in range(5)]
    writer.close()
    assert all(t.done for t in tickets)
    assert [n for n, _ in ran] == [0, 1, 2, 3, 4]
    assert {name for _, name in ran} == {"aegis-state-writer"}


def test_a_job_waiting_with_the_same_key_covers_a_new_one():
    writer = StateWriter()
    gate, started = threading.Event(), threading.Event()
    writer.submit(lambda: (started.set(), gate.wait()))  # keeps the thread busy
    started.wait()
    content = ["first"]
    written: list[str] = []
    first = writer.submit(lambda: written.append(content[0]), key="snapshot")
    content[0] = "second"
    second = writer.submit(lambda: written.append("never queued"), key="snapshot")
    assert second is first and writer.waiting("snapshot") is first
    gate.set()
    first.result(timeout=30)
    assert written == ["second"]  # one write, of the newest content
    assert writer.waiting("snapshot") is None
    writer.close()


def test_a_failed_job_raises_for_its_waiter_only():
    writer = StateWriter()

    def fails() -> None:
        raise OSError(28, "No space left on device")

    bad = writer.submit(fails)
    good = writer.submit(lambda: None)
    with pytest.raises(OSError, match="No space"):
        bad.result(timeout=30)
    good.result(timeout=30)
    writer.close()


@pytest.mark.trio
async def test_trio_tasks_await_a_ticket_without_blocking_the_loop():
    writer = StateWriter()
    gate = threading.Event()
    ticket = writer.submit(gate.wait)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticket.wait)
        await trio.testing.wait_all_tasks_blocked()
        assert not ticket.done  # the loop runs on while the job waits
        gate.set()
    assert ticket.done
    writer.close()


def test_a_closed_writer_starts_again_for_a_later_job():
    writer = StateWriter()
    writer.submit(lambda: None).result(timeout=30)
    writer.close()
    writer.submit(lambda: None).result(timeout=30)
    writer.close()
