"""The scheduler runtime: one sleeping task per schedule, firing workflows exactly when due
(``kernel.service(SchedulerRuntime)``).

Each schedule's task computes its next due instant from its trigger and sleeps on the kernel clock
until then (or until the schedule changes) — there is no tick, so 1,000 idle schedules cost 1,000
sleeping tasks and nothing else. A due instant further than :data:`RECHECK` away is re-aimed after
that long (trio's clock does not move while the machine is suspended, the wall clock does). A fire starts the workflow through aegis-workflow's runtime
(``start_run(..., by="schedule:<name>")``) and is recorded in the schedule's journal
``.aegis/state/schedules/<name>.jsonl``::

    {"event": "created", "anchor": <epoch>}                 # first seen (``every`` counts from here)
    {"event": "fire_requested", "fire_id", "due", "manual", "run_id"?}
    {"event": "fire_completed", "fire_id", "status": "ok", "result": <excerpt>}
    {"event": "fire_failed", "fire_id", "status": "failed:crash|failed:killed|failed:interrupted", "error"}
    {"event": "fire_skipped", "due", "reason": "overlap"}  # on_overlap: skip

On start every journal is replayed: the fire count (manual ``run``\\ s do not count towards the
lifecycle), the last due instant (so a ``fire_at`` that fired never fires again, and ``every``
continues its rhythm) and the last status; a ``fire_requested`` with no outcome was in flight when the
previous owner stopped and is closed ``failed:interrupted``. Fires missed while no kernel ran are
dropped (``catch_up: skip``) or fired once at start (``catch_up: once``).

``schedules.snapshot.json`` (next fire, fire count, in flight, last status per schedule) is rewritten
after changes for dashboards; changes are published on the bus under ``schedule``.

A config change (:meth:`SchedulerRuntime.on_config_changed`) swaps the table: an entry whose spec is
unchanged keeps its task and state; a changed one is restarted with its history; a removed one stops
(its running fire finishes).
"""

from __future__ import annotations

import json
import logging
import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from attrs import define, field

from aegis_kernel import ArchivePlan, Journal, iso_utc, new_id, plan_archive, write_json_atomic

from .config import ScheduleSpec, lifecycle_of, register_catalog
from .triggers import BUILTIN

if TYPE_CHECKING:
    from aegis_kernel import Kernel

log = logging.getLogger("aegis.scheduler")

FOLDER = "schedules"
SNAPSHOT = "schedules.snapshot.json"
EXCERPT = 500  # characters of a workflow's result kept in fire_completed
ARCHIVE_AT, KEEP = 1000, 100  # at start, once 1,000 fires ended, all but the newest 100 move to archive/
EPSILON = 1e-3  # a due instant this close is due
RECHECK = 600.0  # a far due instant is re-aimed this often: the wall clock may jump (suspend, NTP)
ENDED = {"ok", "failed:crash", "failed:killed", "failed:interrupted", "skipped"}


class ScheduleError(Exception):
    """A schedule operation refused (unknown name, workflow unavailable)."""


@define(eq=False)
class Fire:
    id: str
    due: float | None
    manual: bool
    run: Any = None
    killed: bool = False
    done: trio.Event = field(factory=trio.Event)


@define(eq=False)
class Entry:
    name: str
    spec: ScheduleSpec
    journal: Journal
    trigger: Any = None
    problem: str | None = None
    anchor: float = 0.0
    fires: int = 0  # triggered fires requested (the lifecycle counts these)
    manual_fires: int = 0
    cursor: float | None = None  # the last due instant handled (fired or skipped)
    floor: float = -math.inf  # dues at or before this are not fired (missed while nothing ran)
    last_status: str | None = None
    last_fire_at: float | None = None
    next_due: float | None = None
    inflight: list[Fire] = field(factory=list)
    wake: trio.Event = field(factory=trio.Event)
    scope: trio.CancelScope | None = None

    def poke(self) -> None:
        self.wake.set()


