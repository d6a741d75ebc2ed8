"""Canvas operations: MCP tools for agents, and what ``aegis canvas …`` and the TUI call.

Identity: an agent acts as itself (``from_handle``, where given, must be the caller: the registry
checks it). The user writes as ``user``; subscribing needs a session to wake, so the user subscribes
an agent by naming it in ``from_handle``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aegis_kernel import CallContext, OperationError

if TYPE_CHECKING:
    from .runtime import CanvasRuntime


def runtime(ctx: CallContext) -> CanvasRuntime:
    from .runtime import CanvasRuntime

    rt = ctx.kernel.find_service(CanvasRuntime)
    if rt is None:
        raise OperationError("the canvas service is not running in this Aegis", code="unavailable")
    return rt


def _writer(ctx: CallContext) -> str:
    return ctx.caller.tag


def _subscriber(ctx: CallContext, from_handle: str | None) -> str:
    handle = ctx.caller.handle or from_handle
    if not handle:
        raise OperationError("only an agent session can be woken by a canvas: name it in from_handle",
                             code="bad_argument", param="from_handle")
    if ctx.caller.handle is None and ctx.kernel.sessions.get(handle) is None:
        raise OperationError(f"no session '{handle}' (use aegis_list_sessions)", code="unknown_handle",
                             param="from_handle")
    return handle


async def canvas_open(ctx: CallContext, name: str, file: str, from_handle: str | None = None) -> dict[str, Any]:
    return await runtime(ctx).open(name, file, by=_writer(ctx))


async def canvas_read(ctx: CallContext, name: str, section: str | None = None,
                      from_handle: str | None = None) -> dict[str, Any]:
    return runtime(ctx).read(name, section)


async def canvas_write_section(ctx: CallContext, name: str, section: str, content: str,
                               if_version: int | None = None, from_handle: str | None = None) -> dict[str, Any]:
    return await runtime(ctx).write(name, section, content, writer=_writer(ctx), handle=ctx.caller.handle,
                                    op="write", if_version=if_version)


async def canvas_append_to_section(ctx: CallContext, name: str, section: str, content: str,
                                   from_handle: str | None = None) -> dict[str, Any]:
    return await runtime(ctx).write(name, section, content, writer=_writer(ctx), handle=ctx.caller.handle,
                                    op="append")


async def canvas_subscribe(ctx: CallContext, name: str, sections: list[str] | None = None,
                           from_handle: str | None = None) -> dict[str, Any]:
    return runtime(ctx).subscribe(name, _subscriber(ctx, from_handle), sections)


async def canvas_unsubscribe(ctx: CallContext, name: str, from_handle: str | None = None) -> dict[str, Any]:
    handle = ctx.caller.handle or from_handle  # the user may end the subscription of a session that is gone
    if not handle:
        raise OperationError("name the subscriber in from_handle", code="bad_argument", param="from_handle")
    return {"canvas": name, "unsubscribed": runtime(ctx).unsubscribe(name, handle), "handle": handle}


async def canvas_list(ctx: CallContext) -> dict[str, Any]:
    return {"canvases": runtime(ctx).list()}


async def canvas_log(ctx: CallContext, name: str, n: int = 20) -> dict[str, Any]:
    return await runtime(ctx).log(name, n)


async def canvas_diff(ctx: CallContext, name: str, since: int) -> dict[str, Any]:
    return runtime(ctx).diff(name, since)
