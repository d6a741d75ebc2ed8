"""Config operations: the substrate extends from inside (agents, the CLI, the TUI — one edit path).

Every operation edits ``.aegis.yaml`` through :func:`aegis_kernel.config_edit.apply_edit` (locked,
re-read, validated against the real loader, atomic, recorded in ``.aegis/state/config_edits.jsonl``
with the caller's tag), then applies the new config at once in this process
(:func:`aegis_kernel.config_watch.reload_config`): an agent may declare a queue and enqueue to it in
the same turn; a new agent profile is spawnable at once.

Agents' edits pass the approval declaration of the operation registry under the ``config_edits``
policy (a kernel config section)::

    config_edits: ask            # allow | ask | deny, for every kind
    config_edits:                # or per kind (these are the defaults)
      agents: allow
      queues: allow
      plugin_dirs: ask           # plugin folders run code inside Aegis
      schedules: allow

``ask`` holds the call until a person answers (the agent's session is ``input-required``; ``aegis
approve``/``deny``); ``deny`` refuses it. The user's own calls need no approval. The generic
``aegis_config_set``/``aegis_config_unset`` are for people only.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from attrs import frozen

from .operations import CallContext, OperationError, params

if TYPE_CHECKING:
    from .config import Config

__all__ = ["ConfigEditsPolicy", "edit_policy", "register_config_operations"]

Decision = Literal["allow", "ask", "deny"]
KINDS = ("agents", "queues", "plugin_dirs", "schedules")
PEOPLE = ("user", "telegram")


@frozen
class ConfigEditsPolicy:
    """``config_edits:`` per kind: what an agent's config edit of that kind needs."""

    agents: Decision = "allow"
    queues: Decision = "allow"
    plugin_dirs: Decision = "ask"
    schedules: Decision = "allow"


#: the type of the ``config_edits`` section: one decision for every kind, or one per kind
POLICY_TYPE: Any = Decision | ConfigEditsPolicy | None


def edit_policy(config: Config, kind: str) -> str:
    """``allow``, ``ask`` or ``deny``: the ``config_edits`` policy of ``kind`` in ``config``."""
    value = config.get("config_edits")
    if value is None:
        value = ConfigEditsPolicy()
    return value if isinstance(value, str) else str(getattr(value, kind))


# --- approvals (the registry's approval=, see aegis_kernel.operations) ---------------------------------


def _approval(kind: str) -> Callable[[CallContext, dict[str, Any]], str | None]:
    def rule(ctx: CallContext, args: dict[str, Any]) -> str | None:
        decision = edit_policy(ctx.kernel.config, kind)
        what = _describe(kind, args)
        if decision == "deny":
            raise OperationError(f"config edits of {kind} by agents are denied by 'config_edits' in .aegis.yaml "
                                 f"(refused: {what})", code="forbidden")
        return f"allow {ctx.caller.tag} to {what}?" if decision == "ask" else None
    return rule


def _describe(kind: str, args: dict[str, Any]) -> str:
    if kind == "plugin_dirs":
        return f"add or remove plugin folder {args.get('path')!r} (plugin folders run code inside Aegis)"
    if kind == "schedules":
        return f"{'enable' if args.get('enabled') else 'disable'} schedule {args.get('name')!r}"
    return f"edit {kind} entry {args.get('name')!r}"


_RANK = {"read": 0, "write": 1, "full": 2, "auto": 2}


def approve_agents(ctx: CallContext, args: dict[str, Any]) -> str | None:
    """The ``agents`` policy, plus one rule no policy lifts: an agent may not give a new profile more
    than it has itself. A profile with a higher ``permission`` than the caller's, or its own
    ``command`` or ``env`` (any binary, any environment), runs code as the user — so such an edit by an
    agent below ``full`` always asks a person, even under ``allow`` (``deny`` still refuses)."""
    question = _approval("agents")(ctx, args)
    if question is not None or ctx.caller.kind != "agent" or "provider" not in args:
        return question
    session = ctx.kernel.sessions.get(ctx.caller.handle) if ctx.caller.handle is not None else None
    own = session.profile.permission if session is not None else "read"
    if _RANK.get(own, 0) >= _RANK["full"]:
        return None
    wanted = args.get("permission") or "write"
    reasons = [f"permission {wanted} (yours: {own})"] if _RANK.get(wanted, 2) > _RANK.get(own, 0) else []
    reasons += [f"its own {key}" for key in ("command", "env") if args.get(key)]
    if not reasons:
        return None
    return (f"allow {ctx.caller.tag} to add agent profile {args.get('name')!r} with {' and '.join(reasons)}? "
            "An agent spawned from it runs with that power")


approve_queues = _approval("queues")
approve_plugin_dirs = _approval("plugin_dirs")
approve_schedules = _approval("schedules")


