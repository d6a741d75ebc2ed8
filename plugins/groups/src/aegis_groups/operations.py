"""Group operations (MCP tools for agents; the CLI verbs call the same ones over the control socket).

Managing a group (remove, rename, move, dissolve) is for the user and the agent that created it;
spawning, adding, broadcasting and gathering are open to every agent (a committee is often shared).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from aegis_kernel import CallContext, OperationError, params

if TYPE_CHECKING:
    from .runtime import GroupRuntime

_STR = {"type": "string", "minLength": 1}
_OPT_STR = {"type": ["string", "null"], "default": None}
_HANDLES = {"type": "array", "items": _STR}
_FROM = {"type": "string", "description": "your own handle (optional; must be you)"}
_TIMEOUT = {"type": ["number", "null"], "minimum": 0, "default": None,
            "description": "seconds (default: groups.defaults.timeout)"}
_OPS = "aegis_groups.operations:"


def runtime(ctx: CallContext) -> GroupRuntime:
    from .runtime import GroupRuntime

    rt = ctx.kernel.find_service(GroupRuntime)
    if rt is None:
        raise OperationError("the groups service is not running in this Aegis", code="unavailable")
    return rt


async def settled(ctx: CallContext) -> GroupRuntime:
    """The runtime, once its restart reconciliation is done (members restored or removed, interrupted
    broadcasts closed): a call made while Aegis is still starting waits for that instead of seeing
    members whose sessions are not back yet."""
    rt = runtime(ctx)
    await rt.settled.wait()
    return rt


def may_manage(ctx: CallContext, args: Mapping[str, Any]) -> str | None:
    """The rule of remove/rename/move/dissolve: the user, or the agent that created the group."""
    if ctx.caller.is_user:
        return None
    rt = ctx.kernel.find_service(_runtime_type())
    if rt is None:
        return None
    if "name" in args:
        group = rt.groups.get(args["name"])
    else:
        group = rt.member_of(args.get("handle", ""))
    if group is None or group.created_by == ctx.caller.tag:
        return None  # an unknown group is the handler's clear error, not a refusal
    return f"group {group.name!r} was created by {group.created_by}; only it or the user may change it"


def _runtime_type() -> type:
    from .runtime import GroupRuntime

    return GroupRuntime


async def spawn(ctx: CallContext, name: str, profiles: list[str] | None = None, preset: str | None = None,
                from_handle: str | None = None) -> dict[str, Any]:
    rt = await settled(ctx)
    if preset is not None:
        if profiles:
            raise OperationError("give profiles or preset, not both", code="bad_argument", param="preset")
        presets = rt.config.presets
        if preset not in presets:
            raise OperationError(f"no group preset {preset!r} (configured: {', '.join(sorted(presets)) or 'none'}; "
                                 "see groups.presets in .aegis.yaml)", code="bad_argument", param="preset")
        profiles = list(presets[preset].profiles)
    return await rt.spawn(name, list(profiles or []), caller=ctx.caller)


async def add(ctx: CallContext, name: str, handles: list[str], from_handle: str | None = None) -> dict[str, Any]:
    return (await settled(ctx)).add(name, handles, caller=ctx.caller)


async def remove(ctx: CallContext, name: str, handles: list[str]) -> dict[str, Any]:
    return (await settled(ctx)).remove(name, handles, caller=ctx.caller)


async def rename(ctx: CallContext, name: str, new_name: str) -> dict[str, Any]:
    return await (await settled(ctx)).rename(name, new_name)


async def move(ctx: CallContext, handle: str, to: str) -> dict[str, Any]:
    return (await settled(ctx)).move(handle, to, caller=ctx.caller)


async def dissolve(ctx: CallContext, name: str, close_members: bool = True) -> dict[str, Any]:
    return await (await settled(ctx)).dissolve(name, close_members=close_members, caller=ctx.caller)


async def group_list(ctx: CallContext) -> dict[str, Any]:
    rt = await settled(ctx)
    return {"groups": [rt.group_info(g) for g in rt.groups.values()],
            "presets": {n: list(p.profiles) for n, p in rt.config.presets.items()}}


async def status(ctx: CallContext, name: str) -> dict[str, Any]:
    rt = await settled(ctx)
    return rt.group_info(rt.group(name), detail=True)


async def broadcast(ctx: CallContext, name: str, objective: str, output_format: str = "", tool_guidance: str = "",
                    boundaries: str = "", callback: bool = False, reducer: str | None = None,
                    from_handle: str | None = None) -> dict[str, Any]:
    fields = {"objective": objective, "output_format": output_format, "tool_guidance": tool_guidance,
              "boundaries": boundaries}
    return (await settled(ctx)).broadcast(name, fields, caller=ctx.caller, callback=callback, reducer=reducer)


async def wait_all(ctx: CallContext, name: str, timeout: float | None = None, reducer: str | None = None,
                   broadcast_id: str | None = None) -> dict[str, Any]:
    rt = await settled(ctx)
    return await rt.wait_all(name, timeout=rt.config.defaults.timeout if timeout is None else timeout,
                             reducer=reducer, broadcast_id=broadcast_id)


async def wait_any(ctx: CallContext, name: str, timeout: float | None = None, cancel_losers: bool = True,
                   broadcast_id: str | None = None) -> dict[str, Any]:
    rt = await settled(ctx)
    return await rt.wait_any(name, timeout=rt.config.defaults.timeout if timeout is None else timeout,
                             cancel_losers=cancel_losers, broadcast_id=broadcast_id)


async def reducers(ctx: CallContext) -> dict[str, Any]:
    from .reducers import registered

    owners = ctx.kernel.plugins.registry["reducers"]
    return {"reducers": [{"name": n, "description": e["description"], "plugin": owners[n].owner}
                         for n, e in sorted(registered(ctx.kernel).items())],
            "default": runtime(ctx).config.defaults.reducer}


_SPAWN_DOC = ("Create a group: one new agent per profile (or preset).\nOne new agent session per profile (or per "
              "profile of `preset`, from groups.presets in .aegis.yaml); returns {name, members}.")

OPERATIONS: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    ("aegis_group_spawn", "spawn", _SPAWN_DOC,
     params(("name",), name=_STR, profiles={"type": ["array", "null"], "items": _STR, "default": None},
            preset=_OPT_STR, from_handle=_FROM), {}),
    ("aegis_group_spawn_mixed", "spawn", "Create a group (as aegis_group_spawn; providers may mix).\n" + _SPAWN_DOC.split("\n", 1)[1],
     params(("name",), name=_STR, profiles={"type": ["array", "null"], "items": _STR, "default": None},
            preset=_OPT_STR, from_handle=_FROM), {}),
    ("aegis_group_add", "add", "Add live sessions to a group (created when missing).",
     params(("name", "handles"), name=_STR, handles=_HANDLES, from_handle=_FROM), {}),
    ("aegis_group_remove", "remove", "Remove members from a group (they keep running).",
     params(("name", "handles"), name=_STR, handles=_HANDLES), {"check": _OPS + "may_manage"}),
    ("aegis_group_rename", "rename", "Rename a group.",
     params(("name", "new_name"), name=_STR, new_name=_STR), {"check": _OPS + "may_manage"}),
    ("aegis_group_move", "move", "Move a member to another group.",
     params(("handle", "to"), handle=_STR, to=_STR), {"check": _OPS + "may_manage"}),
    ("aegis_group_dissolve", "dissolve",
     "Dissolve a group.\nclose_members=true (default) closes the members the group spawned; sessions added "
     "with aegis_group_add keep running.",
     params(("name",), name=_STR, close_members={"type": "boolean", "default": True}),
     {"check": _OPS + "may_manage"}),
    ("aegis_group_list", "group_list", "The groups and presets.",
     params(), {}),
    ("aegis_group_status", "status",
     "One group's members and broadcasts.\nMembers with their state and whether they answered the open "
     "broadcast; recent broadcasts.",
     params(("name",), name=_STR), {}),
    ("aegis_group_broadcast", "broadcast",
     "Ask every member of a group one structured question.\nEach member receives "
     "'✉ from group:<name>/broadcast:<id>' with the four fields, and its reply is its whole final message of "
     "that turn. One open broadcast per group. Returns {broadcast_id, members}. With callback=true the reduced "
     "result reaches you as one envelope when the broadcast closes (so you need not hold a wait open).",
     params(("name", "objective"), name=_STR, objective=_STR, output_format={"type": "string", "default": ""},
            tool_guidance={"type": "string", "default": ""}, boundaries={"type": "string", "default": ""},
            callback={"type": "boolean", "default": False}, reducer=_OPT_STR, from_handle=_FROM), {}),
    ("aegis_group_wait_all", "wait_all",
     "Gather every member's reply to the broadcast, reduced.\nWaits for every reply (or until timeout: the rest are listed in "
     "timeouts). Returns {broadcast_id, reduced, replies: {handle: {text, status, turn_s, usage}}, timeouts, "
     "errors}. Reducers: see aegis_group_reducers (default join_by_handle).",
     params(("name",), name=_STR, timeout=_TIMEOUT, reducer=_OPT_STR, broadcast_id=_OPT_STR), {}),
    ("aegis_group_wait_any", "wait_any",
     "Gather the first reply to the broadcast; cancel the rest.\nThe first reply wins (reduced = its text, winner = its handle) and "
     "the broadcast closes; with cancel_losers=true (default) the others get '✉ from group:<name>/cancel:<id> · "
     "superseded by <winner>'.",
     params(("name",), name=_STR, timeout=_TIMEOUT, cancel_losers={"type": "boolean", "default": True},
            broadcast_id=_OPT_STR), {}),
    ("aegis_group_reducers", "reducers", "The reducers installed.", params(), {}),
]
