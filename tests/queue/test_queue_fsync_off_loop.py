"""Issue 10 item 7: the queue's journal never fsyncs on the event loop (the state writer thread does)."""

from __future__ import annotations

import os
import threading

import pytest
from queue_testkit import call, producer

from aegis_kernel import state
from aegis_queue.runtime import QueueRuntime


@pytest.mark.trio
async def test_queue_records_are_fsynced_on_the_writer_thread(qdriver, make_kernel, monkeypatch):
    loop_thread = threading.current_thread()
    fsyncs: list[threading.Thread] = []
    real_fsync = os.fsync

    def fsync(fd):
        fsyncs.append(threading.current_thread())
        return real_fsync(fd)

    monkeypatch.setattr(state, "BATCH_INTERVAL", 0.0)  # every record is due an fsync
    monkeypatch.setattr(os, "fsync", fsync)
    async with make_kernel() as kernel:
        prod = await producer(kernel)
        out = await call(kernel, "aegis_enqueue", prod.handle, queue="solo", payload="hello")
        task = kernel.service(QueueRuntime).tasks[out["task_id"]]
        await task.finished.wait()
        await kernel.state.writer.flush().wait()
        assert task.result == "done: hello"
    assert len(fsyncs) >= 3 and loop_thread not in fsyncs  # enqueued, dispatched, completed at least
