"""The queue runtime: FIFO per queue, ≤ max_parallel workers alive, durable ledger, callbacks.

One :class:`QueueRuntime` per kernel is published by the queue service (``kernel.service(QueueRuntime)``); the queue *service*
creates it in its own nursery before any session starts. Dispatch is event driven, with no loop:
:meth:`QueueRuntime._pump` runs on enqueue and whenever a task's slot is released. Each dispatched
task runs in its own small task (:meth:`_run_task`): through the kernel's turn primitive
(:func:`aegis_kernel.open_transient_turn`) spawn a fresh worker whose opening turn is the payload
and await that turn's outcome (with the per-task timeout), write the terminal record, call the
producer back, close the worker (however the task ends, so no process is left), release the slot.

Durability: each transition is appended to ``.aegis/state/queues/<q>.jsonl`` *before* it is acted on
(``enqueued`` before the id is returned, ``dispatched`` before the spawn, the terminal record before
the callback). At start the ledger is replayed: pending tasks are re-queued in order and tasks that
were in flight are failed as ``interrupted`` with an error callback — or, when the task asked for it
(``resume``), its worker's agent can resume sessions and its session id was recorded, resumed once: a
new worker process reopens that agent session and is given the payload again, ahead of the queue.
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio
from attrs import define, field

from aegis_kernel import (
    TURN_AGENT_FAILED,
    TURN_CLOSED,
    TURN_START_FAILED,
    DeliveryError,
    Envelope,
    Journal,
    Ledger,
    OperationError,
    ReplayResult,
    SessionError,
    StateError,
    Turn,
    TurnOutcome,
    generate_handle,
    new_id,
    open_transient_turn,
    utc_now,
)

from . import worktree as wt
from .config import QueueSpec, check_queue_name
from .ledger import TERMINAL, archived_counts, fold, plan_archive, screen, transcript_path, worker_log_id

if TYPE_CHECKING:
    from aegis_kernel import Kernel

log = logging.getLogger("aegis.queue")

INTERRUPTED = "interrupted: aegis restarted while the task was in flight"
MAX_RESUMES = 1  # a task interrupted again after its resume fails as interrupted
RESUME_NOTE = ("[aegis restarted while you were working on this task; this is the same session, resumed. "
               "Finish the task and give your final answer.]\n\n")
# Every record is written (one O_APPEND write) before the transition is acted on, so a killed
# process loses nothing; "batch" bounds what a power loss can take to the last second without
# blocking the event loop on an fsync per transition (measured: an fsync per record cost more
# wall time than everything else the queue does per task).
LEDGER_FSYNC = "batch"
RECENT = 20


@define(eq=False)
class Outcome:
    status: str  # completed | failed | cancelled
    result: str = ""
    error: str | None = None
    usage: dict[str, int] | None = None
    cost_usd: float | None = None
    model: str | None = None
    provider: str | None = None


@define(eq=False)
class Task:
    id: str
    queue: str
    payload: str
    producer: str | None
    enqueued_by: str
    callback: bool
    enqueued_at: str
    status: str = "pending"  # pending | dispatched | completed | failed | cancelled
    base: str | None = None
    worktree: dict[str, Any] | None = None
    worker: str | None = None
    transcript: str | None = None  # the shared worker transcript, sessions/<transcript>.jsonl
    dispatched_at: str | None = None
    finished_at: str | None = None
    result: str | None = None
    error: str | None = None
    usage: dict[str, int] | None = None
    cost: dict[str, Any] | None = None
    callback_outcome: str | None = None
    resume: bool = False  # asked to be resumed (not failed) after a restart interrupts it
    resume_id: str | None = None  # the worker's agent session id, once known
    resumed: int = 0  # times resumed
    # runtime only
    resume_confirmed: bool = False  # a resumed worker's agent reported the resumed session
    started: float | None = None
    session: Any = None
    turn: Turn | None = None  # the worker's opening turn (the kernel's turn primitive), while it runs
    outcome: Outcome | None = None
    finished: trio.Event = field(factory=trio.Event)

    @property
    def worker_log(self) -> str | None:
        """The worker session's log id: its records' ``session`` in the shared transcript."""
        return worker_log_id(self.id, self.worker) if self.worker else None

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL

    def info(self, position: int | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "task_id": self.id, "queue": self.queue, "status": self.status, "enqueued_by": self.enqueued_by,
            "producer": self.producer, "callback": self.callback, "enqueued_at": self.enqueued_at,
            "payload": self.payload if len(self.payload) <= 500 else self.payload[:500] + "…",
        }
        if position is not None:
            out["position"] = position
        if self.resume:
            out["resume"] = True
            if self.resumed:
                out["resumed"] = self.resumed
        if self.worker:
            out["worker"] = self.worker
            out["dispatched_at"] = self.dispatched_at
            if self.transcript:
                out["transcript"] = transcript_path(self.transcript)
        if self.status == "dispatched" and self.started is not None:
            out["elapsed_s"] = round(time.monotonic() - self.started, 1)
        if self.terminal:
            out["finished_at"] = self.finished_at
            out["result"] = self.result
            if self.error:
                out["error"] = self.error
        for key in ("usage", "cost", "worktree", "callback_outcome"):
            value = getattr(self, key)
            if value:
                out[key] = value
        return out


@define(eq=False)
class QueueState:
    name: str
    spec: QueueSpec
    ledger: Journal  # queues/<q>.jsonl
    pending: deque[Task] = field(factory=deque)
    inflight: dict[str, Task] = field(factory=dict)
    counts: dict[str, int] = field(factory=lambda: {"completed": 0, "failed": 0, "cancelled": 0})
    recent: deque[Task] = field(factory=lambda: deque(maxlen=RECENT))
    last_worker: str | None = None
    problems: list[str] = field(factory=list)
    archived: int = 0  # archive files holding this queue's older finished tasks
    removed: bool = False  # removed from the config: finishes the tasks it admitted, accepts no more

    @property
    def open_count(self) -> int:
        """Admitted and not finished (a finished task may still be closing its worker)."""
        return len(self.pending) + sum(1 for t in self.inflight.values() if not t.terminal)

    def position(self, task: Task) -> int:
        """0 = dispatched; n = n-th in line."""
        if task.status != "pending":
            return 0
        for i, t in enumerate(self.pending, 1):
            if t is task:
                return i
        return 0


class _Taken:
    """Handles a new worker must not use: live sessions, in-flight workers, stale workers."""

    def __init__(self, runtime: QueueRuntime) -> None:
        self.runtime = runtime

    def __contains__(self, handle: object) -> bool:
        rt = self.runtime
        return handle in rt.kernel.sessions.sessions or handle in rt._by_handle


def callback_body(task: Task) -> str:
    """The text the producer receives for a finished task (rebuildable from the ledger)."""
    result = (task.result or "").strip()
    if task.status == "completed":
        body = result or "(the worker finished without a final message)"
    elif task.status == "cancelled":
        if task.worker is None:
            body = "cancelled (never dispatched)"
        elif result:
            body = f"cancelled — the worker's last message was:\n\n{result}"
        else:
            body = "cancelled (the worker had not said anything yet)"
    else:
        body = f"failed: {task.error or 'unknown error'}"
        if task.worker:
            body += f" (worker {task.worker})"
        if result:
            body += f"\n\nthe worker's last message was:\n\n{result}"
    note = worktree_note(task)
    return body + (f"\n\n{note}" if note else "")


def worker_transcript(queue: str, at: str) -> str:
    """The transcript a queue's workers share for a day (``at``: ISO UTC): ``queue-<q>-<YYYYMMDD>``;
    each record names its worker's handle."""
    return f"queue-{queue}-{at[:10].replace('-', '')}"


