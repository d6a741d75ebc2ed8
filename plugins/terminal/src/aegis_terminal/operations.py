"""Terminal operations: MCP tools for agents, and what ``aegis term …`` and the TUI call.

Identity: the runner of a command is the caller's tag (``agent:<handle>``, ``user``…). Subscribing
needs a session to wake, so the user subscribes an agent by naming it in ``from_handle``. Only the
user may start a shell outside the project (``cwd``); agents' shells stay inside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aegis_kernel import CallContext, OperationError

if TYPE_CHECKING:
    from .runtime import TerminalRuntime


def runtime(ctx: CallContext) -> TerminalRuntime:
    from .runtime import TerminalRuntime

    rt = ctx.kernel.find_service(TerminalRuntime)
    if rt is None:
        raise OperationError("the terminal service is not running in this Aegis", code="unavailable")
    return rt


def _subscriber(ctx: CallContext, from_handle: str | None) -> str:
    handle = ctx.caller.handle or from_handle
    if not handle:
        raise OperationError("only an agent session can be woken by a terminal: name it in from_handle",
                             code="bad_argument", param="from_handle")
    if ctx.caller.handle is None and ctx.kernel.sessions.get(handle) is None:
        raise OperationError(f"no session '{handle}' (use aegis_list_sessions)", code="unknown_handle",
                             param="from_handle")
    return handle


async def term_spawn(ctx: CallContext, name: str, shell: str | None = None, cwd: str | None = None,
                     from_handle: str | None = None) -> dict[str, Any]:
    return await runtime(ctx).spawn(name, shell=shell, cwd=cwd, by=ctx.caller.tag, confine=not ctx.caller.is_user)


async def term_run(ctx: CallContext, name: str, cmd: str, timeout_s: float = 120,
                   from_handle: str | None = None) -> dict[str, Any]:
    if not cmd.strip():
        raise OperationError("cmd is empty", code="bad_argument", param="cmd")
    return await runtime(ctx).require(name).run(cmd, ctx.caller.tag, timeout_s)


async def term_keys(ctx: CallContext, name: str, keys: str, from_handle: str | None = None) -> dict[str, Any]:
    return await runtime(ctx).require(name).keys(keys, ctx.caller.tag)


async def term_read(ctx: CallContext, name: str, last_n: int = 5, since_seq: int | None = None,
                    from_handle: str | None = None) -> dict[str, Any]:
    return runtime(ctx).require(name).read(last_n, since_seq)


async def term_screen(ctx: CallContext, name: str, from_handle: str | None = None) -> dict[str, Any]:
    term = runtime(ctx).require(name)
    return term.screen()


async def term_resize(ctx: CallContext, name: str, rows: int, cols: int) -> dict[str, Any]:
    return runtime(ctx).require(name).resize(rows, cols)


async def term_subscribe(ctx: CallContext, name: str, from_handle: str | None = None) -> dict[str, Any]:
    return runtime(ctx).subscribe(name, _subscriber(ctx, from_handle))


async def term_unsubscribe(ctx: CallContext, name: str, from_handle: str | None = None) -> dict[str, Any]:
    handle = _subscriber(ctx, from_handle)
    return {"terminal": name, "unsubscribed": runtime(ctx).unsubscribe(name, handle), "handle": handle}


async def term_close(ctx: CallContext, name: str, from_handle: str | None = None) -> dict[str, Any]:
    term = runtime(ctx).require(name)
    was_open = term.open
    code = await term.close(ctx.caller.tag)
    return {"terminal": name, "closed": was_open, "exit": code}


async def term_list(ctx: CallContext) -> dict[str, Any]:
    return {"terminals": runtime(ctx).list()}


# --- who may execute ------------------------------------------------------------------------------------


def may_execute(ctx: CallContext, args: dict[str, Any]) -> str | None:
    """The approval rule of the verbs that run something (spawn, run, keys): a shared terminal executes
    commands as the user, so an agent does it only as its profile allows — through the kernel's approval
    broker as a tool ``Terminal`` of kind ``execute`` with the command as summary. ``permission: full``
    or ``auto`` (or an ``allow`` pattern such as ``Terminal:pytest *``) runs at once; a ``deny`` pattern
    refuses; anything else (``read``, ``write``) asks a person each time. People never need approval."""
    from aegis_kernel import PermissionRequest

    if ctx.caller.kind != "agent":
        return None
    session = ctx.kernel.sessions.get(ctx.caller.handle)
    what = args.get("cmd") or args.get("keys") or f"spawn shell {args.get('shell') or '(default)'}"
    summary = " ".join(str(what).split())[:200]
    if session is not None:
        request = PermissionRequest(request_id="terminal", tool_name="Terminal", kind="execute", summary=summary)
        decision = ctx.kernel.approvals.decide(session, request)
        if decision is True:
            return None
        if decision is False:
            raise OperationError(f"the profile of {ctx.caller.tag} denies running {summary!r} in a terminal",
                                 code="forbidden")
    return f"allow {ctx.caller.tag} to run in terminal {args.get('name')!r}: {summary}?"
