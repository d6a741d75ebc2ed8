"""aegis-budget plugin entry point (import-light).

Ceilings are declared on queues (``queues.<q>.budgets`` — the ``queues`` section belongs to
aegis-queue); this plugin keeps the spend ledgers, checks them when the queue asks
(``kernel.service(BudgetRuntime)``) and reports them (``aegis_budget_status``, ``aegis budget``).
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


class BudgetService:
    """Runs one :class:`~aegis_budget.runtime.BudgetRuntime` per kernel; the queue starts after it."""

    provides = "aegis_budget.runtime:BudgetRuntime"

    async def run(self, kernel: Any, *, task_status: Any = None) -> None:
        import trio

        from .runtime import BudgetRuntime

        task_status = task_status or trio.TASK_STATUS_IGNORED
        rt = BudgetRuntime(kernel)
        rt.start()
        try:
            task_status.started(rt)
            await trio.sleep_forever()
        finally:
            rt.close()


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from .operations import OPERATIONS

    for name, handler, description, schema in OPERATIONS:
        register(name, handler, description, schema)


@hookimpl
def aegis_register_services(register: Any) -> None:
    register("budget", BudgetService())


@hookimpl
def aegis_register_cli(register: Any) -> None:
    from .cli import run, setup

    register("budget", "queue budgets: list, show", setup, run)
