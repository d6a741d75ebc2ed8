"""The workflow runtime: starts, resumes, watches, answers and cancels runs (``kernel.service(WorkflowRuntime)``).

One :class:`WorkflowRuntime` per kernel, published by the workflow service. At start it replays every
run journal under ``.aegis/state/workflows/runs/``; runs without a ``finished`` record were in flight
when the previous owner stopped or died, and are resumed (once the kernel's own sessions are
restored, so a callback finds its caller): their function runs again and the journal answers every
step it recorded (see :mod:`aegis_workflow.engine`).

A run ends ``ok`` (the function's return value), ``error`` (an exception, a diverged replay) or
``cancelled`` (:meth:`WorkflowRuntime.cancel`). The ``finished`` record is written before the caller is
called back, once, with ``✉ from workflow:<name> · run#<id> · ok|error``. A kernel that stops while a
run is in flight writes nothing for it: the next owner resumes it.

Changes are published on the bus under ``workflow.run`` (status and step) and ``workflow.ask`` (a
question waiting for a person: ``run_id``, ``question``, ``options``).
"""

from __future__ import annotations

import inspect
import json
import logging
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from attrs import define, field

from aegis_kernel import DeliveryError, Envelope, SessionError, new_id

from .catalog import Catalog
from .errors import ReplayDiverged, WorkflowError
from .runlog import FOLDER, RunLog

if TYPE_CHECKING:
    from aegis_kernel import Kernel

log = logging.getLogger("aegis.workflow")

RECENT = 50  # finished runs kept (older journals move to runs/archive/ at start)


@define(eq=False)
class Run:
    id: str
    name: str
    kwargs: dict[str, Any]
    log: RunLog
    caller: str | None = None  # the handle called back
    callback: bool = False
    by: str = "user"
    started_at: float = 0.0  # epoch seconds
    status: str = "running"  # running | ok | error | cancelled
    step: str = ""
    steps: int = 0  # steps run for real (this process)
    replayed: int = 0  # steps answered by the journal (this process)
    result: Any = None
    error: str | None = None
    finished_at: float | None = None
    question: dict[str, Any] | None = None
    resumed: bool = False
    # runtime only
    scope: trio.CancelScope | None = None
    cancelled_by: str | None = None
    answer: list[str] = field(factory=list)
    answered: trio.Event = field(factory=trio.Event)
    done: trio.Event = field(factory=trio.Event)

    def info(self, now: float) -> dict[str, Any]:
        end = self.finished_at if self.finished_at is not None else now
        out: dict[str, Any] = {
            "run_id": self.id, "name": self.name, "status": self.status, "step": self.step,
            "elapsed_s": round(max(0.0, end - self.started_at), 1), "awaiting_human": self.question,
            "kwargs": self.kwargs, "caller": self.caller, "started_at": self.started_at}
        if self.resumed:
            out["resumed"] = True
        if self.status != "running":
            out["result"] = self.result
            if self.error:
                out["error"] = self.error
        return out