# --- registration ------------------------------------------------------------------------------------

_NAME = {"type": "string", "minLength": 1}
_OPT_STR = {"type": ["string", "null"], "default": None}


def register_config_operations(register: Any) -> None:
    """Register the config operations (called by the kernel's builtin plugin)."""
    ops = "aegis_kernel.config_ops:"
    register("aegis_config_get", ops + "config_get",
             "Read the merged configuration at a dotted path ('' = everything; 'agents', 'queues.review'). "
             "Agents see env values and secrets redacted.",
             params(path={"type": "string", "default": ""}), callers=(*PEOPLE, "agent"))
    register("aegis_config_add_agent", ops + "add_agent",
             "Declare an agent profile in .aegis.yaml; spawnable at once. Refused if the name exists.",
             params(("name", "provider"), name=_NAME, provider=_NAME, model=_OPT_STR, effort=_OPT_STR,
                    permission={"type": ["string", "null"], "enum": [None, "read", "write", "full", "auto"],
                                "default": None},
                    prompt=_OPT_STR, cwd=_OPT_STR, description=_OPT_STR,
                    command={"type": ["array", "null"], "items": {"type": "string"}, "default": None},
                    env={"type": ["object", "null"], "default": None},
                    allow={"type": ["array", "null"], "items": {"type": "string"}, "default": None},
                    deny={"type": ["array", "null"], "items": {"type": "string"}, "default": None},
                    worktree={"type": ["boolean", "null"], "default": None}),
             callers=(*PEOPLE, "agent"), approval=ops + "approve_agents")
    register("aegis_config_remove_agent", ops + "remove_agent",
             "Remove an agent profile (refused while a queue uses it). Running sessions keep it until they close.",
             params(("name",), name=_NAME), callers=(*PEOPLE, "agent"), approval=ops + "approve_agents")
    register("aegis_config_add_queue", ops + "add_queue",
             "Declare a queue (opens at once: enqueue to it right away). budgets: a list like "
             "[{'usd': 1.0, 'window': '1h'}].",
             params(("name", "agent"), name=_NAME, agent=_NAME,
                    max_parallel={"type": "integer", "minimum": 1, "default": 1},
                    budgets={"type": ["array", "null"], "items": {"type": "object"}, "default": None},
                    worktree={"type": "boolean", "default": False}, timeout=_OPT_STR),
             callers=(*PEOPLE, "agent"), approval=ops + "approve_queues")
    register("aegis_config_remove_queue", ops + "remove_queue",
             "Remove a queue: it finishes the tasks it admitted and accepts no more.",
             params(("name",), name=_NAME), callers=(*PEOPLE, "agent"), approval=ops + "approve_queues")
    register("aegis_config_add_plugin_dir", ops + "add_plugin_dir",
             "Add a plugin folder (plugins.dirs): each *.py module in it is loaded as a plugin.",
             params(("path",), path=_NAME), callers=(*PEOPLE, "agent"), approval=ops + "approve_plugin_dirs")
    register("aegis_config_remove_plugin_dir", ops + "remove_plugin_dir", "Remove a plugin folder (plugins.dirs).",
             params(("path",), path=_NAME), callers=(*PEOPLE, "agent"), approval=ops + "approve_plugin_dirs")
    register("aegis_config_set_schedule_enabled", ops + "set_schedule_enabled",
             "Enable or disable a configured schedule.",
             params(("name", "enabled"), name=_NAME, enabled={"type": "boolean"}),
             callers=(*PEOPLE, "agent"), approval=ops + "approve_schedules")
    register("aegis_config_set", ops + "config_set",
             "Set a dotted key path of .aegis.yaml to a JSON value, validated (e.g. default_agent, "
             "agents.main.model). expect: the value you last read (null: absent); if the file says otherwise "
             "now (edited meanwhile), the edit is refused instead of overwriting it.",
             params(("path", "value"), path=_NAME, value={}, expect={}), callers=PEOPLE)
    register("aegis_config_unset", ops + "config_unset", "Remove a dotted key path from .aegis.yaml, validated.",
             params(("path",), path=_NAME), callers=PEOPLE)


# --- the edit helper -------------------------------------------------------------------------------------


def split_path(path: str) -> list[str]:
    """``"agents.main.model"`` → ``["agents", "main", "model"]``; empty parts are refused."""
    keys = path.split(".")
    if not path or any(not k for k in keys):
        raise OperationError(f"a key path looks like 'agents.main.model', got {path!r}", code="bad_argument",
                             param="path")
    return keys


def _refuse_overlay(config: Config, keys: list[str]) -> None:
    for depth in (2, len(keys)):
        where = config.overlays.get(".".join(keys[:depth]))
        if where is not None:
            raise OperationError(f"{'.'.join(keys[:depth])} is defined in {where}: edit or delete that file",
                                 code="refused", param="name")


