"""Budget runtime: spend ledgers per queue, rolling-window checks, the structured rejection.

The queue plugin consults ``kernel.find_service(BudgetRuntime)`` (when installed):

- ``admit(queue, rules, open_tasks)`` at enqueue — raises ``OperationError(code="over_budget")``
  naming every blocking rule (``constraint``, ``limit``, ``spent``, ``in_flight``, ``estimate``,
  ``window``, ``unblock_at``) and the overall ``unblock_at``; returns None when admitted.
- ``record(queue, task_id, usage=…, cost_usd=…, provider=…, model=…)`` when a task finishes —
  persists the spend to ``.aegis/state/budgets/<q>.jsonl`` and returns the cost record.

Rule arithmetic (each rule separately; all must allow):
``spent`` = recorded spend with ``now - window < ts ≤ now``; ``in_flight`` = ``estimate × open tasks``
(admitted, not finished: pending + dispatched); the new task is admitted iff
``spent + in_flight < limit`` and ``spent + in_flight + estimate ≤ limit``. ``estimate`` is the rule's
configured ``estimate``, else the mean of the queue's last 20 recorded tasks, else 0.
``unblock_at`` = the time the oldest in-window records age out far enough to admit (with the same
in-flight count); None when in-flight work alone blocks.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from attrs import define

from aegis_kernel import Ledger, OperationError

from .clock import iso
from .prices import PriceTable, PriceTableError

log = logging.getLogger("aegis.budget")

MEAN_OF = 20


@define
class Spend:
    task_id: str
    ts: float
    usd: Decimal | None
    output_tokens: int

    def amount(self, constraint: str) -> Decimal:
        if constraint == "usd":
            return self.usd if self.usd is not None else Decimal(0)
        return Decimal(self.output_tokens)


def fmt(constraint: str, value: Decimal) -> str:
    """USD with at least 2 and at most 6 decimals; tokens as an integer."""
    if constraint != "usd":
        return str(int(value.to_integral_value(rounding="ROUND_CEILING")))
    text = f"{value.quantize(Decimal('0.000001')):f}".rstrip("0")
    whole, _, frac = text.partition(".")
    return f"{whole}.{frac.ljust(2, '0')}"


class BudgetRuntime:
    def __init__(self, kernel: Any, *, clock: Any = None, prices: PriceTable | None = None) -> None:
        self.kernel = kernel
        self._clock = clock  # None: the kernel's clock, looked up on each use (tests replace kernel.clock)
        self.price_problem: str | None = None
        if prices is None:
            try:
                prices = PriceTable.shipped(kernel.project_dir / ".aegis" / "prices.json")
            except PriceTableError as exc:  # a bad override never stops Aegis: shipped prices, loudly
                self.price_problem = f"{exc}; using the shipped prices"
                log.error("%s", self.price_problem)
                prices = PriceTable.shipped()
        self.prices = prices
        self.spend: dict[str, list[Spend]] = {}
        self.unpriced: dict[str, int] = {}
        self._ledgers: dict[str, Ledger] = {}

    @property
    def clock(self) -> Any:
        """What windows are measured with: ``now()`` in epoch seconds (the kernel clock by default)."""
        return self._clock if self._clock is not None else self.kernel.clock

    # --- persistence ------------------------------------------------------------------------------

    def _path(self, queue: str) -> Path:
        return self.kernel.state.path("budgets", f"{queue}.jsonl")

    def start(self) -> None:
        """Replay every queue's spend ledger."""
        folder = self.kernel.state.root / "budgets"
        names = set(self.rules_by_queue())
        if folder.is_dir():
            names.update(p.stem for p in folder.glob("*.jsonl"))
        for queue in sorted(names):
            self._replay(queue)

    def _replay(self, queue: str) -> None:
        records: list[Spend] = []
        seen: set[str] = set()
        for rec in Ledger.records(self.kernel.state.root / "budgets" / f"{queue}.jsonl"):
            if rec.get("event") != "spend" or rec.get("task_id") in seen:
                continue
            try:
                usd = Decimal(rec["usd"]) if rec.get("usd") is not None else None
                spend = Spend(str(rec["task_id"]), float(rec["ts"]), usd, int(rec.get("output_tokens") or 0))
            except (KeyError, TypeError, ValueError, ArithmeticError):
                log.warning("budget ledger %s: skipped bad record %r", queue, rec)
                continue
            seen.add(spend.task_id)
            records.append(spend)
            if usd is None:
                self.unpriced[queue] = self.unpriced.get(queue, 0) + 1
        records.sort(key=lambda s: s.ts)
        self.spend[queue] = records

    def close(self) -> None:
        for ledger in self._ledgers.values():
            ledger.close()
        self._ledgers.clear()

    # --- the queue's calls --------------------------------------------------------------------------

    def record(self, queue: str, task_id: str, *, usage: dict[str, int] | None, cost_usd: float | None = None,
               provider: str | None = None, model: str | None = None) -> dict[str, Any]:
        """Persist one finished task's spend; returns ``{"usd": str|None, "source": …}``."""
        usage = usage or {}
        if cost_usd is not None:
            usd: Decimal | None = Decimal(str(cost_usd))
            source = "driver"
        else:
            priced = self.prices.cost(provider, model, usage)
            usd, source = (priced[0], f"price table: {priced[1]}") if priced else (None, "unpriced")
        now = self.clock.now()
        out_tokens = int(usage.get("output", 0))
        ledger = self._ledgers.get(queue)
        if ledger is None:
            ledger = self._ledgers[queue] = Ledger(self._path(queue), fsync="batch", writer=self.kernel.state.writer)
        ledger.append({"event": "spend", "task_id": task_id, "queue": queue, "ts": now, "at": iso(now),
                       "usd": None if usd is None else str(usd), "output_tokens": out_tokens,
                       "usage": usage, "provider": provider, "model": model, "source": source})
        records = self.spend.setdefault(queue, [])
        records.append(Spend(task_id, now, usd, out_tokens))
        if len(records) > 1 and records[-2].ts > now:
            records.sort(key=lambda s: s.ts)
        if usd is None:
            self.unpriced[queue] = self.unpriced.get(queue, 0) + 1
            log.warning("queue %s task %s: no price for provider %r model %r; counted as 0 USD",
                        queue, task_id, provider, model)
        return {"usd": None if usd is None else str(usd), "source": source}

    def admit(self, queue: str, rules: Sequence[Any], open_tasks: int = 0) -> None:
        """Raise ``OperationError(code="over_budget")`` unless every rule allows one more task."""
        if not rules:
            return
        checks = self.evaluate(queue, rules, open_tasks)
        blocked = [c for c in checks if c["blocked"]]
        if not blocked:
            return
        times = [c["unblock_at"] for c in blocked]
        unblock_at = None if any(t is None for t in times) else max(times)
        parts = []
        for c in blocked:
            part = f"{c['constraint']} {c['spent']} spent of {c['limit']} per {c['window']}"
            if c["in_flight"] not in ("0", "0.00"):
                part += f" (+{c['in_flight']} reserved for {open_tasks} unfinished task(s))"
            if c["estimate"] not in ("0", "0.00"):
                part += f" (+{c['estimate']} estimated for this task)"
            parts.append(part)
        when = (f"retry after {unblock_at}" if unblock_at else
                "it unblocks only when unfinished tasks complete")
        raise OperationError(
            f"queue '{queue}' is over budget: {'; '.join(parts)}; {when}", code="over_budget", param="queue",
            queue=queue, blocked_by=[{k: c[k] for k in ("constraint", "limit", "spent", "in_flight", "estimate",
                                                          "window", "unblock_at")} for c in blocked],
            unblock_at=unblock_at)

    # --- arithmetic -----------------------------------------------------------------------------------

    def estimate(self, queue: str, rule: Any) -> Decimal:
        if getattr(rule, "estimate", None) is not None:
            return Decimal(str(rule.estimate))
        constraint = _constraint(rule)
        records = [s for s in self.spend.get(queue, ()) if constraint != "usd" or s.usd is not None][-MEAN_OF:]
        if not records:
            return Decimal(0)
        return sum((s.amount(constraint) for s in records), Decimal(0)) / len(records)

    def evaluate(self, queue: str, rules: Sequence[Any], open_tasks: int = 0) -> list[dict[str, Any]]:
        now = self.clock.now()
        out = []
        for rule in rules:
            constraint = _constraint(rule)
            limit = Decimal(str(_limit(rule)))
            window = rule.window_s  # the queue's BudgetRule parses and validates its window
            start = now - window
            in_window = [s for s in self.spend.get(queue, ()) if start < s.ts <= now]
            spent = sum((s.amount(constraint) for s in in_window), Decimal(0))
            est = self.estimate(queue, rule)
            reserved = est * open_tasks
            is_blocked = _blocked(spent, reserved, est, limit)
            unblock: str | None = None
            if is_blocked:
                running = spent
                for s in in_window:
                    running -= s.amount(constraint)
                    if not _blocked(running, reserved, est, limit):
                        unblock = iso(math.ceil(s.ts + window))
                        break
            out.append({
                "constraint": constraint, "limit": fmt(constraint, limit), "window": rule.window,
                "spent": fmt(constraint, spent), "in_flight": fmt(constraint, reserved),
                "estimate": fmt(constraint, est), "remaining": fmt(constraint, max(limit - spent - reserved,
                                                                                   Decimal(0))),
                "blocked": is_blocked, "unblock_at": unblock, "tasks_in_window": len(in_window),
            })
        return out

    # --- status ---------------------------------------------------------------------------------------

    def rules_by_queue(self) -> dict[str, tuple[Any, ...]]:
        specs = self.kernel.config.get("queues") or {}
        return {name: tuple(getattr(spec, "budgets", ()) or ()) for name, spec in specs.items()}

    def status(self, queue: str | None = None) -> list[dict[str, Any]]:
        rules = self.rules_by_queue()
        if queue is not None and queue not in rules:
            known = ", ".join(sorted(rules)) or "none configured"
            raise OperationError(f"unknown queue '{queue}' (queues: {known})", code="unknown_queue", param="queue")
        queue_rt = _queue_runtime(self.kernel)
        out = []
        for name in ([queue] if queue is not None else list(rules)):
            open_tasks = queue_rt.open_count(name) if queue_rt is not None else 0
            records = self.spend.get(name, [])
            total = sum((s.usd for s in records if s.usd is not None), Decimal(0))
            out.append({
                "queue": name, "open_tasks": open_tasks, "rules": self.evaluate(name, rules[name], open_tasks),
                "tasks_recorded": len(records), "unpriced_tasks": self.unpriced.get(name, 0),
                "total_usd": fmt("usd", total), "now": iso(self.clock.now()),
            })
        return out


def _queue_runtime(kernel: Any) -> Any:
    """The running queue runtime (aegis-queue), None when it is not installed or not running."""
    try:
        from aegis_queue.runtime import QueueRuntime
    except ImportError:
        return None
    return kernel.find_service(QueueRuntime)


def _blocked(committed: Decimal, reserved: Decimal, estimate: Decimal, limit: Decimal) -> bool:
    """At or over the limit already, or this task's estimate would pass it."""
    return committed + reserved >= limit or committed + reserved + estimate > limit


def _constraint(rule: Any) -> str:
    constraint = getattr(rule, "constraint", None)
    if constraint:
        return constraint
    return "usd" if getattr(rule, "usd", None) is not None else "output_tokens"


def _limit(rule: Any) -> float | int:
    return rule.usd if _constraint(rule) == "usd" else rule.output_tokens
