"""aegis-workflow plugin entry point. Import-light: the engine and runtime (trio) load when the service starts.

Declares ``aegis_register_workflows`` (:mod:`aegis_workflow.hookspecs`) and registers the seed
workflows through it, the workflow operations, the workflow service (publishing
``kernel.service(WorkflowRuntime)``), ``aegis workflow …`` and a workflows panel (where aegis-tui is
installed).
"""

from __future__ import annotations

from typing import Any

from aegis_kernel import hookimpl


class WorkflowService:
    """Runs one :class:`~aegis_workflow.runtime.WorkflowRuntime` per kernel; resumes in-flight runs."""

    provides = "aegis_workflow.runtime:WorkflowRuntime"
    after = ("aegis_queue.runtime:QueueRuntime", "aegis_groups.runtime:GroupRuntime")

    async def run(self, kernel: Any, *, task_status: Any = None) -> None:
        from aegis_kernel import run_service_runtime

        from .runtime import WorkflowRuntime

        await run_service_runtime(kernel, WorkflowRuntime, task_status=task_status,
                                  then=WorkflowRuntime.resume_inflight)


@hookimpl
def aegis_add_hookspecs(pm: Any) -> None:
    from . import hookspecs

    pm.add_hookspecs(hookspecs)


@hookimpl
def aegis_register_workflows(register: Any) -> None:
    from .seeds import SEEDS

    for fn in SEEDS:
        register(fn)


@hookimpl
def aegis_register_operations(register: Any) -> None:
    from .operations import _OPS, OPERATIONS

    for name, handler, description, schema, extra in OPERATIONS:
        register(name, _OPS + handler, description, schema, **extra)


@hookimpl
def aegis_register_services(register: Any) -> None:
    register("workflow", WorkflowService())


@hookimpl
def aegis_register_cli(register: Any) -> None:
    from .cli import run, setup

    register("workflow", "workflows: list, run, status, cancel, logs, answer", setup, run)


@hookimpl(optionalhook=True)  # declared by aegis-tui; without it there are no panels to contribute
def aegis_register_panels(register: Any) -> None:
    from .panels import answer_panel, ask_strip, band, workflows_tab

    register("workflows", workflows_tab, kind="tab", key="f7", title="workflows")
    register("workflows-band", band, kind="band", title="workflows")  # in the TUI's Ctrl+D dashboard
    register("workflow-ask", ask_strip, kind="strip", title="workflow questions")
    register("workflow-answer", answer_panel, kind="modal", key="f8", title="answer a workflow")