async def edit(ctx: CallContext, op: str, keys: list[str], value: Any, *, expect: Any = None,
               check: Callable[[Any], None] | None = None, prune: bool = True) -> dict[str, Any]:
    """Apply one edit of ``.aegis.yaml`` for ``ctx.caller`` and apply the new config in this process.

    ``value``: the new value, :data:`~aegis_kernel.config_edit.REMOVE`, or a function of the current
    value (read under the lock); a removal also removes the sections it leaves empty (``prune``). Refusals are :class:`OperationError` (``conflict``, ``invalid_config``).
    """
    import functools

    import trio

    from .config import CONFIG_NAME, ConfigError
    from .config_edit import ConfigConflict, apply_edit
    from .config_watch import reload_config, validator_for

    kernel = ctx.kernel
    _refuse_overlay(kernel.config, keys)
    path = kernel.config.path or kernel.project_dir / CONFIG_NAME

    def run() -> Any:
        return apply_edit(path, keys, value, validate=validator_for(kernel, path), who=ctx.caller.tag, op=op,
                          expect=expect, check=check, prune=prune)

    try:
        done = await trio.to_thread.run_sync(functools.partial(run))
    except ConfigConflict as exc:
        raise OperationError(str(exc), code="conflict") from None
    except ConfigError as exc:
        raise OperationError(f"the edit would make the config invalid (nothing was written):\n{exc}",
                             code="invalid_config") from None
    if done.changed:
        await reload_config(kernel)
        if kernel.config_error is not None:  # another file (an overlay) is broken: say so, the edit is saved
            raise OperationError(f"saved, but the config is not applied:\n{kernel.config_error}",
                                 code="invalid_config")
    before, after = done.before, done.after
    if ctx.caller.kind not in PEOPLE:  # what an agent reads back never carries a secret
        before, after = _redacted(before, keys[-1]), _redacted(after, keys[-1])
    return {"key": done.key, "changed": done.changed, "before": before, "after": after, "file": str(path)}


def _exists(what: str, name: str) -> Callable[[Any], None]:
    from .config_edit import ABSENT

    def check(current: Any) -> None:
        if current is not ABSENT and current is not None:
            raise OperationError(f"{what} '{name}' already exists; remove it first (or edit it with "
                                 f"aegis config set)", code="exists", param="name")
    return check


def _must_exist(what: str, name: str, known: Callable[[], list[str]]) -> Callable[[Any], None]:
    from .config_edit import ABSENT

    def check(current: Any) -> None:
        if current is ABSENT:
            raise OperationError(f"unknown {what} '{name}' (configured: {', '.join(known()) or 'none'})",
                                 code="not_found", param="name")
    return check


# --- handlers ---------------------------------------------------------------------------------------------


def _redacted(value: Any, key: str = "") -> Any:
    from .config_edit import redact_value

    return redact_value(value, key)


async def config_get(ctx: CallContext, path: str = "") -> dict[str, Any]:
    value: Any = ctx.kernel.config.raw
    for key in split_path(path) if path else []:
        if not isinstance(value, dict) or key not in value:
            raise OperationError(f"'{path}' is not in the config", code="not_found", param="path")
        value = value[key]
    if ctx.caller.kind not in PEOPLE:
        value = _redacted(value, path.rsplit(".", 1)[-1])
    return {"path": path, "value": value}


def _profile(provider: str, model: str | None, effort: str | None, permission: str | None, prompt: str | None,
             cwd: str | None, description: str | None, command: list[str] | None, env: dict[str, Any] | None,
             allow: list[str] | None, deny: list[str] | None, worktree: bool | None) -> dict[str, Any]:
    entry = {"provider": provider, "model": model, "effort": effort, "permission": permission, "prompt": prompt,
             "cwd": cwd, "command": command, "env": env, "allow": allow, "deny": deny, "worktree": worktree,
             "description": description}
    return {k: v for k, v in entry.items() if v is not None}


async def add_agent(ctx: CallContext, name: str, provider: str, model: str | None = None,
                    effort: str | None = None, permission: str | None = None, prompt: str | None = None,
                    cwd: str | None = None, description: str | None = None, command: list[str] | None = None,
                    env: dict[str, Any] | None = None, allow: list[str] | None = None,
                    deny: list[str] | None = None, worktree: bool | None = None) -> dict[str, Any]:
    profile = _profile(provider, model, effort, permission, prompt, cwd, description, command, env, allow, deny,
                       worktree)
    out = await edit(ctx, "add_agent", ["agents", name], profile, check=_exists("agent", name))
    if ctx.kernel.config.get("default_agent") is None and list(ctx.kernel.config.get("agents") or {}) == [name]:
        await edit(ctx, "set_default_agent", ["default_agent"], name)  # the first agent is the default
        out["default_agent"] = name
    return out