def worktree_note(task: Task) -> str:
    wt_info = task.worktree
    if not isinstance(wt_info, dict) or wt_info.get("state") != "kept":
        return ""
    return (f"[worktree kept: {wt_info.get('path')} on branch {wt_info.get('branch')}"
            f" — {wt_info.get('reason', 'has changes')}]")


class QueueRuntime:
    def __init__(self, kernel: Kernel, nursery: trio.Nursery) -> None:
        self.kernel = kernel
        self.nursery = nursery
        self.queues: dict[str, QueueState] = {}
        self.tasks: dict[str, Task] = {}
        self.invalid: dict[str, str] = {}
        self._by_handle: dict[str, Task] = {}
        self._dispatch_open = False  # opens once the kernel's session restore is settled
        self._listeners: list[Callable[[str, Task | None], None]] = []
        self._opening: dict[str, trio.Event] = {}  # queues added by a live edit, their ledgers being read
        self.version = 0

    def _budget(self) -> Any:
        """The running budget runtime (aegis-budget), None when it is not installed or not running."""
        try:
            from aegis_budget.runtime import BudgetRuntime
        except ImportError:
            return None
        return self.kernel.find_service(BudgetRuntime)

    # --- start ------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Open every configured queue, replay its ledger, re-queue and dispatch. Reading (and, when due,
        archiving) a ledger runs in a worker thread: a long ledger never stalls the event loop."""
        specs: dict[str, QueueSpec] = self.kernel.config.get("queues") or {}
        saved = {rec.get("handle") for rec in self.kernel.sessions.saved()}
        for name, spec in specs.items():
            await self._open(name, spec, saved)
        self.kernel.delivery.on_drop(self._callback_dropped)
        for qs in self.queues.values():
            self._pump(qs)

    async def _open(self, name: str, spec: QueueSpec, saved: set[Any]) -> QueueState | None:
        """Open one queue: check its name, replay its ledger (in a worker thread). None when invalid."""
        try:
            check_queue_name(name)
        except ValueError as exc:
            self.invalid[name] = str(exc)
            log.error("queue %s ignored: %s", name, exc)
            return None
        path = self.kernel.state.path("queues", f"{name}.jsonl")
        qs = QueueState(name=name, spec=spec,
                        ledger=Journal(path, fsync=LEDGER_FSYNC, writer=self.kernel.state.writer))
        try:
            replayed = await trio.to_thread.run_sync(self._archive, qs)
        except StateError as exc:  # e.g. a folder where the ledger should be: this queue only
            self.invalid[name] = f"its ledger cannot be read: {exc}"
            log.error("queue %s ignored: %s", name, self.invalid[name])
            return None
        self.queues[name] = qs
        self._replay(qs, path, replayed, saved)
        return qs

    async def _open_added(self, name: str, spec: QueueSpec) -> None:
        """A queue added by a live edit: open it (``enqueue`` waits for this), then take the spec the
        config has now (it may have changed again meanwhile)."""
        try:
            saved = {rec.get("handle") for rec in self.kernel.sessions.saved()}
            qs = await self._open(name, spec, saved)
            if qs is not None:
                current = (self.kernel.config.get("queues") or {}).get(name)
                qs.spec, qs.removed = current or qs.spec, current is None
                log.info("queue %s was added to the config: open", name)
                self._changed(name, None)
                self._pump(qs)
        finally:
            self._opening.pop(name).set()

    async def open_dispatch(self) -> None:
        """Service task: open dispatch once the kernel's session restore is settled, so workers never
        take a handle a restored session needs and callbacks find their restored producers."""
        await self.kernel.sessions.restored.wait()
        self._dispatch_open = True
        for qs in self.queues.values():
            self._pump(qs)

    @staticmethod
    def _archive(qs: QueueState) -> ReplayResult:
        """Move the older finished tasks to ``queues/archive/`` (the kernel journal's archive, with the
        queue's :func:`~.ledger.plan_archive`); returns the ledger's records as they now stand. Runs in
        a worker thread (file work only: no kernel state is touched)."""
        return qs.ledger.archive(plan_archive, at=utc_now())

    def _replay(self, qs: QueueState, path: Path, result: ReplayResult, saved: set[Any]) -> None:
        result = screen(result)  # a record of the wrong shape is skipped and reported, never half-applied
        qs.problems = [str(p) for p in result.problems]
        for status, n in archived_counts(result.records).items():
            qs.counts[status] = qs.counts.get(status, 0) + n
        qs.archived = sum(1 for r in result.records if r.get("event") == "archived")
        for problem in result.problems:
            log.warning("queue %s ledger %s: skipped %s", qs.name, path, problem)
        folded = fold(result.records)
        last = result.records[-1] if result.records else None
        interrupted: list[Task] = []
        for rec in folded.values():
            task = Task(id=rec["task_id"], queue=qs.name, payload=rec.get("payload") or "",
                        producer=rec.get("producer"), enqueued_by=rec.get("enqueued_by") or "user",
                        callback=bool(rec.get("callback")), enqueued_at=rec.get("enqueued_at") or "",
                        status=rec["status"], base=rec.get("base"),
                        worktree=rec.get("worktree") if isinstance(rec.get("worktree"), dict) else None,
                        worker=rec.get("worker"), transcript=rec.get("transcript"),
                        dispatched_at=rec.get("dispatched_at"),
                        finished_at=rec.get("finished_at"), result=rec.get("result"), error=rec.get("error"),
                        usage=rec.get("usage"), cost=rec.get("cost"), callback_outcome=rec.get("callback_outcome"),
                        resume=bool(rec.get("resume")), resume_id=rec.get("resume_id"),
                        resumed=int(rec.get("resumed") or 0))
            if isinstance(rec.get("worktree"), bool):
                task.worktree = {"requested": True} if rec["worktree"] else None
            self.tasks[task.id] = task
            if task.status == "pending":
                qs.pending.append(task)
            elif task.status == "dispatched":
                interrupted.append(task)
            else:
                task.finished.set()
                qs.counts[task.status] = qs.counts.get(task.status, 0) + 1
                qs.recent.append(task)
        # a crash between a terminal record and its callback can only hit the ledger's last record
        if last is not None and last.get("event") in TERMINAL and last.get("callback_envelope"):
            task = self.tasks.get(last.get("task_id", ""))
            if task is not None and task.producer and self._envelope_lost(task.producer, last["callback_envelope"]):
                env = self._callback_envelope(qs, task, envelope_id=last["callback_envelope"])
                self._send_callback(qs, task, env, saved=saved)
        resumable = [t for t in interrupted if self._can_resume(qs, t)]
        for task in reversed(resumable):  # ahead of the pending ones, in their dispatch order
            task.status, task.resumed, task.worker = "pending", task.resumed + 1, None
            qs.ledger.append({"event": "resumed", "task_id": task.id, "at": utc_now(),
                              "resume_id": task.resume_id})
            qs.pending.appendleft(task)
        for task in interrupted:
            if task in resumable:
                continue
            note = ""
            if task.worktree and task.worktree.get("path"):
                task.worktree = {**task.worktree, "state": "kept", "reason": "the task was interrupted"}
                note = task.worktree["path"]
            task.outcome = Outcome("failed", error=INTERRUPTED + (f"; its worktree is kept at {note}" if note else ""))
            self._finish(qs, task, saved=saved)

    def _can_resume(self, qs: QueueState, task: Task) -> bool:
        """An interrupted task that asked to resume, whose worker reported its agent session id, whose
        agent can resume sessions, and that has no worktree (a worktree is kept and reported instead)."""
        if not (task.resume and task.resume_id and task.resumed < MAX_RESUMES and not task.worktree):
            return False
        try:
            _, profile = self.kernel.sessions.profile(qs.spec.agent)
        except SessionError:
            return False
        driver = self.kernel.plugins.registry.objects("drivers").get(profile.provider)
        return bool(getattr(driver, "supports_resume", False))

    def _envelope_lost(self, handle: str, envelope_id: str) -> bool:
        """The callback never reached ``handle``'s inbox ledger. A producer without one is a transient
        session (a worker: see aegis_kernel.delivery) that no restart brings back: nothing to resend."""
        path = self.kernel.delivery.inbox_dir / f"{handle}.jsonl"
        if not path.exists():
            return False
        for rec in Ledger.records(path):
            env = rec.get("envelope")
            if isinstance(env, dict) and env.get("id") == envelope_id:
                return False
        return True

    # --- queries ------------------------------------------------------------------------------------

    def queue(self, name: str, param: str = "queue") -> QueueState:
        qs = self.queues.get(name)
        if qs is None:
            if name in self.invalid:
                raise OperationError(f"queue '{name}' is misconfigured: {self.invalid[name]}", code="bad_config",
                                     param=param)
            known = ", ".join(sorted(self.queues)) or "none configured (add one under 'queues:' in .aegis.yaml)"
            raise OperationError(f"unknown queue '{name}' (queues: {known})", code="unknown_queue", param=param)
        return qs

    def task(self, task_id: str, param: str = "task_id") -> Task:
        task = self.tasks.get(task_id)
        if task is None:
            archive = (" or, if it finished long ago, .aegis/state/queues/archive/"
                       if any(qs.archived for qs in self.queues.values()) else "")
            raise OperationError(f"unknown task '{task_id}' (see aegis_queue_status for a queue's tasks{archive})",
                                 code="unknown_task", param=param)
        return task

    def task_info(self, task: Task) -> dict[str, Any]:
        qs = self.queues.get(task.queue)
        return task.info(position=qs.position(task) if qs is not None and task.status == "pending" else None)

    def queue_info(self, name: str, *, detail: bool = False) -> dict[str, Any]:
        qs = self.queue(name)
        out: dict[str, Any] = {
            "queue": name, "agent": qs.spec.agent, "max_parallel": qs.spec.max_parallel,
            "pending": len(qs.pending), "in_flight": len(qs.inflight), **qs.counts,
            "last_worker": qs.last_worker, "worktree": qs.spec.worktree,
            "timeout_s": qs.spec.timeout_s, "budgets": len(qs.spec.budgets),
        }
        if qs.removed:
            out["removed"] = True
        if detail:
            now = time.monotonic()
            out["in_flight_tasks"] = [
                {"task_id": t.id, "worker": t.worker, "elapsed_s": round(now - (t.started or now), 1),
                 "payload": _preview(t.payload)} for t in qs.inflight.values()]
            out["pending_tasks"] = [{"task_id": t.id, "position": i, "payload": _preview(t.payload)}
                                    for i, t in enumerate(qs.pending, 1)]
            out["recent"] = [{"task_id": t.id, "status": t.status, "worker": t.worker, "finished_at": t.finished_at,
                              "result": _preview(t.result or t.error or "", 200)}
                             for t in reversed(qs.recent)]
            if qs.problems:
                out["ledger_problems"] = qs.problems
        return out

    def open_count(self, name: str) -> int:
        qs = self.queues.get(name)
        return qs.open_count if qs is not None else 0

    def subscribe(self, listener: Callable[[str, Task | None], None]) -> Callable[[], None]:
        """``listener(queue, task)`` after every change (sync; must not raise or block)."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _changed(self, queue: str, task: Task | None) -> None:
        self.version += 1
        for listener in list(self._listeners):
            try:
                listener(queue, task)
            except Exception:  # noqa: BLE001 - a broken panel must not break the queue
                log.exception("queue listener failed")

    def on_config_changed(self, config: Any) -> None:
        """A live config edit: each open queue takes its new spec (``max_parallel``, and the agent,
        timeout, worktree and budgets of tasks dispatched from now on); tasks in flight keep theirs.
        A queue added by the edit opens at once (its ledger is read in the background; ``enqueue``
        waits for it); a removed queue finishes the tasks it admitted and accepts no more (added back,
        it accepts again)."""
        specs = config.get("queues") or {}
        for name, qs in self.queues.items():
            spec = specs.get(name)
            if spec is None:
                if not qs.removed:
                    qs.removed = True
                    log.info("queue %s was removed from the config: it finishes its %d open task(s) and "
                             "accepts no more", name, qs.open_count)
                    self._changed(name, None)
            elif spec != qs.spec or qs.removed:
                qs.spec, qs.removed = spec, False
                self._changed(name, None)
                self._pump(qs)
        for name in [n for n in self.invalid if n not in specs]:
            del self.invalid[name]
        for name in sorted(set(specs) - set(self.queues) - set(self.invalid) - set(self._opening)):
            self._opening[name] = trio.Event()
            self.nursery.start_soon(self._open_added, name, specs[name])

    # --- enqueue / cancel / wait --------------------------------------------------------------------

    async def enqueue(self, queue: str, payload: str, *, producer: str | None, enqueued_by: str,
                      callback: bool = True, resume: bool = False) -> Task:
        opening = self._opening.get(queue)
        if opening is not None:  # added by a live edit a moment ago: its ledger is being read
            await opening.wait()
        qs = self.queue(queue)
        if qs.removed:
            raise OperationError(f"queue '{queue}' was removed from the config: it finishes the tasks it admitted "
                                 "and accepts no more", code="queue_removed", param="queue")
        try:
            _, profile = self.kernel.sessions.profile(qs.spec.agent)
        except SessionError as exc:
            raise OperationError(f"queue '{queue}' cannot run: {exc}", code="bad_config", param="queue") from None
        use_worktree = qs.spec.worktree or bool(getattr(profile, "worktree", False))
        base = None
        if use_worktree:
            try:
                base = await wt.resolve_base(self.kernel.project_dir, qs.spec.base)
            except wt.WorktreeError as exc:
                raise OperationError(f"queue '{queue}' uses worktrees but {exc}", code="bad_config",
                                     param="queue") from None
        # no checkpoint from here to the ledger write: the budget check and the admission are atomic
        if qs.spec.budgets:
            budget = self._budget()
            if budget is None:
                raise OperationError(
                    f"queue '{queue}' has budgets but the aegis-budget plugin is not installed or enabled; "
                    "refusing rather than spending without a ceiling", code="budget_unavailable", param="queue")
            budget.admit(queue, qs.spec.budgets, open_tasks=qs.open_count)
        task = Task(id=new_id(), queue=queue, payload=payload, producer=producer,
                    enqueued_by=enqueued_by, callback=bool(callback and producer), enqueued_at=utc_now(),
                    base=base, worktree={"requested": True} if use_worktree else None, resume=bool(resume))
        record: dict[str, Any] = {"event": "enqueued", "task_id": task.id, "at": task.enqueued_at, "queue": queue,
                                  "payload": payload, "producer": producer, "enqueued_by": enqueued_by,
                                  "callback": task.callback}
        if use_worktree:
            record["worktree"] = True
            record["base"] = base
        if task.resume:
            record["resume"] = True
        qs.ledger.append(record)
        self.tasks[task.id] = task
        qs.pending.append(task)
        self._pump(qs)
        self._changed(queue, task)
        return task

    async def cancel(self, task: Task, *, by: str) -> dict[str, Any]:
        qs = self.queue(task.queue)
        was = task.status
        if task.terminal:
            raise OperationError(
                f"task '{task.id}' already finished ({task.status}); nothing to cancel", code="already_finished",
                param="task_id", status=task.status)
        if task.status == "pending":
            qs.pending.remove(task)
            task.outcome = Outcome("cancelled", error=f"cancelled by {by}")
            self._finish(qs, task)
        else:
            if task.outcome is None:
                result = task.session.final_text if task.session is not None else ""
                task.outcome = Outcome("cancelled", result=result or "", error=f"cancelled by {by}")
            if task.turn is not None:
                task.turn.cancel(f"cancelled by {by}")  # its runner stops waiting, finishes it, closes the worker
            await task.finished.wait()
        return {"task_id": task.id, "status": task.status, "was": was}

    async def wait(self, task: Task, timeout: float | None) -> bool:
        with trio.move_on_after(math.inf if timeout is None else timeout):
            await task.finished.wait()
        return task.finished.is_set()

    def want_callback(self, task: Task, producer: str | None) -> None:
        """A delegate that stopped waiting: deliver the result as a callback when it comes."""
        if task.terminal or producer is None or task.callback:
            return
        qs = self.queues[task.queue]
        task.callback, task.producer = True, producer
        qs.ledger.append({"event": "callback_on", "task_id": task.id, "at": utc_now(), "producer": producer})

    # --- dispatch ---------------------------------------------------------------------------------

    def _pump(self, qs: QueueState) -> None:
        if not self._dispatch_open:
            if not self.kernel.sessions.restored.is_set():
                return  # open_dispatch pumps every queue once the restore is settled
            self._dispatch_open = True
        while qs.pending and len(qs.inflight) < qs.spec.max_parallel:
            self._dispatch(qs, qs.pending.popleft())

    def _dispatch(self, qs: QueueState, task: Task) -> None:
        handle = generate_handle(_Taken(self))
        now = utc_now()
        record: dict[str, Any] = {"event": "dispatched", "task_id": task.id, "at": now, "worker": handle,
                                  "transcript": worker_transcript(qs.name, now)}
        if task.worktree is not None:
            path, branch = wt.location(self.kernel.project_dir, qs.name, task.id)
            task.worktree = {"path": str(path), "branch": branch, "base": task.base}
            record["worktree"] = task.worktree
        qs.ledger.append(record)
        task.status, task.worker, task.dispatched_at = "dispatched", handle, record["at"]
        task.transcript = record["transcript"]
        task.started = time.monotonic()
        qs.inflight[task.id] = task
        qs.last_worker = handle
        self._by_handle[handle] = task
        self.nursery.start_soon(self._run_task, qs, task, name=f"queue:{qs.name}:{task.id}")
        self._changed(qs.name, task)

    async def _run_task(self, qs: QueueState, task: Task) -> None:
        try:
            async with AsyncExitStack() as worker:  # leaving it closes the worker (its process is gone)
                turn = await self._start_worker(qs, task, worker)
                if turn is not None and task.outcome is None:
                    outcome = await turn.wait(qs.spec.timeout_s)
                    if task.outcome is None:  # not cancelled meanwhile
                        task.outcome = self._outcome(qs, task, outcome)
                made = bool(task.worktree and task.worktree.get("created"))
                if made:  # before the terminal record, so a kept worktree is reported in the result
                    await self._inspect_worktree(qs, task)
                self._finish(qs, task)
                if turn is not None:
                    turn.close_reason = f"queue {qs.name}: task {task.id} {task.status}"
            if made and task.worktree is not None and task.worktree.get("state") == "clean":
                await self._remove_worktree(qs, task)
        except BaseException:
            self._release(qs, task)
            raise
        self._release(qs, task)
        self._pump(qs)

    async def _start_worker(self, qs: QueueState, task: Task, worker: AsyncExitStack) -> Turn | None:
        """Spawn the worker (in its worktree, if any) with the payload as its opening turn, through the
        kernel's turn primitive entered on ``worker`` (which closes it); None (and a failed outcome) when
        it cannot start."""
        cwd: Path | None = None
        try:
            if task.worktree is not None:
                path, branch = Path(task.worktree["path"]), task.worktree["branch"]
                await wt.create(self.kernel.project_dir, path, branch, task.base or "HEAD")
                task.worktree["created"] = True
                cwd = path
            if task.outcome is not None:  # cancelled while the worktree was being made
                return None
            # workers are transient: never restored by a restart (an interrupted task fails, or resumes)
            resume_id = task.resume_id if task.resumed else None
            prompt = RESUME_NOTE + task.payload if resume_id else task.payload
            turn = await worker.enter_async_context(open_transient_turn(
                self.kernel, qs.spec.agent, prompt, handle=task.worker, sender=f"queue:{qs.name}", cwd=cwd,
                transcript=task.transcript, log_id=task.worker_log, resume_id=resume_id))
        except Exception as exc:  # noqa: BLE001 - any start failure fails this task, never the queue service
            if not isinstance(exc, (SessionError, ValueError, OSError, wt.WorktreeError)):
                log.exception("queue %s: starting the worker of task %s failed", qs.name, task.id)
            if task.outcome is None:
                task.outcome = Outcome("failed", error=self._start_error(
                    task, f"cannot start a worker of agent '{qs.spec.agent}': {exc}"))
            return None
        task.session, task.turn = turn.session, turn
        if task.resume:
            self._watch_agent_session(qs, task, turn.session)
        return turn

    def _outcome(self, qs: QueueState, task: Task, out: TurnOutcome) -> Outcome:
        """The task's outcome from its worker's turn (the words producers and ``aegis queue`` show)."""
        if out.status == "timed_out":
            timeout = qs.spec.timeout_s
            return Outcome("failed", result=out.text,
                           error=f"timeout: the worker did not finish within {_fmt_s(timeout)} (per-task timeout of "
                                 f"queue '{qs.name}')")
        if out.stop_reason == TURN_START_FAILED:
            return Outcome("failed", error=self._start_error(task, out.detail or "the worker failed to start"))
        if out.stop_reason == TURN_AGENT_FAILED:
            return Outcome("failed", result=out.text,
                           error=self._start_error(task, f"the worker failed: {out.detail or 'unknown error'}"))
        if out.stop_reason == TURN_CLOSED:
            return Outcome("failed", result=out.text, error=f"the worker was closed before it answered ({out.detail})")
        usage = out.usage
        common: dict[str, Any] = {
            "usage": None if usage is None else {"input": usage.input, "output": usage.output,
                                                 "cache_read": usage.cache_read, "cache_creation": usage.cache_creation},
            "cost_usd": out.cost_usd, "model": out.model, "provider": out.provider}
        if out.status == "ok":
            return Outcome("completed", result=out.text, **common)
        error = out.detail or ("the worker's turn was interrupted" if out.stop_reason == "cancelled"
                               else f"the worker's turn ended with {out.stop_reason}")
        return Outcome("failed", result=out.text, error=self._start_error(task, error), **common)

    @staticmethod
    def _start_error(task: Task, error: str) -> str:
        """A resumed task whose agent never reported the resumed session fails as interrupted, saying
        why (an ACP agent refuses session/load; ``claude --resume`` starts, then ends its first turn
        with "No conversation found")."""
        if task.resumed and not task.resume_confirmed:
            return f"{INTERRUPTED}; resuming it in agent session {task.resume_id} failed: {error}"
        return error

    def _watch_agent_session(self, qs: QueueState, task: Task, session: Any) -> None:
        """A first run: write the worker's agent session id to the ledger as soon as the agent reports
        it, so a restart can resume the task there. A resumed run: note that the agent reopened it."""
        from aegis_kernel import SystemInit

        def on_event(session: Any, event: Any) -> None:
            if not isinstance(event, SystemInit) or not event.session_id:
                return
            if task.resumed:
                task.resume_confirmed = event.session_id == task.resume_id
            elif event.session_id != task.resume_id:
                task.resume_id = event.session_id
                qs.ledger.append({"event": "worker_session", "task_id": task.id, "at": utc_now(),
                                  "resume_id": event.session_id})
            unsubscribe()

        unsubscribe = session.subscribe(on_event)

    def _release(self, qs: QueueState, task: Task) -> None:
        qs.inflight.pop(task.id, None)
        if task.worker and self._by_handle.get(task.worker) is task:
            del self._by_handle[task.worker]
        task.session = task.turn = None
        self._changed(qs.name, task)

    # --- finishing ----------------------------------------------------------------------------------

    def _finish(self, qs: QueueState, task: Task, *, saved: set[Any] | None = None) -> None:
        """Terminal record → spend → callback. Synchronous: nothing can interleave."""
        out = task.outcome
        assert out is not None
        if task.terminal:
            return
        now = utc_now()
        task.status, task.finished_at = out.status, now
        task.result = out.result if out.result else None
        task.error = out.error
        task.usage = out.usage
        record: dict[str, Any] = {"event": out.status, "task_id": task.id, "at": now}
        if task.result is not None or out.status == "completed":
            record["result"] = task.result or ""
        if task.error:
            record["error"] = task.error
        if out.usage is not None:
            record["usage"] = out.usage
            budget = self._budget()
            cost: dict[str, Any] | None = None
            if budget is not None:
                try:
                    cost = budget.record(qs.name, task.id, usage=out.usage, cost_usd=out.cost_usd,
                                         provider=out.provider, model=out.model)
                except Exception:  # noqa: BLE001 - spend accounting must not lose the task
                    log.exception("budget record failed for %s", task.id)
            elif out.cost_usd is not None:
                cost = {"usd": f"{out.cost_usd:.6f}", "source": "driver"}
            if cost:
                task.cost = cost
                record["cost"] = cost
        if task.worktree and task.worktree.get("state") == "kept":
            record["worktree"] = task.worktree
        envelope = None
        if task.callback and task.producer:
            envelope = self._callback_envelope(qs, task)
            record["callback_envelope"] = envelope.id
        qs.ledger.append(record)
        qs.counts[task.status] = qs.counts.get(task.status, 0) + 1
        qs.recent.append(task)
        task.finished.set()
        if envelope is not None:
            self._send_callback(qs, task, envelope, saved=saved)
        self._changed(qs.name, task)

    def _callback_envelope(self, qs: QueueState, task: Task, envelope_id: str | None = None) -> Envelope:
        env = Envelope.new(f"queue:{qs.name}", callback_body(task), task_id=task.id,
                           status="ok" if task.status == "completed" else "error")
        return attrs.evolve(env, id=envelope_id) if envelope_id else env

    def _send_callback(self, qs: QueueState, task: Task, envelope: Envelope, *, saved: set[Any] | None) -> None:
        producer = task.producer
        assert producer is not None
        session = self.kernel.sessions.get(producer)
        receipt = None
        if session is not None and session.state != "closed":
            try:  # a producer that failed holds it for its resume (its close drops it: _callback_dropped)
                receipt = self.kernel.delivery.deliver(session, envelope, hold_if_failed=True)
            except (DeliveryError, SessionError) as exc:
                log.info("callback for %s to %s not delivered live: %s", task.id, producer, exc)
        if receipt is not None and receipt.state != "held":
            task.callback_outcome = "delivered"
            return
        if saved is None:
            saved = {rec.get("handle") for rec in self.kernel.sessions.saved()}
        if receipt is not None:
            outcome = "held"
        elif producer in saved:
            # the producer was live at the last stop and is about to be restored: its restore
            # re-delivers every envelope its inbox ledger holds as undelivered
            self.kernel.delivery.hold(producer, envelope)
            outcome = "held"
        else:
            outcome = "undeliverable"
            log.warning("queue %s: producer %s of task %s is gone; the callback is kept in the ledger only",
                        qs.name, producer, task.id)
        task.callback_outcome = outcome
        qs.ledger.append({"event": "callback", "task_id": task.id, "at": utc_now(), "envelope_id": envelope.id,
                          "producer": producer, "outcome": outcome})

    def _callback_dropped(self, handle: str, envelope: Envelope) -> None:
        """A callback held for its producer will never arrive (the producer was closed): say so."""
        qs = self.queues.get(envelope.sender.removeprefix("queue:")) if envelope.sender.startswith("queue:") else None
        task = self.tasks.get(envelope.task_id or "")
        if qs is None or task is None:
            return
        task.callback_outcome = "dropped"
        qs.ledger.append({"event": "callback", "task_id": task.id, "at": utc_now(), "envelope_id": envelope.id,
                          "producer": handle, "outcome": "dropped",
                          "reason": f"{handle} was closed before it got the callback"})
        self._changed(qs.name, task)

    async def _inspect_worktree(self, qs: QueueState, task: Task) -> None:
        info = task.worktree or {}
        path, base = Path(info["path"]), info.get("base") or "HEAD"
        try:
            ahead, dirty = await wt.inspect(path, base)
        except (wt.WorktreeError, ValueError, OSError) as exc:
            self._keep_worktree(qs, task, f"could not inspect it: {exc}")
            return
        if not ahead and not dirty:
            info["state"] = "clean"
            return
        reasons = []
        if ahead:
            reasons.append(f"{ahead} commit{'s' if ahead != 1 else ''} not in base {base[:12]}")
        if dirty:
            reasons.append("uncommitted changes")
        self._keep_worktree(qs, task, " and ".join(reasons))

    def _keep_worktree(self, qs: QueueState, task: Task, reason: str) -> None:
        info = task.worktree or {}
        info.update(state="kept", reason=reason)
        qs.ledger.append({"event": "worktree_kept", "task_id": task.id, "at": utc_now(), "path": info.get("path"),
                          "branch": info.get("branch"), "reason": reason})

    async def _remove_worktree(self, qs: QueueState, task: Task) -> None:
        info = task.worktree or {}
        path = Path(info["path"])
        try:
            ahead, dirty = await wt.inspect(path, info.get("base") or "HEAD")  # again, now the worker is gone
            if ahead or dirty:
                self._keep_worktree(qs, task, "it changed after the task ended")
                return
            await wt.remove(self.kernel.project_dir, path, info["branch"])
        except (wt.WorktreeError, OSError) as exc:
            self._keep_worktree(qs, task, f"could not remove it: {exc}")
            return
        info["state"] = "removed"
        qs.ledger.append({"event": "worktree_removed", "task_id": task.id, "at": utc_now(), "path": str(path)})


def _preview(text: str, n: int = 80) -> str:
    line = " ".join(text.split())
    return line if len(line) <= n else line[: n - 1] + "…"


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "∞"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
