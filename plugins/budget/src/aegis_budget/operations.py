"""``aegis_budget_status``: every queue's ceilings with spent, reserved, remaining and unblock_at."""

from __future__ import annotations

from typing import Any

from aegis_kernel import CallContext, OperationError, params


async def budget_status(ctx: CallContext, queue: str | None = None) -> dict[str, Any]:
    from .runtime import BudgetRuntime

    rt = ctx.kernel.find_service(BudgetRuntime)
    if rt is None:
        raise OperationError("the budget service is not running in this Aegis", code="unavailable")
    out: dict[str, Any] = {"queues": rt.status(queue)}
    if rt.price_problem:
        out["price_problem"] = rt.price_problem
    return out


OPERATIONS = [
    ("aegis_budget_status", budget_status,
     "Queue budgets: per rule the limit, spend in the rolling window, in-flight reservation, remaining and "
     "when a blocked queue unblocks. With `queue`, just that one.",
     params(queue={"type": ["string", "null"], "default": None})),
]
