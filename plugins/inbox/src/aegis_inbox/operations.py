"""The core agent-to-agent operations: messages and refusals as in SPEC §3–§4."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aegis_kernel import CallContext, DeliveryError, Envelope, OperationError, SessionError, transcript_lines


def _session(ctx: CallContext, handle: str, param: str) -> Any:
    session = ctx.kernel.sessions.get(handle)
    if session is None:
        raise OperationError(f"no session '{handle}' (use aegis_list_sessions)", code="unknown_handle", param=param)
    return session


#: described first in the briefing: the tools every agent needs to reach the others
CORE_TOOLS = ("aegis_handoff", "aegis_list_sessions", "aegis_spawn", "aegis_read_peer", "aegis_close",
              "aegis_list_agents")
META_LIMIT = 2000


async def meta(ctx: CallContext) -> str:
    """A short briefing generated from the operations the caller may call: the core tools with their
    first line of help, then others with theirs while the briefing stays under :data:`META_LIMIT`
    characters, then every remaining tool named, grouped by family (``aegis_canvas_{open, read}``)."""
    me = ctx.caller.handle or "the user"
    lines = [
        f"Aegis: you are '{me}'. Other agents work beside you; reach them only through these tools.",
        "Messages from others arrive as turns headed '✉ from <sender> · <time>'.",
        "Tools:",
    ]
    ops = [op for op in ctx.kernel.operations.visible_to(ctx.caller) if op.name != "aegis_meta"]
    ops.sort(key=lambda op: (op.name not in CORE_TOOLS, CORE_TOOLS.index(op.name) if op.name in CORE_TOOLS else 0,
                             op.name))
    described: list[str] = []
    rest = [op.name for op in ops]
    for op in ops:
        args = ", ".join(n for n in op.properties if n != "from_handle")
        first = op.description.strip().splitlines()[0] if op.description else ""
        line = f"- {op.name}({args}): {first}"
        left = [n for n in rest if n != op.name]
        size = sum(len(x) + 1 for x in [*lines, *described, line]) + len(_also(left))
        if op.name not in CORE_TOOLS and size >= META_LIMIT:
            break
        described.append(line)
        rest = left
    return "\n".join([*lines, *described, *([_also(rest)] if rest else [])])


def _also(names: list[str]) -> str:
    """``Also: aegis_canvas_{list, open}, aegis_stop`` — every name, families folded, in one line."""
    if not names:
        return ""
    families: dict[str, list[str]] = {}
    for name in sorted(names):
        family, _, member = name.removeprefix("aegis_").partition("_")
        families.setdefault(family, []).append(member)
    parts = []
    for family, members in families.items():
        whole = [m for m in members if not m]
        parts += [f"aegis_{family}"] * len(whole)
        members = [m for m in members if m]
        if len(members) == 1:
            parts.append(f"aegis_{family}_{members[0]}")
        elif members:
            parts.append(f"aegis_{family}_{{{', '.join(members)}}}")
    return "Also: " + ", ".join(parts) + " (call aegis_meta for this list; each tool describes itself)."


async def list_sessions(ctx: CallContext) -> list[dict[str, Any]]:
    return [
        {"handle": s.handle, "agent": s.profile_name, "provider": s.provider, "state": s.state,
         "spawned_by": s.spawned_by, "pending": s.pending_count, "you": s.handle == ctx.caller.handle}
        for s in ctx.kernel.sessions
    ]


async def list_agents(ctx: CallContext) -> list[dict[str, Any]]:
    agents = ctx.kernel.config.get("agents") or {}
    default = ctx.kernel.config.get("default_agent")
    return [{"name": name, "provider": p.provider, "model": p.model, "default": name == default,
             "description": p.description} for name, p in agents.items()]


async def handoff(ctx: CallContext, target_handle: str, context: str, interrupt: bool = False,
                  from_handle: str | None = None) -> dict[str, Any]:
    if target_handle == ctx.caller.handle:
        raise OperationError("handoff rejected: cannot hand off to yourself", code="refused", param="target_handle")
    target = ctx.kernel.sessions.get(target_handle)
    if target is None:
        raise OperationError(f"handoff rejected: no session '{target_handle}' (use aegis_list_sessions)",
                             code="unknown_handle", param="target_handle")
    envelope = Envelope.new(ctx.caller.tag, context, interrupt=interrupt)
    try:
        receipt = ctx.kernel.delivery.deliver(target, envelope)
    except DeliveryError as exc:
        raise OperationError(f"handoff rejected: {exc}", code="refused", param="target_handle") from None
    if receipt.position == 0:
        message = f"landed at {target_handle}"
    elif interrupt:
        message = f"interrupted & landed at {target_handle}"
    else:
        message = f"queued for {target_handle} (position {receipt.position}); delivered at the end of its turn"
    return {"status": receipt.state, "message": message, "envelope_id": receipt.envelope_id,
            "position": receipt.position}


async def spawn(ctx: CallContext, agent: str | None = None, prompt: str | None = None, handle: str | None = None,
                from_handle: str | None = None) -> dict[str, Any]:
    try:
        session = await ctx.kernel.sessions.spawn(agent, handle=handle, prompt=prompt, spawned_by=ctx.caller.handle,
                                                  sender=ctx.caller.tag)
    except (SessionError, ValueError) as exc:
        raise OperationError(str(exc), code="refused", param="agent" if "agent" in str(exc) else "handle") from None
    return {"handle": session.handle, "agent": session.profile_name, "state": session.state}


def may_close(ctx: CallContext, args: Mapping[str, Any]) -> str | None:
    """The rule of ``aegis_close``: the user closes any session, an agent only the ones it spawned."""
    if ctx.caller.is_user:
        return None
    session = ctx.kernel.sessions.get(args["handle"])
    if session is None or session.spawned_by == ctx.caller.handle:
        return None  # an unknown handle is the handler's clear error, not a refusal
    who = f"'{session.spawned_by}'" if session.spawned_by else "the user"
    return f"'{args['handle']}' was spawned by {who}; only its spawner or the user may close it"


async def close(ctx: CallContext, handle: str) -> dict[str, Any]:
    session = _session(ctx, handle, "handle")
    await session.close(f"closed by {ctx.caller.tag}")
    return {"closed": True, "handle": handle}


async def read_peer(ctx: CallContext, handle: str, turns: int = 12) -> dict[str, Any]:
    from aegis_kernel import EnvelopeReceived, UserTurn

    session = _session(ctx, handle, "handle")
    starts = [i for i, e in enumerate(session.history) if isinstance(e, (UserTurn, EnvelopeReceived))]
    first = starts[-turns] if len(starts) >= turns else 0
    text = "\n".join(transcript_lines(session.history[first:]))
    return {"handle": handle, "state": session.state, "turns": min(turns, len(starts)), "text": text[-20000:]}


async def view_file(ctx: CallContext, path: str) -> dict[str, Any]:
    from aegis_kernel import FileViewer

    viewer = ctx.kernel.find_service(FileViewer)
    if viewer is None:
        return {"status": "no_tui", "message": "no TUI is attached to this Aegis (headless); nothing was opened"}
    return await viewer.view_file(path)
