"""Budgets on the kernel clock driven by trio's MockClock: exact figures, unblock_at, admission after the window, in-flight reservations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import trio

from aegis_budget.clock import iso
from aegis_budget.prices import PriceTable
from aegis_kernel.events import AssistantText, SystemInit, TokenUsage, TurnResult
from aegis_kernel.operations import Caller, OperationError
from aegis_kernel.testing import DriverPlugin, FakeDriver, FakeProcess
from aegis_budget.runtime import BudgetRuntime
from aegis_queue.runtime import QueueRuntime

T0 = 1_767_225_600.0  # 2026-01-01T00:00:00Z

CONFIG = """\
default_agent: worker
plugins:
  disabled: [mcp]
agents:
  worker:
    provider: ufake
queues:
  paid:
    agent: worker
    max_parallel: 4
    budgets:
      - {usd: 1.00, window: 1h}
      - {output_tokens: 100000, window: 24h}
  burst:
    agent: worker
    max_parallel: 1
    budgets:
      - {usd: 1, window: 30m, estimate: 0.30}
  free:
    agent: worker
"""


class UsageProcess(FakeProcess):
    """Answers ``usage in=N out=N [cr=N cw=N] [cost=X]`` with that usage; ``hang`` never answers."""

    async def _run_turn(self, text: str) -> None:
        payload = text.strip().splitlines()[-1]
        with trio.CancelScope() as scope:
            self._turn = scope
            if payload == "hang":
                await trio.sleep_forever()
            values = dict(item.split("=") for item in payload.split()[1:])
            usage = TokenUsage(input=int(values.get("in", 0)), output=int(values.get("out", 0)),
                               cache_read=int(values.get("cr", 0)), cache_creation=int(values.get("cw", 0)))
            cost = float(values["cost"]) if "cost" in values else None
            await self._send.send(AssistantText(text=f"spent {payload}"))
            await self._send.send(TurnResult(usage=usage, cost_usd=cost))
            return
        await self._send.send(TurnResult(stop_reason="cancelled"))


class UsageDriver(FakeDriver):
    async def start(self, spec: Any, launch: Any, nursery: trio.Nursery) -> Any:
        proc = UsageProcess(self.reply, f"u-{spec.handle}")
        proc._nursery = nursery
        await proc._send.send(SystemInit(session_id=proc.session_id))
        return proc


@pytest.fixture
def setup(write_config, register_plugin):
    write_config(CONFIG)
    register_plugin(DriverPlugin(UsageDriver(name="ufake")))


def prepare(kernel: Any, clock: Any) -> Any:
    clock.attach(kernel)
    budget = kernel.service(BudgetRuntime)
    budget.prices.add("ufake", "u1", input="1", output="10", cache_read="0.10", cache_write="1.25", default=True)
    return budget


async def run_task(kernel: Any, queue: str, payload: str) -> Any:
    out = await kernel.operations.call(kernel, "aegis_enqueue", {"queue": queue, "payload": payload}, Caller())
    task = kernel.service(QueueRuntime).tasks[out["task_id"]]
    with trio.fail_after(5):
        await task.finished.wait()
    return task


async def enqueue(kernel: Any, queue: str, payload: str) -> dict[str, Any]:
    return await kernel.operations.call(kernel, "aegis_enqueue", {"queue": queue, "payload": payload}, Caller())


def test_price_table_bills_cached_input_once_at_the_cache_rate():
    table = PriceTable.shipped()
    usd, model = table.cost("claude-code", "claude-sonnet-4-5-20250929",
                            {"input": 1000, "cache_read": 9000, "cache_creation": 500, "output": 2000})
    assert model == "sonnet"
    assert usd == Decimal("0.037575")  # 1000×3 + 9000×0.30 + 500×3.75 + 2000×15, per million
    assert table.cost("claude-code", None, {"output": 1_000_000})[0] == Decimal(15)  # the provider default
    assert table.cost("gemini", "gemini-2.5-flash", {"input": 1_000_000})[0] == Decimal("0.30")
    assert table.cost("nobody", "mystery-model", {"output": 5}) is None


@pytest.mark.trio
async def test_the_enqueue_that_would_pass_the_ceiling_is_refused_with_exact_figures(setup, kernel, wall, mock_clock):
    clock = wall(T0)
    budget = prepare(kernel, clock)
    first = await run_task(kernel, "paid", "usage in=100000 out=30000")  # $0.10 + $0.30
    assert Decimal(first.cost["usd"]) == Decimal("0.4") and first.cost["source"] == "price table: u1"
    clock.advance(600)
    await run_task(kernel, "paid", "usage in=100000 out=30000 cr=0 cw=0")
    clock.advance(600)  # T0+20m: $0.80 spent in the hour, estimate $0.40 → $1.20 > $1.00
    with pytest.raises(OperationError) as err:
        await enqueue(kernel, "paid", "usage in=1 out=1")
    e = err.value.to_dict()
    assert e["code"] == "over_budget" and e["queue"] == "paid"
    assert e["blocked_by"] == [{"constraint": "usd", "limit": "1.00", "spent": "0.80", "in_flight": "0.00",
                                "estimate": "0.40", "window": "1h", "unblock_at": "2026-01-01T01:00:00Z"}]
    assert e["unblock_at"] == "2026-01-01T01:00:00Z"
    assert "usd 0.80 spent of 1.00 per 1h" in e["error"] and "retry after 2026-01-01T01:00:00Z" in e["error"]
    clock.set("2026-01-01T00:59:59Z")
    with pytest.raises(OperationError):
        await enqueue(kernel, "paid", "usage in=1 out=1")
    clock.set("2026-01-01T01:00:00Z")  # the first task left the window: $0.40 + $0.40 ≤ $1.00
    task = await run_task(kernel, "paid", "usage in=0 out=1000")
    assert task.status == "completed"
    status = budget.status("paid")[0]
    usd, tokens = status["rules"]
    assert (usd["spent"], usd["remaining"], usd["blocked"]) == ("0.41", "0.59", False)
    assert (tokens["spent"], tokens["limit"], tokens["window"]) == ("61000", "100000", "24h")
    assert status["tasks_recorded"] == 3 and status["total_usd"] == "0.81"


@pytest.mark.trio
async def test_every_blocking_constraint_is_named_and_unblock_at_is_the_latest(setup, kernel, wall, mock_clock):
    clock = wall(T0)
    prepare(kernel, clock)
    await run_task(kernel, "paid", "usage in=0 out=60000 cost=0.70")  # driver cost wins over the table
    clock.advance(1800)
    with pytest.raises(OperationError) as err:
        await enqueue(kernel, "paid", "x")
    blocked = err.value.data["blocked_by"]
    assert [(b["constraint"], b["spent"], b["estimate"], b["unblock_at"]) for b in blocked] == [
        ("usd", "0.70", "0.70", "2026-01-01T01:00:00Z"),
        ("output_tokens", "60000", "60000", "2026-01-02T00:00:00Z"),
    ]
    assert err.value.data["unblock_at"] == "2026-01-02T00:00:00Z"
    clock.set("2026-01-02T00:00:00Z")
    assert (await enqueue(kernel, "paid", "usage in=0 out=1"))["task_id"]


@pytest.mark.trio
async def test_unfinished_tasks_are_reserved_so_a_burst_cannot_overshoot(setup, kernel, wall, mock_clock):
    prepare(kernel, wall(T0))
    for _ in range(3):  # $0.30 estimated each: 0.30, 0.60, 0.90 ≤ 1.00
        await enqueue(kernel, "burst", "hang")
    with pytest.raises(OperationError) as err:
        await enqueue(kernel, "burst", "hang")
    [b] = err.value.data["blocked_by"]
    assert (b["spent"], b["in_flight"], b["estimate"], b["unblock_at"]) == ("0.00", "0.90", "0.30", None)
    assert err.value.data["unblock_at"] is None and "unfinished tasks complete" in err.value.message
    rt = kernel.service(QueueRuntime)
    pending = rt.queues["burst"].pending[0]
    await kernel.operations.call(kernel, "aegis_cancel", {"task_id": pending.id}, Caller())
    assert (await enqueue(kernel, "burst", "hang"))["queued_position"] == 2


@pytest.mark.trio
async def test_spend_ledger_is_replayed_after_a_restart(setup, make_kernel, aegis_project, wall, mock_clock):
    clock = wall(T0)
    async with make_kernel() as kernel:
        prepare(kernel, clock)
        await run_task(kernel, "paid", "usage in=0 out=90000")  # $0.90
    ledger = aegis_project / ".aegis" / "state" / "budgets" / "paid.jsonl"
    assert '"output_tokens":90000' in ledger.read_text()
    async with make_kernel() as kernel:
        prepare(kernel, clock)
        [status] = (await kernel.operations.call(kernel, "aegis_budget_status", {"queue": "paid"},
                                                 Caller()))["queues"]
        assert status["rules"][0]["spent"] == "0.90" and status["rules"][0]["blocked"] is True
        assert status["rules"][0]["unblock_at"] == iso(T0 + 3600)
        with pytest.raises(OperationError):
            await enqueue(kernel, "paid", "x")


@pytest.mark.trio
async def test_a_queue_with_budgets_refuses_work_without_the_budget_plugin(write_config, register_plugin,
                                                                          make_kernel):
    write_config(CONFIG.replace("disabled: [mcp]", "disabled: [mcp, budget]"))
    register_plugin(DriverPlugin(UsageDriver(name="ufake")))
    async with make_kernel() as kernel:
        assert kernel.find_service(BudgetRuntime) is None
        with pytest.raises(OperationError) as err:
            await enqueue(kernel, "paid", "x")
        assert err.value.code == "budget_unavailable"
        assert (await run_task(kernel, "free", "usage in=1 out=1")).status == "completed"


@pytest.mark.trio
async def test_budget_status_without_a_queue_lists_every_queue(setup, kernel, wall, mock_clock):
    prepare(kernel, wall(T0))
    out = await kernel.operations.call(kernel, "aegis_budget_status", {}, Caller())
    assert [q["queue"] for q in out["queues"]] == ["paid", "burst", "free"]
    assert out["queues"][2]["rules"] == []
    with pytest.raises(OperationError) as err:
        await kernel.operations.call(kernel, "aegis_budget_status", {"queue": "zzz"}, Caller())
    assert err.value.code == "unknown_queue"


@pytest.mark.trio
async def test_a_malformed_price_override_falls_back_loudly(setup, aegis_project, make_kernel):
    (aegis_project / ".aegis").mkdir(exist_ok=True)
    (aegis_project / ".aegis" / "prices.json").write_text("{not json")
    async with make_kernel() as kernel:
        budget = kernel.service(BudgetRuntime)
        assert "prices.json: not a valid price table" in budget.price_problem
        assert budget.prices.providers  # the shipped table is in force