class WorkflowRuntime:
    def __init__(self, kernel: Kernel, nursery: trio.Nursery) -> None:
        self.kernel = kernel
        self.nursery = nursery
        self.catalog = Catalog(kernel)
        self.folder: Path = kernel.state.path(*FOLDER, "x").parent
        self.runs: dict[str, Run] = {}
        self.problems: list[str] = []
        self._inflight: list[Run] = []

    # --- start ---------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Load the catalog and replay every run journal (off the event loop)."""
        self.catalog.refresh()
        logs = await trio.to_thread.run_sync(self._replay_all)
        for runlog in sorted(logs, key=lambda rl: rl.run_id):
            started = runlog.started
            if started is None:
                self.problems.append(f"{runlog.run_id}: no 'started' record; ignored")
                continue
            self.problems.extend(runlog.problems)
            run = Run(id=runlog.run_id, name=str(started.get("name")), kwargs=dict(started.get("kwargs") or {}),
                      log=runlog, caller=started.get("caller"), callback=bool(started.get("callback")),
                      by=str(started.get("by") or "user"), started_at=float(started.get("started_at") or 0.0))
            fin = runlog.finished
            if fin is not None:
                run.status, run.result, run.error = fin.get("status", "error"), fin.get("result"), fin.get("error")
                run.finished_at = float(fin.get("finished_at") or run.started_at)
                run.done.set()
                runlog.close()
            else:
                run.resumed = True
                self._inflight.append(run)
            self.runs[run.id] = run

    def _replay_all(self) -> list[RunLog]:
        """Every run journal, replayed; the journals of finished runs beyond the newest :data:`RECENT`
        move to ``runs/archive/`` (whole, unchanged) so a start stays fast however many runs there were."""
        writer = self.kernel.state.writer
        logs = [RunLog.open(path, writer=writer) for path in sorted(self.folder.glob("*.jsonl"))]
        finished = [rl for rl in logs if rl.finished is not None]
        old = {rl.run_id for rl in finished[:-RECENT]}
        if old:
            archive = self.folder / "archive"
            archive.mkdir(mode=0o700, exist_ok=True)
            for rl in finished[:-RECENT]:
                try:
                    rl.journal.path.rename(archive / rl.journal.path.name)
                except OSError as exc:
                    log.warning("workflow run %s: could not archive its journal: %s", rl.run_id, exc)
        return [rl for rl in logs if rl.run_id not in old]

    async def resume_inflight(self) -> None:
        """Resume the runs the previous owner left in flight (after the kernel restored its sessions)."""
        await self.kernel.sessions.restored.wait()
        runs, self._inflight = self._inflight, []
        for run in runs:
            log.info("workflow run %s (%s): resuming after a restart", run.id, run.name)
            try:
                wf = self.catalog.get(run.name)
            except WorkflowError as exc:
                self._finish(run, "error", None, f"cannot resume: {exc}")
                continue
            self.nursery.start_soon(self._drive, run, wf.fn, name=f"workflow:{run.id}")

    # --- running -------------------------------------------------------------------------------------

    def start_run(self, name: str, kwargs: dict[str, Any] | None = None, *, caller: str | None = None,
                  callback: bool = True, by: str = "user") -> Run:
        """Start workflow ``name`` with ``kwargs`` (JSON values) → its :class:`Run` (running).

        Raises :class:`WorkflowError` for an unknown workflow or arguments its function does not take.
        ``caller`` (a handle) is called back at the end when ``callback``."""
        wf = self.catalog.get(name)
        kwargs = dict(kwargs or {})
        try:
            inspect.signature(wf.fn).bind(None, **kwargs)
        except TypeError as exc:
            raise WorkflowError(f"workflow '{name}' ({wf.source}): bad arguments: {exc}") from None
        try:
            json.dumps(kwargs)
        except (TypeError, ValueError) as exc:
            raise WorkflowError(f"workflow '{name}': arguments must be JSON values: {exc}") from None
        run_id = new_id()
        runlog = RunLog(self.folder / f"{run_id}.jsonl", writer=self.kernel.state.writer)
        run = Run(id=run_id, name=name, kwargs=kwargs, log=runlog, caller=caller, callback=bool(callback and caller),
                  by=by, started_at=self.kernel.clock.now())
        runlog.append({"event": "started", "name": name, "kwargs": kwargs, "caller": caller,
                       "callback": run.callback, "by": by, "started_at": run.started_at})
        self.runs[run_id] = run
        self._publish(run)
        self.nursery.start_soon(self._drive, run, wf.fn, name=f"workflow:{run_id}")
        return run

    async def _drive(self, run: Run, fn: Any) -> None:
        from .engine import Engine

        engine = Engine(self, run)
        outcome: tuple[str, Any, str | None] | None = None
        with trio.CancelScope() as scope:
            run.scope = scope
            try:
                value = await fn(engine, **run.kwargs)
                if engine.diverged is not None:
                    raise engine.diverged
                engine.check_complete()
                outcome = ("ok", value, None)
            except ReplayDiverged as exc:
                outcome = ("error", None, str(exc))
            except Exception as exc:  # noqa: BLE001 - the run's error, reported to its caller
                if engine.diverged is not None:
                    outcome = ("error", None, str(engine.diverged))
                else:
                    outcome = ("error", None, f"{type(exc).__name__}: {exc}")
                    log.info("workflow run %s (%s) failed: %s", run.id, run.name, outcome[2])
        if outcome is None:  # our own scope was cancelled (a kernel stop cancels from outside: never here)
            outcome = ("cancelled", None, f"cancelled by {run.cancelled_by or 'user'}")
        with trio.CancelScope(shield=True):
            await engine.close_spawned()
        self._finish(run, *outcome)

    def _finish(self, run: Run, status: str, value: Any, error: str | None) -> None:
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            value = str(value)
        run.status, run.result, run.error = status, value, error
        run.finished_at = self.kernel.clock.now()
        run.question = None
        envelope = None
        if run.callback and run.caller:
            envelope = Envelope.new(f"workflow:{run.name} · run#{run.id}", callback_body(run),
                                    status="ok" if status == "ok" else "error")
        try:
            run.log.append({"event": "finished", "status": status, "result": value, "error": error,
                            "finished_at": run.finished_at,
                            **({"callback_envelope": envelope.id} if envelope else {})})
        finally:
            run.log.close()
        if envelope is not None and run.caller:
            try:
                self.kernel.deliver(run.caller, envelope)
            except (DeliveryError, SessionError) as exc:
                log.warning("workflow run %s: could not call %s back: %s", run.id, run.caller, exc)
        run.done.set()
        self._publish(run)

    # --- watching and steering -------------------------------------------------------------------------

    def get(self, run_id: str) -> Run:
        run = self.runs.get(run_id)
        if run is None:
            raise WorkflowError(f"no workflow run '{run_id}'")
        return run

    def info(self, run: Run) -> dict[str, Any]:
        return run.info(self.kernel.clock.now())

    def cancel(self, run: Run, *, by: str = "user") -> bool:
        """Cancel a running run (its sessions are closed; the caller gets an error callback).
        False when it had already finished."""
        if run.status != "running" or run.scope is None:
            return False
        run.cancelled_by = by
        run.scope.cancel()
        return True

    async def ask(self, run: Run, question: str, options: list[str] | None, timeout: float) -> str | None:
        """Publish ``question`` and wait for :meth:`answer` (None after ``timeout`` seconds)."""
        run.question = {"question": question, "options": options}
        run.answer.clear()
        run.answered = trio.Event()
        self.kernel.bus.publish("workflow.ask", {"run_id": run.id, "name": run.name, **run.question})
        self._publish(run)
        try:
            with trio.move_on_after(timeout):
                await run.answered.wait()
        finally:
            run.question = None
        self._publish(run)
        return run.answer[0] if run.answer else None

    def answer(self, run: Run, text: str) -> str:
        """Answer ``run``'s open question; with options, ``text`` is one of them or its 1-based number."""
        if run.question is None:
            raise WorkflowError(f"workflow run {run.id} is not waiting for an answer")
        options = run.question.get("options")
        if options:
            if text.isdigit() and 1 <= int(text) <= len(options):
                text = options[int(text) - 1]
            elif text not in options:
                raise WorkflowError(f"answer one of: {', '.join(options)} (or its number)")
        run.answer[:] = [text]
        run.answered.set()
        return text

    def awaiting(self) -> list[Run]:
        return [r for r in self.runs.values() if r.question is not None]

    # --- engine notifications ----------------------------------------------------------------------------

    def on_step(self, run: Run, sid: str, verb: str, desc: str) -> None:
        run.step = f"{sid} {verb}" + (f" {desc}" if desc else "")
        self._publish(run)

    def on_step_done(self, run: Run) -> None:
        run.steps += 1

    def on_log(self, run: Run, message: str) -> None:
        log.info("workflow run %s (%s): %s", run.id, run.name, message)
        self.kernel.bus.publish("workflow.log", {"run_id": run.id, "name": run.name, "message": message})

    def _publish(self, run: Run) -> None:
        self.kernel.bus.publish("workflow.run", {"run_id": run.id, "name": run.name, "status": run.status,
                                                 "step": run.step, "awaiting_human": run.question})


def callback_body(run: Run) -> str:
    """What the caller receives at the end of a run."""
    if run.status == "ok":
        value = run.result
        return value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False)
    return run.error or run.status


async def wait(run: Run, timeout: float | None) -> bool:
    """Wait until ``run`` ends (True) or ``timeout`` seconds pass (False)."""
    with trio.move_on_after(math.inf if timeout is None else timeout):
        await run.done.wait()
    return run.done.is_set()
