"""The workflow operations (every one an MCP tool for agents, ``aegis call`` and the CLI's verbs)."""

from __future__ import annotations

from typing import Any

from aegis_kernel import CallContext, OperationError, params

from .errors import WorkflowError

_STR = {"type": "string", "minLength": 1}
_RUN = {"type": "string", "minLength": 1, "description": "the run's id (run#<id>)"}
_OPS = "aegis_workflow.operations:"


def runtime(ctx: CallContext) -> Any:
    from .runtime import WorkflowRuntime

    return ctx.kernel.service(WorkflowRuntime)


def _run(ctx: CallContext, run_id: str) -> Any:
    try:
        return runtime(ctx).get(run_id)
    except WorkflowError as exc:
        raise OperationError(str(exc), code="not_found", param="run_id") from None


async def run_workflow(ctx: CallContext, name: str, kwargs: dict[str, Any] | None = None,
                       callback: bool = True) -> dict[str, Any]:
    try:
        run = runtime(ctx).start_run(name, kwargs or {}, caller=ctx.caller.handle, callback=callback,
                                     by=ctx.caller.tag)
    except WorkflowError as exc:
        raise OperationError(str(exc), code="invalid", param="name") from None
    return {"run_id": run.id, "name": run.name, "callback": run.callback}


async def status(ctx: CallContext, run_id: str) -> dict[str, Any]:
    return runtime(ctx).info(_run(ctx, run_id))


async def cancel(ctx: CallContext, run_id: str) -> dict[str, Any]:
    run = _run(ctx, run_id)
    was = run.status
    cancelled = runtime(ctx).cancel(run, by=ctx.caller.tag)
    if cancelled:
        from .runtime import wait

        await wait(run, 30)
    return {"run_id": run.id, "cancelled": cancelled, "was": was, "status": run.status}


async def workflow_list(ctx: CallContext) -> dict[str, Any]:
    rt = runtime(ctx)
    workflows = [wf.info() for _, wf in sorted(rt.catalog.all().items())]
    runs = [rt.info(r) for r in rt.runs.values()]
    return {"workflows": workflows, "runs": runs, "problems": [*rt.catalog.problems, *rt.problems]}


async def answer(ctx: CallContext, run_id: str, text: str) -> dict[str, Any]:
    run = _run(ctx, run_id)
    try:
        given = runtime(ctx).answer(run, text)
    except WorkflowError as exc:
        raise OperationError(str(exc), code="invalid", param="text") from None
    return {"run_id": run.id, "answer": given}


async def logs(ctx: CallContext, run_id: str) -> dict[str, Any]:
    run = _run(ctx, run_id)
    return {"run_id": run.id, "records": list(run.log.records)}


async def wait_run(ctx: CallContext, run_id: str, timeout_s: float = 600) -> dict[str, Any]:
    from .runtime import wait

    run = _run(ctx, run_id)
    await wait(run, timeout_s)
    return runtime(ctx).info(run)


OPERATIONS: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    ("aegis_run_workflow", "run_workflow",
     "Start a workflow (see aegis_workflow_list) with kwargs; returns {run_id} at once. With callback=true "
     "(default) its return value or error reaches you as '✉ from workflow:<name> · run#<id> · ok|error'.",
     params(("name",), name=_STR, kwargs={"type": ["object", "null"], "default": None},
            callback={"type": "boolean", "default": True}), {}),
    ("aegis_workflow_status", "status",
     "One workflow run: status, current step, elapsed, the question it awaits from a person (if any), result.",
     params(("run_id",), run_id=_RUN), {}),
    ("aegis_workflow_cancel", "cancel", "Cancel a running workflow run (the agents it spawned are closed).",
     params(("run_id",), run_id=_RUN), {}),
    ("aegis_workflow_list", "workflow_list",
     "The workflows registered (name, parameters, where from), recent runs, and workflow files that failed to load.",
     params(), {}),
    ("aegis_workflow_answer", "answer", "Answer the question a workflow run asked a person (ask_human).",
     params(("run_id", "text"), run_id=_RUN, text=_STR), {"callers": ("user", "telegram")}),
    ("aegis_workflow_logs", "logs", "A workflow run's journal: its steps with their results, in order.",
     params(("run_id",), run_id=_RUN), {"callers": ("user", "telegram", "agent")}),
    ("aegis_workflow_wait", "wait_run", "Wait (up to timeout_s) for a workflow run to end; returns its status.",
     params(("run_id",), run_id=_RUN, timeout_s={"type": "number", "minimum": 0, "default": 600}), {}),
]
