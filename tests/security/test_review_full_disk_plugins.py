"""Review of issue 12 finding 5 against plugins added since: a full disk must cost a write, never the
serve. The scheduler's snapshot rewrite raised ``OSError: No space left on device`` out of its task and
took the whole kernel down (seen as an intermittent failure of ``test_durability_disk``)."""

from __future__ import annotations

import errno
import logging

import pytest
import trio
import trio.testing

pytest.importorskip("aegis_scheduler", reason="the scheduler plugin is not installed")

CONFIG = "default_agent: fake\nagents:\n  fake:\n    provider: fake\n"


@pytest.mark.trio
async def test_a_scheduler_snapshot_that_cannot_be_written_costs_the_snapshot_not_the_kernel(
        write_config, register_plugin, make_kernel, monkeypatch, caplog):
    import aegis_scheduler.runtime as runtime
    from aegis_kernel.testing import DriverPlugin, FakeDriver

    write_config(CONFIG)
    register_plugin(DriverPlugin(FakeDriver()))
    tried = trio.Event()

    def disk_full(path, data):
        trio.from_thread.run_sync(tried.set)  # called on a worker thread
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(runtime, "write_json_atomic", disk_full)
    caplog.set_level(logging.WARNING)
    async with make_kernel() as kernel:  # the scheduler writes its snapshot as it starts
        with trio.fail_after(30):
            await tried.wait()
        await trio.testing.wait_all_tasks_blocked()
        session = await kernel.sessions.spawn(prompt="still here")  # the kernel lives on
        await session.wait_for(lambda s: s.metrics.turns == 1, timeout=30)
    assert any("No space left" in r.getMessage() or "schedules" in r.getMessage() for r in caplog.records
               if r.levelno >= logging.WARNING)
