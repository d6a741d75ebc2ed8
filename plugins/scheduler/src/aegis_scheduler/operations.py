"""The schedule operations (MCP tools for agents, ``aegis call`` and the CLI's verbs).

``aegis_schedule_enable``/``disable`` go through the kernel's one comment-preserving edit path:
the ``enabled`` key of the entry in ``.aegis.yaml`` or in its overlay file. ``aegis_schedule_add``
writes a new overlay ``.aegis/schedules/<name>.yaml`` (recording ``added_by``, the caller, and
``added_at``) through the same path, validated as the kernel loads it; ``aegis_schedule_remove``
deletes an overlay, or the entry of ``.aegis.yaml``. Every edit reloads the config, which swaps the table.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

from aegis_kernel import CallContext, OperationError, params

PREFIX = "aegis_scheduler.operations:"
_NAME = {"type": "string", "minLength": 1, "description": "the schedule's name"}
_OPT_STR = {"type": ["string", "null"], "default": None}


def approve(ctx: CallContext, args: dict[str, Any]) -> str | None:
    """Agents' schedule edits (add, remove, enable, disable) follow the ``config_edits`` policy's
    ``schedules`` kind, as the kernel's config tools do (default allow; ``ask`` holds the call for a
    person; ``deny`` refuses). People need no approval (the registry asks only for agents)."""
    value = ctx.kernel.config.get("config_edits")
    decision = value if isinstance(value, str) else str(getattr(value, "schedules", "allow"))
    what = (f"add schedule {args.get('name')!r} running workflow {args.get('workflow')!r}" if "workflow" in args
            else f"change schedule {args.get('name')!r}")
    if decision == "deny":
        raise OperationError(f"config edits of schedules by agents are denied by 'config_edits' in .aegis.yaml "
                             f"(refused: {what})", code="forbidden")
    return f"allow {ctx.caller.tag} to {what}?" if decision == "ask" else None


def runtime(ctx: CallContext) -> Any:
    from .runtime import SchedulerRuntime

    return ctx.kernel.service(SchedulerRuntime)


def _entry(ctx: CallContext, name: str) -> Any:
    from .runtime import ScheduleError

    try:
        return runtime(ctx).get(name)
    except ScheduleError as exc:
        raise OperationError(str(exc), code="not_found", param="name") from None


async def schedule_list(ctx: CallContext) -> dict[str, Any]:
    rt = runtime(ctx)
    return {"schedules": rt.table(), "problems": list(rt.problems)}


async def schedule_show(ctx: CallContext, name: str) -> dict[str, Any]:
    import trio

    rt = runtime(ctx)
    entry = _entry(ctx, name)
    return {**rt.info(entry), "recent": await trio.to_thread.run_sync(rt.logs, name, 10)}


async def schedule_logs(ctx: CallContext, name: str, n: int = 50) -> dict[str, Any]:
    import trio

    _entry(ctx, name)
    return {"name": name, "records": await trio.to_thread.run_sync(runtime(ctx).logs, name, n)}


async def schedule_run(ctx: CallContext, name: str) -> dict[str, Any]:
    rt = runtime(ctx)
    entry = _entry(ctx, name)
    if entry.problem:
        raise OperationError(f"schedule '{name}' cannot fire: {entry.problem}", code="invalid", param="name")
    fire = rt.fire(entry, due=None, manual=True)
    return {"name": name, "fire_id": fire.id, "run_id": getattr(fire.run, "id", None),
            "status": entry.last_status if fire.done.is_set() else "running"}


async def schedule_enable(ctx: CallContext, name: str) -> dict[str, Any]:
    return await _set_enabled(ctx, name, True)


async def schedule_disable(ctx: CallContext, name: str) -> dict[str, Any]:
    return await _set_enabled(ctx, name, False)


async def _set_enabled(ctx: CallContext, name: str, enabled: bool) -> dict[str, Any]:
    _entry(ctx, name)
    overlay = ctx.kernel.config.overlays.get(f"schedules.{name}")
    if overlay is None:  # in .aegis.yaml: the kernel's own operation (approvals, attribution)
        return dict(await ctx.kernel.operations.call(ctx.kernel, "aegis_config_set_schedule_enabled",
                                                     {"name": name, "enabled": enabled}, ctx.caller))
    done = await _edit(ctx, Path(overlay), ["enabled"], enabled, op="set_schedule_enabled")
    return {"key": f"schedules.{name}.enabled", "changed": done.changed, "before": done.before,
            "after": done.after, "file": str(overlay)}


async def schedule_add(ctx: CallContext, name: str, workflow: str, args: dict[str, Any] | None = None,
                       cron: str | None = None, fire_at: str | None = None, every: str | None = None,
                       timezone: str | None = None, lifecycle: Any = None, on_overlap: str | None = None,
                       catch_up: str | None = None, description: str | None = None) -> dict[str, Any]:
    from aegis_kernel import CONFIG_ABSENT, check_safe_name

    problem = check_safe_name(name, "schedule")
    if problem is not None:
        raise OperationError(problem, code="invalid", param="name")
    if name in (ctx.kernel.config.get("schedules") or {}):
        raise OperationError(f"schedule '{name}' already exists", code="conflict", param="name")
    runtime(ctx).refresh_workflows()  # the check judges `workflow` by what is registered now
    body: dict[str, Any] = {"workflow": workflow}
    for key, value in (("args", args), ("cron", cron), ("timezone", timezone), ("every", every),
                       ("fire_at", fire_at), ("lifecycle", lifecycle), ("on_overlap", on_overlap),
                       ("catch_up", catch_up), ("description", description)):
        if value is not None:
            body[key] = value
    body["added_by"] = ctx.caller.tag
    body["added_at"] = ctx.kernel.clock.iso()
    path = overlay_path(ctx.kernel, name)
    done = await _edit(ctx, path, [], body, op="add_schedule", expect=CONFIG_ABSENT)
    return {"name": name, "file": str(path), "added_by": body["added_by"], "changed": bool(done),
            "schedule": _info_or_none(ctx, name)}


async def schedule_remove(ctx: CallContext, name: str) -> dict[str, Any]:
    import trio

    _entry(ctx, name)
    overlay = ctx.kernel.config.overlays.get(f"schedules.{name}")
    if overlay is None:
        result = await ctx.kernel.operations.call(ctx.kernel, "aegis_config_unset", {"path": f"schedules.{name}"},
                                                  ctx.caller)
        return {"name": name, "removed": bool(result.get("changed")), "file": result.get("file")}
    await trio.to_thread.run_sync(_unlink, Path(overlay))
    await _reload(ctx)
    return {"name": name, "removed": True, "file": str(overlay)}


def overlay_path(kernel: Any, name: str) -> Path:
    return Path(kernel.project_dir) / ".aegis" / "schedules" / f"{name}.yaml"


def _info_or_none(ctx: CallContext, name: str) -> dict[str, Any] | None:
    rt = runtime(ctx)
    entry = rt.entries.get(name)
    return None if entry is None else rt.info(entry)


async def _edit(ctx: CallContext, path: Path, keys: list[str], value: Any, *, op: str, expect: Any = None) -> Any:
    """One edit of an overlay file: ``keys`` through the kernel's edit path (``apply_config_edit``), or,
    with no keys, the whole new file ``value`` (validated as the kernel loads it before it appears).
    Then the config is reloaded (which swaps the schedule table)."""
    import trio

    from aegis_kernel import ConfigConflict, ConfigError, apply_config_edit, validator_for

    kernel = ctx.kernel
    if keys:
        run = functools.partial(apply_config_edit, path, keys, value, validate=validator_for(kernel, path),
                                who=ctx.caller.tag, op=op, expect=expect)
    else:
        run = functools.partial(_create_overlay, kernel, path, value)
    try:
        done = await trio.to_thread.run_sync(run)
    except ConfigConflict as exc:
        raise OperationError(str(exc), code="conflict") from None
    except ConfigError as exc:
        raise OperationError(f"the edit would make the config invalid (nothing was written):\n{exc}",
                             code="invalid_config") from None
    await _reload(ctx)
    return done


def _create_overlay(kernel: Any, path: Path, body: dict[str, Any]) -> Any:
    """Write the new overlay ``path`` (refused when it exists), validated before it replaces anything."""
    import io

    from ruamel.yaml import YAML

    from aegis_kernel import CONFIG_ABSENT, ConfigConflict, validator_for, write_text_atomic

    if path.exists():
        raise ConfigConflict(path, [], CONFIG_ABSENT, "an existing file")
    path.parent.mkdir(parents=True, exist_ok=True)
    out = io.StringIO()
    YAML().dump(body, out)
    text = f"# schedule '{path.stem}', added by {body.get('added_by')} at {body.get('added_at')}\n{out.getvalue()}"
    write_text_atomic(path, text, before_replace=validator_for(kernel, path))
    return True


def _unlink(path: Path) -> None:
    path.unlink(missing_ok=True)


async def _reload(ctx: CallContext) -> None:
    """Apply what is now on disk at once (the config watcher would too, a moment later). The files are
    read and judged in a worker thread first; the kernel then re-reads them (small files) and fires
    ``aegis_config_changed`` on the event loop, where the table is swapped."""
    import trio

    from aegis_kernel import ConfigError, validator_for

    kernel = ctx.kernel
    path = kernel.config.path or Path(kernel.project_dir) / ".aegis.yaml"
    try:
        await trio.to_thread.run_sync(validator_for(kernel, path), path)
        kernel.reload_config()
    except ConfigError as exc:
        raise OperationError(f"saved, but the config is not applied:\n{exc}", code="invalid_config") from None


_EDIT: dict[str, Any] = {"approval": PREFIX + "approve"}

OPERATIONS: list[tuple[str, str, str, dict[str, Any], dict[str, Any]]] = [
    ("aegis_schedule_list", "schedule_list",
     "Every schedule: workflow, trigger, enabled, next fire, fire count, in flight, last status.", params(), {}),
    ("aegis_schedule_show", "schedule_show", "One schedule in full, with its recent fires.",
     params(("name",), name=_NAME), {}),
    ("aegis_schedule_logs", "schedule_logs", "A schedule's audit log: fire_requested → fire_completed | fire_failed.",
     params(("name",), name=_NAME, n={"type": "integer", "minimum": 0, "default": 50}), {}),
    ("aegis_schedule_run", "schedule_run",
     "Fire a schedule now, once (not counted towards its lifecycle; on_overlap does not apply).",
     params(("name",), name=_NAME), {}),
    ("aegis_schedule_enable", "schedule_enable", "Enable a schedule (a comment-preserving edit of its file).",
     params(("name",), name=_NAME), _EDIT),
    ("aegis_schedule_disable", "schedule_disable", "Disable a schedule (a comment-preserving edit of its file).",
     params(("name",), name=_NAME), _EDIT),
    ("aegis_schedule_add", "schedule_add",
     "Add a schedule (an overlay file .aegis/schedules/<name>.yaml recording who added it) that runs workflow "
     "with args on exactly one trigger: cron (5 fields, with timezone, IANA, default UTC), fire_at (ISO instant, "
     "e.g. 2026-12-24T18:00:00Z) or every (90s, 10m, 2h). lifecycle: forever | once | {fires: N} | {until: iso}; "
     "on_overlap: skip | queue | kill. To be sent a message later: workflow='prompt', "
     "args={agent: <your handle>, message: ...}, fire_at=<when>.",
     params(("name", "workflow"), name=_NAME, workflow={"type": "string", "minLength": 1},
            args={"type": ["object", "null"], "default": None}, cron=_OPT_STR, fire_at=_OPT_STR, every=_OPT_STR,
            timezone=_OPT_STR, lifecycle={"type": ["string", "object", "null"], "default": None},
            on_overlap={"type": ["string", "null"], "enum": ["skip", "queue", "kill", None], "default": None},
            catch_up={"type": ["string", "null"], "enum": ["skip", "once", None], "default": None},
            description=_OPT_STR), _EDIT),
    ("aegis_schedule_remove", "schedule_remove",
     "Remove a schedule (its overlay file, or its entry in .aegis.yaml); its audit log stays.",
     params(("name",), name=_NAME), _EDIT),
]
