"""Budget with real scripted ACP workers reporting known usage, priced by the shipped table, on the kernel clock driven by trio's MockClock."""

from __future__ import annotations

import pytest
import trio

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted) is not installed")

from aegis_kernel.operations import Caller, OperationError  # noqa: E402
from aegis_queue.runtime import QueueRuntime

CONFIG = """\
default_agent: worker
plugins:
  disabled: [mcp]
agents:
  worker:
    provider: scripted
queues:
  paid:
    agent: worker
    max_parallel: 2
    budgets:
      - {usd: 1.00, window: 1h}
"""

USAGE = "@usage in=100000 out=30000 cache_read=200000 cache_write=8000\n@reply done"
# shipped 'scripted' prices per million: input 1, output 10, cache read 0.10, cache write 1.25
# → 0.10 + 0.30 + 0.02 + 0.01 = 0.43 USD per task (cached input billed once, at the cache rate)


@pytest.mark.trio
async def test_scripted_usage_is_priced_and_the_ceiling_refuses_then_admits_after_the_window(
        write_config, make_kernel, wall, mock_clock):
    write_config(CONFIG)
    clock = wall("2026-03-01T12:00:00Z")
    async with make_kernel() as kernel:
        clock.attach(kernel)
        rt = kernel.service(QueueRuntime)

        async def run_one() -> object:
            out = await kernel.operations.call(kernel, "aegis_enqueue", {"queue": "paid", "payload": USAGE}, Caller())
            task = rt.tasks[out["task_id"]]
            with trio.fail_after(30):
                await task.finished.wait()
            return task

        first = await run_one()
        assert first.status == "completed" and first.result == "done"
        assert first.usage == {"input": 100000, "output": 30000, "cache_read": 200000, "cache_creation": 8000}
        assert first.cost == {"usd": "0.43", "source": "price table: scripted"}
        clock.advance(15 * 60)
        await run_one()  # 12:15, 0.86 spent
        clock.advance(15 * 60)
        with pytest.raises(OperationError) as err:
            await kernel.operations.call(kernel, "aegis_enqueue", {"queue": "paid", "payload": USAGE}, Caller())
        assert err.value.data["blocked_by"] == [{
            "constraint": "usd", "limit": "1.00", "spent": "0.86", "in_flight": "0.00", "estimate": "0.43",
            "window": "1h", "unblock_at": "2026-03-01T13:00:00Z"}]
        clock.set("2026-03-01T13:00:00Z")
        third = await run_one()
        assert third.status == "completed"
