"""aegis-budget plugin entry point (import-light).

Ceilings are declared on queues (``queues.<q>.budgets`` — the ``queues`` section belongs to
aegis-queue); this plugin keeps the spend ledgers, checks them when the queue asks
(``kernel.extensions["budget"]``) and reports them (``aegis_budget_status``, ``aegis budget``).
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


class BudgetService:
    async def run(self, kernel: Any, *, task_status: Any = None) -> None:
        import trio

        from .runtime import BudgetRuntime

        task_status = task_status or trio.TASK_STATUS_IGNORED
        rt = BudgetRuntime(kernel)
        rt.start()
        kernel.extensions["budget"] = rt
        try:
            task_status.started(rt)
            await trio.sleep_forever()
        finally:
            if kernel.extensions.get("budget") is rt:
                del kernel.extensions["budget"]
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