class SchedulerRuntime:
    def __init__(self, kernel: Kernel, nursery: trio.Nursery) -> None:
        self.kernel = kernel
        self.nursery = nursery
        self.folder: Path = kernel.state.path(FOLDER, "x").parent
        self.entries: dict[str, Entry] = {}
        self.problems: list[str] = []
        self._dirty = trio.Event()
        self._running = False
        self._workflows: set[str] | None = None

    # --- start -----------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Replay every configured schedule's journal (off the event loop), close dangling fires, and
        let the section check see the workflow catalog."""
        self.refresh_workflows()
        register_catalog(self.kernel.project_dir, self.known_workflows)
        specs = dict(self.kernel.config.get("schedules") or {})
        replayed = await trio.to_thread.run_sync(self._replay_all, specs)
        now = self.kernel.clock.now()
        for name, spec in specs.items():
            entry = self._entry(name, spec, replayed.get(name, []), now)
            entry.floor = now
            if spec.catch_up == "once" and entry.trigger is not None and spec.enabled:
                missed = self._next(entry, floor=-math.inf)
                if missed is not None and missed <= now:
                    entry.floor = -math.inf  # fire the newest missed due once, then carry on from now
                    entry.cursor = _last_before(entry, now)
            self.entries[name] = entry

    def close(self) -> None:
        register_catalog(self.kernel.project_dir, None)
        for entry in self.entries.values():
            entry.journal.close()

    def _replay_all(self, specs: dict[str, ScheduleSpec]) -> dict[str, list[dict[str, Any]]]:
        out = {}
        for name in specs:
            path = self.folder / f"{name}.jsonl"
            if path.exists():
                result = Journal(path, key="fire_id").archive(archive_plan, at=iso_utc(self.kernel.clock.now()))
                out[name] = list(result.records)
                self.problems.extend(f"{path.name}: {p}" for p in result.problems)
        return out

    def _entry(self, name: str, spec: ScheduleSpec, records: list[dict[str, Any]], now: float) -> Entry:
        journal = Journal(self.folder / f"{name}.jsonl", key="fire_id", writer=self.kernel.state.writer)
        entry = Entry(name=name, spec=spec, journal=journal)
        self._build_trigger(entry)
        open_fires: dict[str, dict[str, Any]] = {}
        anchor = None
        for rec in records:
            kind = rec.get("event")
            if kind == "created":
                anchor = float(rec.get("anchor") or now)
            elif kind == "fire_requested":
                open_fires[str(rec.get("fire_id"))] = rec
                entry.last_fire_at = float(rec.get("at_ts") or 0) or entry.last_fire_at
                if rec.get("manual"):
                    entry.manual_fires += 1
                else:
                    entry.fires += 1
                    entry.cursor = _max(entry.cursor, rec.get("due_ts"))
            elif kind == "fire_skipped":
                entry.cursor = _max(entry.cursor, rec.get("due_ts"))
            elif kind == "archived":  # what moved to archive/ still counts
                entry.fires += int(rec.get("fires") or 0)
                entry.manual_fires += int(rec.get("manual_fires") or 0)
                entry.cursor = _max(entry.cursor, rec.get("cursor"))
            elif kind in ("fire_completed", "fire_failed"):
                open_fires.pop(str(rec.get("fire_id")), None)
                entry.last_status = str(rec.get("status"))
        for fire_id in open_fires:
            journal.append({"event": "fire_failed", "fire_id": fire_id, "status": "failed:interrupted",
                            "error": "the kernel stopped while this fire ran", "at": iso_utc(now)})
            entry.last_status = "failed:interrupted"
        if anchor is None:
            anchor = now
            journal.append({"event": "created", "anchor": anchor, "at": iso_utc(now)})
        entry.anchor = anchor
        return entry

    def _build_trigger(self, entry: Entry) -> None:
        spec = entry.spec
        factories = {**BUILTIN, **self.kernel.plugins.registry.objects("triggers")}
        factory = factories.get(spec.kind)
        entry.trigger, entry.problem = None, None
        if factory is None:
            entry.problem = f"unknown trigger kind {spec.kind!r} (known: {', '.join(sorted(factories))})"
        else:
            try:
                entry.trigger = factory(spec)
            except (ValueError, TypeError) as exc:
                entry.problem = str(exc)
        names = self.workflow_names()
        if entry.problem is None and names is not None and spec.workflow not in names:
            entry.problem = f"unknown workflow {spec.workflow!r}"
        if entry.problem:
            log.error("schedule %s: %s (it will not fire)", entry.name, entry.problem)

    # --- the workflow side -------------------------------------------------------------------------------

    def workflows(self) -> Any:
        """aegis-workflow's runtime (None when it is not running)."""
        try:
            from aegis_workflow.runtime import WorkflowRuntime
        except ImportError:
            return None
        return self.kernel.find_service(WorkflowRuntime)

    def workflow_names(self) -> set[str] | None:
        """The workflows aegis-workflow knows (None while it is not running: nothing can be judged).
        On the event loop only (the catalog may load project files)."""
        wrt = self.workflows()
        return None if wrt is None else set(wrt.catalog.all())

    def refresh_workflows(self) -> None:
        """Cache :meth:`workflow_names` for the section check (on the event loop)."""
        self._workflows = self.workflow_names()

    def known_workflows(self) -> set[str] | None:
        """What the section check asks (from any thread): the cached names, plus the names declared
        with ``@workflow("…")`` in the project's workflow files now (read as text, nothing imported),
        so a schedule may name a workflow file written a moment ago."""
        cached = self._workflows
        if cached is None:
            return None
        return cached | _declared(Path(self.kernel.project_dir) / ".aegis" / "workflows")

    # --- running -----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Drive every schedule (after the kernel restored its sessions, so a prompt finds its agent)."""
        await self.kernel.sessions.restored.wait()
        self._running = True
        for entry in list(self.entries.values()):
            self._launch(entry)
        self.nursery.start_soon(self._snapshots)
        self._changed(None)

    def _launch(self, entry: Entry) -> None:
        entry.scope = trio.CancelScope()
        self.nursery.start_soon(self._drive, entry, entry.scope, name=f"schedule:{entry.name}")

    async def _drive(self, entry: Entry, scope: trio.CancelScope) -> None:
        with scope:
            while True:
                entry.wake = trio.Event()
                due = self._next(entry, floor=entry.floor)
                if due != entry.next_due:
                    entry.next_due = due
                    self._changed(entry)
                if due is None:
                    await entry.wake.wait()
                    continue
                if await self._sleep_until(entry, due):
                    await self._due(entry, due)

    async def _sleep_until(self, entry: Entry, due: float) -> bool:
        """Sleep until the wall clock reaches ``due`` (True) or the schedule changes (False). A long
        wait is re-aimed every :data:`RECHECK` seconds, so a wall clock that jumped is followed."""
        clock = self.kernel.clock
        while clock.now() < due - EPSILON:  # (rounding between the two clocks must not spin)
            with trio.move_on_at(min(clock.wall_to_monotonic(due), clock.monotonic() + RECHECK)):
                await entry.wake.wait()
                return False
        return True

    def _next(self, entry: Entry, *, floor: float) -> float | None:
        """The next due instant of ``entry`` (None: disabled, broken, or its lifecycle is over)."""
        spec = entry.spec
        if entry.trigger is None or not spec.enabled:
            return None
        life = lifecycle_of(spec.lifecycle)
        if life.max_fires is not None and entry.fires >= life.max_fires:
            return None
        after = max(entry.cursor if entry.cursor is not None else -math.inf, floor)
        if after == -math.inf:
            after = entry.anchor - 1e-6 if spec.kind == "fire_at" else entry.anchor
        due = entry.trigger.next_after(after, entry.anchor)
        if due is not None and life.until is not None and due > life.until:
            return None
        return due

    async def _due(self, entry: Entry, due: float) -> None:
        """``due`` has come: apply ``on_overlap`` and fire."""
        running = [f for f in entry.inflight if not f.done.is_set()]
        policy = entry.spec.on_overlap
        if running and policy == "skip":
            entry.cursor = due
            entry.journal.append({"event": "fire_skipped", "fire_id": new_id(), "due": iso_utc(due), "due_ts": due, "reason": "overlap",
                                  "at": self.kernel.clock.iso()})
            log.info("schedule %s: skipped the fire due %s (the last one still runs)", entry.name, iso_utc(due))
            self._changed(entry)
            return
        if running and policy == "kill":
            wrt = self.workflows()
            for fire in running:
                fire.killed = True
                if fire.run is not None and wrt is not None:
                    wrt.cancel(fire.run, by=f"schedule:{entry.name}")
            for fire in running:
                await fire.done.wait()
        elif running:  # queue: this fire waits for the running one; dues passing meanwhile join it
            for fire in running:
                await fire.done.wait()
        entry.cursor = max(due, self.kernel.clock.now()) if running and policy == "queue" else due
        entry.floor = -math.inf
        self.fire(entry, due=due, manual=False)

    def fire(self, entry: Entry, *, due: float | None, manual: bool) -> Fire:
        """Fire ``entry`` now (``manual``: ``aegis schedule run``, counted apart from the lifecycle)."""
        now = self.kernel.clock.now()
        fire = Fire(id=new_id(), due=due, manual=manual)
        wrt = self.workflows()
        run, error = None, None
        if wrt is None:
            error = "aegis-workflow is not running"
        else:
            from aegis_workflow.errors import WorkflowError

            try:
                run = wrt.start_run(entry.spec.workflow, dict(entry.spec.args or {}), caller=None, callback=False,
                                    by=f"schedule:{entry.name}")
            except WorkflowError as exc:
                error = str(exc)
        fire.run = run
        entry.journal.append({"event": "fire_requested", "fire_id": fire.id, "workflow": entry.spec.workflow,
                              "due": None if due is None else iso_utc(due), "due_ts": due, "manual": manual,
                              "at": iso_utc(now), "at_ts": now,
                              "lateness_s": None if due is None else round(max(0.0, now - due), 6),
                              **({"run_id": run.id} if run is not None else {})})
        entry.last_fire_at = now
        if manual:
            entry.manual_fires += 1
        else:
            entry.fires += 1
        entry.inflight.append(fire)
        self.kernel.bus.publish("schedule", {"name": entry.name, "fired": fire.id, "due": due, "manual": manual,
                                             "run_id": getattr(run, "id", None)})
        if run is None:
            self._outcome(entry, fire, "failed:crash", None, error)
        else:
            self.nursery.start_soon(self._watch, entry, fire, name=f"schedule:{entry.name}:fire")
        self._changed(entry)
        return fire

    async def _watch(self, entry: Entry, fire: Fire) -> None:
        run = fire.run
        await run.done.wait()
        if run.status == "ok":
            self._outcome(entry, fire, "ok", run.result, None)
        elif run.status == "cancelled" and fire.killed:
            self._outcome(entry, fire, "failed:killed", None, f"killed by on_overlap: kill ({run.error})")
        else:
            self._outcome(entry, fire, "failed:crash", None, run.error or run.status)

    def _outcome(self, entry: Entry, fire: Fire, status: str, result: Any, error: str | None) -> None:
        rec: dict[str, Any] = {"fire_id": fire.id, "status": status, "at": self.kernel.clock.iso()}
        if status == "ok":
            rec = {"event": "fire_completed", **rec, "result": _excerpt(result)}
        else:
            rec = {"event": "fire_failed", **rec, "error": error}
        entry.journal.append(rec)
        if self.entries.get(entry.name) is not entry:  # removed while this fire ran: its journal is done
            entry.journal.close()
        entry.last_status = status
        fire.done.set()
        entry.inflight = [f for f in entry.inflight if not f.done.is_set()]
        self.kernel.bus.publish("schedule", {"name": entry.name, "fire_id": fire.id, "status": status})
        self._changed(entry)

    # --- live reload ---------------------------------------------------------------------------------------

    def on_config_changed(self, config: Any) -> None:
        """Swap the table (synchronous: called from the ``aegis_config_changed`` hook)."""
        self.refresh_workflows()
        specs = dict(config.get("schedules") or {})
        now = self.kernel.clock.now()
        for name in list(self.entries):
            if name not in specs:
                gone = self.entries.pop(name)
                if gone.scope is not None:
                    gone.scope.cancel()
                gone.journal.close()
                log.info("schedule %s: removed", name)
        for name, spec in specs.items():
            entry = self.entries.get(name)
            if entry is not None and entry.spec == spec:
                continue
            if entry is None:
                path = self.folder / f"{name}.jsonl"
                records = list(Journal(path, key="fire_id").replay().records) if path.exists() else []
                entry = self._entry(name, spec, records, now)
                entry.floor = now
                self.entries[name] = entry
                log.info("schedule %s: added", name)
            else:
                old = entry.spec
                entry.spec = spec
                self._build_trigger(entry)
                if (old.cron, old.timezone, old.every, old.fire_at, old.trigger) != \
                        (spec.cron, spec.timezone, spec.every, spec.fire_at, spec.trigger):
                    entry.anchor = now  # a new rhythm starts now; the history stays
                    entry.floor = now
                    entry.journal.append({"event": "created", "anchor": now, "at": iso_utc(now)})
                log.info("schedule %s: changed", name)
            if self._running and (entry.scope is None or entry.scope.cancel_called):
                self._launch(entry)
            entry.poke()
        self._changed(None)

    def set_enabled(self, name: str, enabled: bool) -> None:
        """In-memory only (the config edit that persists it reloads the table anyway)."""
        entry = self.get(name)
        if entry.spec.enabled != enabled:
            import attrs

            entry.spec = attrs.evolve(entry.spec, enabled=enabled)
            entry.floor = self.kernel.clock.now()
            entry.poke()

    # --- reading -------------------------------------------------------------------------------------------

    def get(self, name: str) -> Entry:
        entry = self.entries.get(name)
        if entry is None:
            known = ", ".join(sorted(self.entries)) or "none"
            raise ScheduleError(f"unknown schedule '{name}' (configured: {known})")
        return entry

    def info(self, entry: Entry) -> dict[str, Any]:
        spec = entry.spec
        trigger = entry.trigger.describe() if entry.trigger is not None else None
        source = self.kernel.config.overlays.get(f"schedules.{entry.name}")
        return {
            "name": entry.name, "workflow": spec.workflow, "args": spec.args or {}, "trigger": trigger,
            "kind": spec.kind, "enabled": spec.enabled, "lifecycle": spec.lifecycle, "on_overlap": spec.on_overlap,
            "catch_up": spec.catch_up, "next_fire": None if entry.next_due is None else iso_utc(entry.next_due),
            "next_fire_ts": entry.next_due, "fires": entry.fires, "manual_fires": entry.manual_fires,
            "in_flight": len([f for f in entry.inflight if not f.done.is_set()]),
            "last_status": entry.last_status,
            "last_fire": None if entry.last_fire_at is None else iso_utc(entry.last_fire_at),
            "problem": entry.problem, "file": str(source) if source else None,
            "added_by": spec.added_by, "description": spec.description}

    def table(self) -> list[dict[str, Any]]:
        return [self.info(e) for _, e in sorted(self.entries.items())]

    def logs(self, name: str, n: int = 50) -> list[dict[str, Any]]:
        entry = self.get(name)
        records = entry.journal.replay().records
        return [r for r in records if r.get("event") not in ("created", "archived")][-n:] if n > 0 else []

    # --- publishing ------------------------------------------------------------------------------------------

    def _changed(self, entry: Entry | None) -> None:
        if entry is not None:
            self.kernel.bus.publish("schedule", {"name": entry.name, "next_fire": entry.next_due,
                                                 "fires": entry.fires, "last_status": entry.last_status})
        self._dirty.set()

    async def _snapshots(self) -> None:
        """Rewrite ``schedules.snapshot.json`` after changes (coalesced, off the event loop)."""
        path = self.kernel.state.path(SNAPSHOT)
        while True:
            await self._dirty.wait()
            self._dirty = trio.Event()
            data = {"v": 1, "at": self.kernel.clock.iso(), "schedules": self.table()}
            try:
                await trio.to_thread.run_sync(write_json_atomic, path, data)
            except OSError as exc:  # a full disk costs this snapshot (the next change retries), never the serve
                log.warning("schedules: cannot write %s: %s", path.name, exc.strerror or exc)


