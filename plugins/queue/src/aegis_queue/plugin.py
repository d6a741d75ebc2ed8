"""aegis-queue plugin entry point. Import-light: heavy modules are imported inside the hooks.

Registers the ``queues`` config section, the queue operations, the queue service (which publishes
its runtime: ``kernel.service(QueueRuntime)``), ``aegis queue …``, the queue strip and the Ctrl+D
dashboard (where aegis-tui is installed), and the config observer. Workers report back through the
kernel's turn primitive (``aegis_kernel.turns``), not through observer hooks.
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl



class QueueService:
    """Runs one :class:`~aegis_queue.runtime.QueueRuntime` per kernel (stateless itself).

    Starts after the budget service when aegis-budget is installed (finishing tasks records spend
    there, and admission asks it), and works without it (a queue with budgets then refuses work)."""

    provides = "aegis_queue.runtime:QueueRuntime"
    after = ("aegis_budget.runtime:BudgetRuntime",)

    async def run(self, kernel: Any, *, task_status: Any = None) -> None:
        from aegis_kernel import run_service_runtime

        from .runtime import QueueRuntime

        def close_ledgers(rt: QueueRuntime) -> None:
            for qs in rt.queues.values():
                qs.ledger.close()

        # published once its ledgers are replayed (operations find it), then dispatch opens
        await run_service_runtime(kernel, QueueRuntime, task_status=task_status, then=QueueRuntime.open_dispatch,
                                  close=close_ledgers)


@hookimpl
def aegis_register_config_sections(register: Any) -> None:
    from .config import QueueSpec, check_queues

    register("queues", dict[str, QueueSpec], check=check_queues)


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from .operations import OPERATIONS

    for name, handler, description, schema in OPERATIONS:
        register(name, handler, description, schema)


@hookimpl
def aegis_register_services(register: Any) -> None:
    register("queue", QueueService())


@hookimpl
def aegis_register_cli(register: Any) -> None:
    from .cli import run, setup

    register("queue", "queues: list, show, enqueue, cancel, status", setup, run)


@hookimpl(optionalhook=True)  # declared by aegis-tui; without it there are no panels to contribute
def aegis_register_panels(register: Any) -> None:
    from .panels import band, strip

    register("queue-strip", strip, kind="strip", title="queues")
    register("queue-dashboard", band, kind="band", title="queues")  # a band of the TUI's Ctrl+D dashboard


# --- observers: synchronous, never start tasks (workers report through the kernel's turn primitive) --


@hookimpl
def aegis_config_changed(config: Any, kernel: Any) -> None:
    from .runtime import QueueRuntime

    rt = kernel.find_service(QueueRuntime)
    if rt is not None:
        rt.on_config_changed(config)

