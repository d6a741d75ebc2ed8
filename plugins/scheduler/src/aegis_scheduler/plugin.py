"""aegis-scheduler plugin entry point. Import-light: the runtime (trio) loads when the service starts.

Declares ``aegis_register_triggers`` (:mod:`aegis_scheduler.hookspecs`) and registers the built-in
trigger kinds through it; registers the ``schedules`` config section, the schedule operations (MCP
tools too), the scheduler service (``kernel.service(SchedulerRuntime)``, started after aegis-workflow's),
``aegis schedule …``, the SCHEDULES band of the Ctrl+D dashboard (where aegis-tui is installed) and
the config observer that swaps the schedule table live.
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


class SchedulerService:
    """Runs one :class:`~aegis_scheduler.runtime.SchedulerRuntime` per kernel (in ``aegis serve`` and
    the TUI alike: wherever the project's kernel runs)."""

    provides = "aegis_scheduler.runtime:SchedulerRuntime"
    after = ("aegis_workflow.runtime:WorkflowRuntime",)

    async def run(self, kernel: Any, *, task_status: Any = None) -> None:
        from aegis_kernel import run_service_runtime

        from .runtime import SchedulerRuntime

        await run_service_runtime(kernel, SchedulerRuntime, task_status=task_status, then=SchedulerRuntime.run,
                                  close=SchedulerRuntime.close)


@hookimpl
def aegis_add_hookspecs(pm: Any) -> None:
    from . import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def aegis_register_triggers(register: Any) -> None:
    from .triggers import BUILTIN

    for name, factory in BUILTIN.items():
        register(name, factory)


@hookimpl
def aegis_register_config_sections(register: Any) -> None:
    from .config import ScheduleSpec, check_schedules

    register("schedules", dict[str, ScheduleSpec], check=check_schedules)


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from .operations import OPERATIONS, PREFIX

    for name, handler, description, schema, extra in OPERATIONS:
        register(name, PREFIX + handler, description, schema, **extra)


@hookimpl
def aegis_register_services(register: Any) -> None:
    register("scheduler", SchedulerService())


@hookimpl
def aegis_register_cli(register: Any) -> None:
    from .cli import run, setup

    register("schedule", "schedules: list, show, run, enable, disable, logs, add, remove", setup, run)


@hookimpl(optionalhook=True)  # declared by aegis-tui; without it there are no panels to contribute
def aegis_register_panels(register: Any) -> None:
    from .panels import band, schedules_tab

    register("schedules", schedules_tab, kind="tab", key="f9", title="schedules")
    register("schedules-band", band, kind="band", title="schedules")  # in the TUI's Ctrl+D dashboard


@hookimpl
def aegis_config_changed(config: Any, kernel: Any) -> None:
    from .runtime import SchedulerRuntime

    rt = kernel.find_service(SchedulerRuntime)
    if rt is not None:
        rt.on_config_changed(config)
