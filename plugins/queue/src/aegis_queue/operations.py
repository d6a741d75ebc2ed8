"""Queue operations (MCP tools for agents; the CLI and TUI call the same ones)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aegis_kernel import CallContext, OperationError, params

if TYPE_CHECKING:  # the runtime (trio) is imported only when the service starts
    from .runtime import QueueRuntime

_STR = {"type": "string", "minLength": 1}


def runtime(ctx: CallContext) -> QueueRuntime:
    from .runtime import QueueRuntime

    rt = ctx.kernel.find_service(QueueRuntime)
    if rt is None:
        raise OperationError("the queue service is not running in this Aegis", code="unavailable")
    return rt


async def enqueue(ctx: CallContext, queue: str, payload: str, callback: bool = True,
                  resume: bool = False) -> dict[str, Any]:
    rt = runtime(ctx)
    task = await rt.enqueue(queue, payload, producer=ctx.caller.handle, enqueued_by=ctx.caller.tag,
                            callback=callback, resume=resume)
    out: dict[str, Any] = {"task_id": task.id, "queued_position": rt.queues[queue].position(task),
                           "queue": queue, "status": task.status, "callback": task.callback}
    if task.worker:
        out["worker"] = task.worker
    return out


async def task_status(ctx: CallContext, task_id: str) -> dict[str, Any]:
    rt = runtime(ctx)
    return rt.task_info(rt.task(task_id))


def _may_touch(ctx: CallContext, task: Any) -> None:
    if ctx.caller.handle is not None and task.enqueued_by != ctx.caller.tag:
        raise OperationError(f"task '{task.id}' was enqueued by {task.enqueued_by}; only it or the user may "
                             "cancel it", code="forbidden", param="task_id")


async def cancel(ctx: CallContext, task_id: str) -> dict[str, Any]:
    rt = runtime(ctx)
    task = rt.task(task_id)
    _may_touch(ctx, task)
    return await rt.cancel(task, by=ctx.caller.tag)


async def delegate(ctx: CallContext, queue: str, payload: str, timeout_s: float = 600,
                   resume: bool = False) -> dict[str, Any]:
    rt = runtime(ctx)
    task = await rt.enqueue(queue, payload, producer=ctx.caller.handle, enqueued_by=ctx.caller.tag, callback=False,
                            resume=resume)
    try:
        finished = await rt.wait(task, timeout_s)
    finally:
        if not task.finished.is_set():
            rt.want_callback(task, ctx.caller.handle)
    if finished:
        out = {"task_id": task.id, "status": task.status, "result": task.result or "", "worker": task.worker}
        if task.error:
            out["error"] = task.error
        if task.worktree and task.worktree.get("state") == "kept":
            out["worktree"] = task.worktree
        return out
    later = (f"its result will reach you as a callback (✉ from queue:{queue} · task#{task.id})"
             if ctx.caller.handle else f"check it with: aegis queue status {task.id}")
    return {"task_id": task.id, "status": "timeout", "task_status": task.status,
            "message": f"task {task.id} did not finish within {timeout_s:g}s and keeps running; {later}"}


async def queue_status(ctx: CallContext, queue: str | None = None) -> Any:
    rt = runtime(ctx)
    if queue is not None:
        return rt.queue_info(queue, detail=True)
    return {"queues": [rt.queue_info(name) for name in rt.queues],
            **({"misconfigured": rt.invalid} if rt.invalid else {})}


OPERATIONS = [
    ("aegis_enqueue", enqueue,
     "Put a task on a named queue: a fresh worker of the queue's agent runs `payload` as its opening turn. "
     "Returns {task_id, queued_position}. With callback=true (default) the worker's whole final message "
     "reaches you as '✉ from queue:<q> · task#<id> · ok|error'. With resume=true, a task that Aegis's "
     "restart interrupts is resumed in its worker's agent session (when that agent can resume) instead of "
     "failing as interrupted.",
     params(("queue", "payload"), queue=_STR, payload=_STR, callback={"type": "boolean", "default": True},
            resume={"type": "boolean", "default": False})),
    ("aegis_task_status", task_status, "A queue task's state (pending, dispatched, completed, failed, cancelled) "
     "and its result.", params(("task_id",), task_id=_STR)),
    ("aegis_cancel", cancel, "Cancel a queue task you enqueued: pending ones are dropped, in-flight ones have "
     "their worker closed.", params(("task_id",), task_id=_STR)),
    ("aegis_delegate", delegate,
     "Enqueue and wait for the result (up to timeout_s). On timeout returns status 'timeout'; the task keeps "
     "running and its result arrives later as a callback.",
     params(("queue", "payload"), queue=_STR, payload=_STR,
            timeout_s={"type": "number", "minimum": 0, "default": 600}, resume={"type": "boolean", "default": False})),
    ("aegis_queue_status", queue_status, "The queues: depth, in flight (worker, elapsed), recent results. "
     "With `queue`, the detail of one.", params(queue={"type": ["string", "null"], "default": None})),
]