def archive_plan(records: list[dict[str, Any]]) -> ArchivePlan | None:
    """The journal's archive plan: fires that ended (and skipped dues) beyond the newest :data:`KEEP`
    move once :data:`ARCHIVE_AT` have ended; the ``archived`` record keeps their triggered and manual
    fire counts and the last due instant among them."""
    def status(recs: list[dict[str, Any]]) -> dict[str, str]:
        out: dict[str, str] = {}
        for rec in recs:
            fire_id, kind = rec.get("fire_id"), rec.get("event")
            if not isinstance(fire_id, str):
                continue
            if kind == "fire_requested":
                out.setdefault(fire_id, "running")
            elif kind in ("fire_completed", "fire_failed"):
                out[fire_id] = str(rec.get("status"))
            elif kind == "fire_skipped":
                out[fire_id] = "skipped"
        return out

    plan = plan_archive(records, status, finished=ENDED, archive_at=ARCHIVE_AT, keep=KEEP, key="fire_id")
    if plan is None:
        return None
    requested = [r for r in plan.archived if r.get("event") == "fire_requested"]
    cursor = None
    for rec in plan.archived:
        if rec.get("event") == "fire_skipped" or (rec.get("event") == "fire_requested" and not rec.get("manual")):
            cursor = _max(cursor, rec.get("due_ts"))
    return ArchivePlan(plan.archived, plan.kept, {**plan.summary, "cursor": cursor,
                                                  "fires": sum(1 for r in requested if not r.get("manual")),
                                                  "manual_fires": sum(1 for r in requested if r.get("manual"))})


_DECLARED = re.compile(r"""@workflow\(\s*(?:name\s*=\s*)?["']([^"']+)["']""")


def _declared(folder: Path) -> set[str]:
    names: set[str] = set()
    try:
        files = sorted(folder.glob("*.py")) if folder.is_dir() else []
        for file in files:
            names.update(_DECLARED.findall(file.read_text("utf-8", errors="replace")))
    except OSError:
        pass
    return names


def _max(a: float | None, b: Any) -> float | None:
    if b is None:
        return a
    return float(b) if a is None else max(a, float(b))


def _last_before(entry: Entry, now: float) -> float | None:
    """The cursor just before the newest due instant ≤ ``now`` (so the next fire is that one)."""
    cursor = entry.cursor if entry.cursor is not None else entry.anchor
    prev = cursor
    due = entry.trigger.next_after(cursor, entry.anchor)
    steps = 0
    while due is not None and due <= now and steps < 100_000:
        prev, due = due, entry.trigger.next_after(due, entry.anchor)
        steps += 1
    return prev - 1e-6


def _excerpt(value: Any) -> Any:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= EXCERPT else text[:EXCERPT - 1] + "…"