def _queues_using(kernel: Any, path: Path, agent: str) -> list[str]:
    from .config_edit import read_key

    queues = dict(kernel.config.raw.get("queues") or {})
    on_disk = read_key(path, ["queues"])
    if isinstance(on_disk, dict):
        queues.update(on_disk)
    return sorted(q for q, spec in queues.items() if isinstance(spec, dict) and spec.get("agent") == agent)


async def remove_agent(ctx: CallContext, name: str) -> dict[str, Any]:
    from .config import CONFIG_NAME
    from .config_edit import REMOVE

    kernel = ctx.kernel
    path = kernel.config.path or kernel.project_dir / CONFIG_NAME
    must = _must_exist("agent", name, lambda: sorted(kernel.config.raw.get("agents") or {}))

    def check(current: Any) -> None:
        must(current)
        using = _queues_using(kernel, path, name)
        if using:
            raise OperationError(f"agent '{name}' is used by queue {', '.join(repr(q) for q in using)}: remove "
                                 f"or repoint that queue first", code="in_use", param="name", queues=using)
    return await edit(ctx, "remove_agent", ["agents", name], REMOVE, check=check)


async def add_queue(ctx: CallContext, name: str, agent: str, max_parallel: int = 1,
                    budgets: list[dict[str, Any]] | None = None, worktree: bool = False,
                    timeout: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"agent": agent, "max_parallel": max_parallel}
    if worktree:
        spec["worktree"] = True
    if timeout is not None:
        spec["timeout"] = timeout
    if budgets:
        spec["budgets"] = budgets
    return await edit(ctx, "add_queue", ["queues", name], spec, check=_exists("queue", name))


async def remove_queue(ctx: CallContext, name: str) -> dict[str, Any]:
    from .config_edit import REMOVE

    known = lambda: sorted(ctx.kernel.config.raw.get("queues") or {})  # noqa: E731
    return await edit(ctx, "remove_queue", ["queues", name], REMOVE, check=_must_exist("queue", name, known))


def _dirs(current: Any) -> list[str]:
    from .config_edit import ABSENT

    if current is ABSENT or current is None:
        return []
    if not isinstance(current, list):
        raise OperationError(f"plugins.dirs must be a list, found {type(current).__name__}", code="invalid_config")
    return list(current)


async def add_plugin_dir(ctx: CallContext, path: str) -> dict[str, Any]:
    return await edit(ctx, "add_plugin_dir", ["plugins", "dirs"],
                      lambda current: _dirs(current) + ([] if path in _dirs(current) else [path]))


async def remove_plugin_dir(ctx: CallContext, path: str) -> dict[str, Any]:
    def without(current: Any) -> Any:
        dirs = _dirs(current)
        if path not in dirs:
            raise OperationError(f"'{path}' is not a plugin folder (plugins.dirs: {', '.join(dirs) or 'none'})",
                                 code="not_found", param="path")
        return [d for d in dirs if d != path] or REMOVE  # the last one: no empty list left behind
    from .config_edit import REMOVE

    return await edit(ctx, "remove_plugin_dir", ["plugins", "dirs"], without)


async def set_schedule_enabled(ctx: CallContext, name: str, enabled: bool) -> dict[str, Any]:
    kernel = ctx.kernel
    if "schedules" not in kernel.plugins.registry.objects("config_sections"):
        raise OperationError("schedules are not available: no installed plugin owns the 'schedules' section",
                             code="unavailable", param="name")
    known = lambda: sorted(kernel.config.raw.get("schedules") or {})  # noqa: E731
    return await edit(ctx, "set_schedule_enabled", ["schedules", name, "enabled"], enabled,
                      check=_parent_exists("schedule", name, known))


def _parent_exists(what: str, name: str, known: Callable[[], list[str]]) -> Callable[[Any], None]:
    def check(current: Any) -> None:
        if name not in known():
            raise OperationError(f"unknown {what} '{name}' (configured: {', '.join(known()) or 'none'})",
                                 code="not_found", param="name")
    return check


_UNSET: Any = object()


async def config_set(ctx: CallContext, path: str, value: Any, expect: Any = _UNSET) -> dict[str, Any]:
    from .config_edit import ABSENT

    wanted = None if expect is _UNSET else (ABSENT if expect is None else expect)
    return await edit(ctx, "set", split_path(path), value, expect=wanted)


async def config_unset(ctx: CallContext, path: str) -> dict[str, Any]:
    from .config_edit import REMOVE

    return await edit(ctx, "unset", split_path(path), REMOVE, prune=False)
