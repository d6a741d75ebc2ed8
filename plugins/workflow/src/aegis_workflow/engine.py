"""The engine a workflow function drives: every verb is a durable step.

A step has an id given by the order the workflow calls the engine (``0``, ``1``, …; inside
:meth:`Engine.parallel` step ``4``'s branch 1 numbers its own steps ``4.1.0``, ``4.1.1``, …). Before
a step's outcome is returned to the workflow it is appended to the run's journal
(:mod:`aegis_workflow.runlog`) with the verb and a key of its arguments. When a run is resumed
after a crash its function runs again from the top and every step found in the journal returns its
recorded result (or raises its recorded error) **without running again**; the first step not in the
journal runs for real (the step that was in flight at the crash runs a second time: at-least-once
for that one step). A step whose verb or arguments differ from the journal's fails the run with
:class:`~aegis_workflow.errors.ReplayDiverged` naming the step.

Sessions the run spawned are transient (never restored by the kernel): the run owns them. On
resume, replaying a ``spawn`` whose session the journal does not record as closed reopens it under
the same handle with its agent's recorded driver session id (the agent's conversation continues);
when the run ends they are closed unless spawned with ``keep=True``.

Workflows must be deterministic between engine calls: branch only on values the engine returned
(or on the run's arguments), never on the clock, randomness or files read directly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import signal
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio

from aegis_kernel import Caller, OperationError, SessionError, generate_handle, redact_secrets, run_turn

from .errors import HumanTimeout, PredicateFailed, ReplayDiverged, StepFailed, WorkflowError, error_from_record, \
    error_record

if TYPE_CHECKING:
    from .runtime import Run, WorkflowRuntime

OUTPUT_CAP = 64 * 1024  # bytes of stdout/stderr a bash step keeps (the tail)
START_TIMEOUT = 120.0  # seconds an agent may take to get ready


class _Scope:
    """Step numbering of one sequence of calls (the run's body, or one branch of a parallel step)."""

    def __init__(self, engine: Engine, prefix: str) -> None:
        self.engine = engine
        self.prefix = prefix
        self.n = 0


_SCOPE: ContextVar[_Scope | None] = ContextVar("aegis_workflow_scope", default=None)


def _key(raw: str) -> str:
    return raw if len(raw) <= 120 else "sha256:" + hashlib.sha256(raw.encode()).hexdigest()[:24]


def _desc(raw: str) -> str:
    text = redact_secrets(" ".join(raw.split()))
    return text if len(text) <= 80 else text[:79] + "…"


class Engine:
    """What ``async def fn(engine, **kwargs)`` gets. One engine per run (and per resume of it)."""

    def __init__(self, runtime: WorkflowRuntime, run: Run) -> None:
        self.runtime = runtime
        self.kernel = runtime.kernel
        self.run = run
        self.journal = run.log
        # what the agents it talks to see as the envelope's sender: the schedule that fired the run
        # (``✉ from schedule:<name>``), else the workflow itself
        self.sender = run.by if run.by.startswith("schedule:") else f"workflow:{run.name}"
        self._root = _Scope(self, "")
        self._last_agent: str | None = None
        self._spawned: dict[str, bool] = {}  # handle → keep
        self._checkpoints: dict[str, Any] = {}
        self._consumed: set[str] = set()
        self.diverged: ReplayDiverged | None = None

    @property
    def run_id(self) -> str:
        return self.run.id

    # --- the step machinery ----------------------------------------------------------------------------

    def _next_id(self) -> str:
        scope = _SCOPE.get()
        if scope is None or scope.engine is not self:
            scope = self._root
        sid = f"{scope.prefix}{scope.n}"
        scope.n += 1
        return sid

    def _match(self, sid: str, verb: str, key: str, desc: str, rec: dict[str, Any]) -> None:
        if rec.get("verb") == verb and rec.get("key") == key:
            return
        self.diverged = ReplayDiverged(
            f"replay diverged at step {sid}: the journal recorded {rec.get('verb')}({rec.get('desc', '')!r}) "
            f"but the workflow now calls {verb}({desc!r}) — its code or inputs changed since the run started; "
            "the run cannot resume")
        raise self.diverged

    async def _step(self, verb: str, key: str, desc: str, act: Callable[[dict[str, Any] | None], Awaitable[Any]],
                    *, begin: Callable[[], dict[str, Any]] | None = None) -> tuple[Any, bool]:
        """Run (or replay) one step: ``(result, replayed)``. ``begin()`` gives the fields of a ``begin``
        record journaled before ``act`` runs (a durable wait's deadline or question); ``act`` gets that
        record (the journal's own after a restart)."""
        await trio.lowlevel.checkpoint()  # every step is a cancellation point and lets other tasks run
        if self.diverged is not None:
            raise self.diverged
        sid = self._next_id()
        key, desc = _key(key), _desc(desc)
        rec = self.journal.steps.get(sid)
        if rec is not None:
            self._match(sid, verb, key, desc, rec)
            self._consumed.add(sid)
            self.run.replayed += 1
            if "error" in rec:
                raise error_from_record(rec["error"])
            return rec.get("result"), True
        begun = self.journal.begun.get(sid)
        if begun is not None:
            self._match(sid, verb, key, desc, begun)
        elif begin is not None:
            begun = self.journal.append({"event": "begin", "step": sid, "verb": verb, "key": key, "desc": desc,
                                         **begin()})
        self.runtime.on_step(self.run, sid, verb, desc)
        try:
            result = await act(begun)
        except WorkflowError as exc:
            self.journal.append({"event": "step", "step": sid, "verb": verb, "key": key, "desc": desc,
                                 "error": error_record(exc)})
            raise
        except Exception as exc:  # noqa: BLE001 - journaled and raised as StepFailed (a replay raises the same)
            failed = StepFailed(f"{verb}: {type(exc).__name__}: {exc}")
            self.journal.append({"event": "step", "step": sid, "verb": verb, "key": key, "desc": desc,
                                 "error": error_record(failed)})
            raise failed from exc
        self.journal.append({"event": "step", "step": sid, "verb": verb, "key": key, "desc": desc, "result": result})
        self.runtime.on_step_done(self.run)
        return result, False

    def check_complete(self) -> None:
        """At a successful end: a top-level step the journal holds that this replay never reached means
        the code changed (raises :class:`ReplayDiverged` naming it)."""
        for sid, rec in self.journal.steps.items():
            if "." not in sid and sid not in self._consumed and int(sid) >= self._root.n:
                raise ReplayDiverged(f"replay diverged: the workflow ended before step {sid} "
                                     f"({rec.get('verb')}({rec.get('desc', '')!r})) that the journal recorded")

    # --- agents --------------------------------------------------------------------------------------

    async def spawn(self, profile: str, *, alias: str | None = None, cwd: str | Path | None = None,
                    worktree: bool = False, keep: bool = False) -> str:
        """Start an agent of ``profile`` (a name under ``agents:``) and return its handle once it is
        ready. ``alias`` is the handle to use; ``cwd`` its working folder. ``worktree=True`` gives it
        a git worktree of its own, ``.aegis/worktrees/workflow-<run>-<handle>`` on a new branch
        ``aegis/workflow/<run>/<handle>`` from ``HEAD`` (kept after the run, for you to merge or remove).
        The session is closed when the run ends unless ``keep``. A missing profile raises
        :class:`WorkflowError` naming it."""

        async def act(_: Any) -> dict[str, Any]:
            self._profile(profile)
            handle = alias or generate_handle(self.kernel.sessions.sessions)
            folder = Path(cwd) if cwd is not None else None
            if folder is not None and not folder.is_absolute():
                folder = Path(self.kernel.project_dir) / folder
            if worktree:
                folder = await self._worktree(handle)
            session = await self.kernel.sessions.spawn(profile, handle=handle, cwd=folder, restorable=False)
            await self._ready(session, profile)
            self.journal.append({"event": "session", "handle": handle, "profile": profile, "log_id": session.log_id,
                             "cwd": str(session.cwd), "driver_session_id": session.driver_session_id})
            return {"handle": handle}

        result, replayed = await self._step("spawn", f"{profile}|{alias}|{cwd}" + ("|worktree" if worktree else ""),
                                            f"{profile}", act)
        handle = result["handle"]
        self._spawned[handle] = keep
        if replayed:
            await self._reopen(handle)
        return handle

    async def _worktree(self, handle: str) -> Path:
        """A new git worktree for ``handle`` (the existing one when a re-run spawn made it already)."""
        project = Path(self.kernel.project_dir)
        path = project / ".aegis" / "worktrees" / f"workflow-{self.run.id}-{handle}"
        if (path / ".git").exists():
            return path
        branch = f"aegis/workflow/{self.run.id}/{handle}"
        proc = await trio.run_process(["git", "worktree", "add", "-q", "-b", branch, str(path), "HEAD"], cwd=project,
                                      capture_stdout=True, capture_stderr=True, check=False)
        if proc.returncode != 0:
            raise StepFailed(f"cannot make a git worktree for {handle}: "
                             f"{proc.stderr.decode(errors='replace').strip()}")
        return path

    def _profile(self, profile: str) -> None:
        try:
            self.kernel.sessions.profile(profile)
        except SessionError as exc:
            raise WorkflowError(f"agent profile '{profile}' is not configured: {exc}") from None

    async def _ready(self, session: Any, profile: str) -> None:
        await session.wait_for(lambda s: s.state != "starting", timeout=START_TIMEOUT)
        if session.state in ("error", "closed"):
            raise StepFailed(f"agent {session.handle} ({profile}) failed to start: {session.error or session.state}")

    async def _reopen(self, handle: str) -> None:
        """After a restart: bring back a session the journal has open, in its agent's own conversation."""
        entry = self.journal.sessions.get(handle, {})
        live = self.kernel.sessions.get(handle)
        if entry.get("closed") or (live is not None and live.state not in ("closed", "error")):
            return
        profile = entry.get("profile")
        session = await self.kernel.sessions.spawn(
            profile, handle=handle, resume_id=entry.get("driver_session_id"), log_id=entry.get("log_id"),
            cwd=Path(entry["cwd"]) if entry.get("cwd") else None, restorable=False)
        await self._ready(session, str(profile))
        self.journal.append({"event": "session", "handle": handle, "resumed": True,
                         "driver_session_id": session.driver_session_id})

    async def send(self, handle: str, text: str, *, timeout: float | None = None) -> str:
        """Give ``handle`` a turn with ``text`` (from ``workflow:<name>``) and return the agent's whole
        final message. A turn that ends with an error, times out or finds the session gone raises
        :class:`StepFailed`."""
        self._last_agent = handle

        async def act(_: Any) -> str:
            session = self.kernel.sessions.get(handle)
            if session is None or session.state == "closed":
                raise StepFailed(f"send to {handle}: the session is gone")
            outcome = await run_turn(session, text, sender=self.sender, timeout=timeout)
            self._note_session(handle, session)
            if not outcome.ok:
                raise StepFailed(f"send to {handle}: {outcome.error or outcome.status}")
            return outcome.text

        result, _ = await self._step("send", f"{handle}|{text}", f"{handle}: {text}", act)
        return result

    def _note_session(self, handle: str, session: Any) -> None:
        """Journal a spawned session's driver session id once the agent reported it (or a new one): what
        a resume reopens."""
        entry = self.journal.sessions.get(handle)
        if entry is not None and session.driver_session_id and session.driver_session_id != entry.get(
                "driver_session_id"):
            self.journal.append({"event": "session", "handle": handle, "driver_session_id": session.driver_session_id})

    async def close(self, handle: str) -> None:
        """Close a session (a no-op when it is already gone)."""

        async def act(_: Any) -> None:
            await self._close(handle, "closed by its workflow")

        await self._step("close", handle, handle, act)
        self._spawned.pop(handle, None)

    async def _close(self, handle: str, reason: str) -> None:
        session = self.kernel.sessions.get(handle)
        dsid = session.driver_session_id if session is not None else None
        if session is not None and session.state != "closed":
            with trio.CancelScope(shield=True):
                await session.close(reason)
        if handle in self.journal.sessions:
            self.journal.append({"event": "session", "handle": handle, "closed": True,
                             **({"driver_session_id": dsid} if dsid else {})})

    async def close_spawned(self) -> None:
        """At the run's end: close what it spawned, except sessions spawned with ``keep=True``."""
        for handle, keep in list(self._spawned.items()):
            if not keep:
                await self._close(handle, "its workflow ended")

    async def find_session(self, handle: str) -> str | None:
        """``handle`` when a live session has it, else None (journaled: a replay sees the same answer)."""

        async def act(_: Any) -> str | None:
            session = self.kernel.sessions.get(handle)
            return handle if session is not None and session.state not in ("closed", "error") else None

        result, _ = await self._step("find_session", handle, handle, act)
        return result

    # --- shell ---------------------------------------------------------------------------------------

    async def bash(self, cmd: str, *, cwd: str | Path | None = None, timeout: float | None = None,
                   env: dict[str, str] | None = None) -> dict[str, Any]:
        """Run ``cmd`` with ``bash -c`` (in the project folder unless ``cwd``) → ``{exit, stdout, stderr}``
        (the last 64 KiB of each). A ``timeout`` kills the command's process group and raises
        :class:`StepFailed`. ``env`` adds variables (never journaled)."""

        async def act(_: Any) -> dict[str, Any]:
            return await self._bash(cmd, cwd, timeout, env)

        result, _ = await self._step("bash", f"{cmd}|{cwd}", cmd, act)
        return result

    async def _bash(self, cmd: str, cwd: Any, timeout: float | None, env: dict[str, str] | None) -> dict[str, Any]:
        folder = Path(cwd) if cwd is not None else Path(self.kernel.project_dir)
        if not folder.is_absolute():
            folder = Path(self.kernel.project_dir) / folder
        with trio.move_on_after(math.inf if timeout is None else timeout) as scope:
            proc = await trio.run_process(["bash", "-c", cmd], cwd=folder, capture_stdout=True, capture_stderr=True,
                                          check=False, env={**os.environ, **(env or {})}, start_new_session=True,
                                          deliver_cancel=_kill_group)
        if scope.cancelled_caught:
            raise StepFailed(f"bash: {_desc(cmd)!r} did not finish within {timeout:g}s (killed)")
        return {"exit": proc.returncode, "stdout": _tail(proc.stdout), "stderr": _tail(proc.stderr)}

    async def bash_predicate(self, cmd: str, *, retry_with: str | Callable[[dict[str, Any]], str],
                             agent: str | None = None, max_retries: int = 3, cwd: str | Path | None = None,
                             timeout: float | None = None) -> dict[str, Any]:
        """Run ``cmd`` until it exits 0. After a failure the feedback — ``retry_with``, a template over
        ``{exit}``, ``{stdout}``, ``{stderr}``, or a callable given the result — is sent to ``agent``
        (default: the agent last sent to, i.e. the one doing the work) and the command runs again, at
        most ``max_retries`` times. Returns the passing ``{exit, stdout, stderr}``; raises
        :class:`PredicateFailed` after the last try."""
        for attempt in range(max_retries + 1):
            result = await self.bash(cmd, cwd=cwd, timeout=timeout)
            if result["exit"] == 0:
                return result
            if attempt == max_retries:
                break
            target = agent or self._last_agent
            if target is None:
                raise PredicateFailed(f"predicate {_desc(cmd)!r} failed (exit {result['exit']}) and there is no "
                                      "agent to send the feedback to (pass agent=)", result)
            feedback = retry_with(result) if callable(retry_with) else _fill(retry_with, result)
            await self.send(target, feedback)
        raise PredicateFailed(f"predicate {_desc(cmd)!r} still failed after {max_retries} retries "
                              f"(exit {result['exit']})", result)

    async def write_file(self, path: str | Path, text: str) -> str:
        """Write ``text`` to ``path`` (relative to the project; folders created) → the absolute path."""

        async def act(_: Any) -> str:
            target = Path(path)
            if not target.is_absolute():
                target = Path(self.kernel.project_dir) / target

            def write() -> None:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(text)

            await trio.to_thread.run_sync(write)
            return str(target)

        result, _ = await self._step("write_file", f"{path}|{text}", str(path), act)
        return result

    # --- fan-out -------------------------------------------------------------------------------------

    async def parallel(self, *calls: Callable[[], Awaitable[Any]] | Awaitable[Any]) -> list[Any]:
        """Run the calls (coroutines, or callables returning one) concurrently in a nursery; return
        their results in order. The first failure cancels the others and is raised."""
        sid = self._next_id()
        results: list[Any] = [None] * len(calls)

        async def branch(i: int, call: Any) -> None:
            _SCOPE.set(_Scope(self, f"{sid}.{i}."))
            results[i] = await (call() if callable(call) else call)

        try:
            async with trio.open_nursery() as nursery:
                for i, call in enumerate(calls):
                    nursery.start_soon(branch, i, call)
        except BaseExceptionGroup as group:
            leaves = _leaves(group)
            firsts = [e for e in leaves if not isinstance(e, trio.Cancelled)]
            if firsts:
                raise firsts[0] from None
            raise
        return results

    # --- queues and groups (through the registry: the plugins' own operations) ---------------------------

    async def enqueue(self, queue: str, payload: str) -> dict[str, Any]:
        """Put ``payload`` on ``queue`` (aegis-queue) → ``{task_id, …}``; the run does not wait."""
        return await self._op("enqueue", "aegis_enqueue", "aegis-queue",
                              {"queue": queue, "payload": payload, "callback": False}, f"{queue}|{payload}")

    async def delegate(self, queue: str, payload: str, *, timeout: float = 600) -> dict[str, Any]:
        """Enqueue and wait (up to ``timeout`` s) → ``{task_id, status, result, …}``."""
        return await self._op("delegate", "aegis_delegate", "aegis-queue",
                              {"queue": queue, "payload": payload, "timeout_s": timeout}, f"{queue}|{payload}")

    async def spawn_group(self, name: str, profiles: list[str] | None = None, *, preset: str | None = None) -> Any:
        """Create group ``name`` (aegis-groups): one agent per profile, or a preset's."""
        args: dict[str, Any] = {"name": name, "profiles": profiles, "preset": preset}
        return await self._op("spawn_group", "aegis_group_spawn", "aegis-groups", args, json.dumps(args))

    async def broadcast(self, name: str, objective: str, *, output_format: str = "", tool_guidance: str = "",
                        boundaries: str = "") -> Any:
        """Ask every member of group ``name`` one structured question (aegis-groups)."""
        args = {"name": name, "objective": objective, "output_format": output_format,
                "tool_guidance": tool_guidance, "boundaries": boundaries}
        return await self._op("broadcast", "aegis_group_broadcast", "aegis-groups", args, json.dumps(args))

    async def wait_all(self, name: str, *, timeout: float | None = None, reducer: str | None = None) -> Any:
        """Every member's reply to the open broadcast, reduced (aegis-groups)."""
        args: dict[str, Any] = {"name": name, "timeout": timeout, "reducer": reducer}
        return await self._op("wait_all", "aegis_group_wait_all", "aegis-groups", args, json.dumps(args))

    async def wait_any(self, name: str, *, timeout: float | None = None) -> Any:
        """The first reply to the open broadcast; the others are cancelled (aegis-groups)."""
        args: dict[str, Any] = {"name": name, "timeout": timeout}
        return await self._op("wait_any", "aegis_group_wait_any", "aegis-groups", args, json.dumps(args))

    async def dissolve_group(self, name: str, *, close_members: bool = True) -> Any:
        """Dissolve group ``name`` (its members closed unless ``close_members=False``)."""
        args = {"name": name, "close_members": close_members}
        return await self._op("dissolve_group", "aegis_group_dissolve", "aegis-groups", args, json.dumps(args))

    async def _op(self, verb: str, operation: str, plugin: str, args: dict[str, Any], key: str) -> Any:
        args = {k: v for k, v in args.items() if v is not None}

        async def act(_: Any) -> Any:
            if self.kernel.operations.get(operation) is None:
                raise WorkflowError(f"engine.{verb} needs the {plugin} plugin: operation {operation} is not "
                                    f"registered (is {plugin} installed and enabled?)")
            try:
                return await self.kernel.operations.call(self.kernel, operation, args, Caller())
            except OperationError as exc:
                raise StepFailed(f"{verb}: {exc}") from None

        result, _ = await self._step(verb, key, key, act)
        return result

    # --- people, time, state ----------------------------------------------------------------------------

    async def ask_human(self, question: str, *, options: list[str] | None = None,
                        timeout: float | None = None) -> str:
        """Ask the person a question and wait (durably: a restart keeps it open) for the answer —
        ``aegis workflow answer RUN TEXT``, the TUI, or any plugin that can ask. With ``options`` the
        answer is one of them. Raises :class:`HumanTimeout` after ``timeout`` seconds."""
        clock = self.kernel.clock

        def begin() -> dict[str, Any]:
            return {"question": question, "options": options,
                    "deadline": None if timeout is None else clock.now() + timeout}

        async def act(rec: Any) -> str:
            deadline = rec.get("deadline") if rec else None
            remaining = math.inf if deadline is None else max(0.0, deadline - clock.now())
            answer = await self.runtime.ask(self.run, question, options, remaining)
            if answer is None:
                raise HumanTimeout(f"no answer to {_desc(question)!r} within {timeout:g}s")
            return answer

        result, _ = await self._step("ask_human", f"{question}|{options}", question, act, begin=begin)
        return result

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on a durable timer: after a restart only what was left is waited."""
        clock = self.kernel.clock

        async def act(rec: Any) -> None:
            await clock.sleep(max(0.0, float(rec["deadline"]) - clock.now()))

        await self._step("sleep", f"{seconds}", f"{seconds:g}s", act,
                         begin=lambda: {"deadline": clock.now() + seconds})

    async def checkpoint(self, name: str, payload: Any) -> Any:
        """Record ``payload`` (JSON) under ``name``; :meth:`resume_state` returns it from here on
        (replays included)."""
        json.dumps(payload)  # refuse what the journal cannot hold, before it is journaled

        async def act(_: Any) -> Any:
            return payload

        result, _ = await self._step("checkpoint", name, name, act)
        self._checkpoints[name] = result
        return result

    def resume_state(self) -> dict[str, Any]:
        """The latest payload of every checkpoint this run has passed (deterministic on replay)."""
        return dict(self._checkpoints)

    async def log(self, message: str) -> None:
        """A line in the run's log (``aegis workflow logs RUN``), once (a replay does not repeat it)."""

        async def act(_: Any) -> None:
            self.runtime.on_log(self.run, message)

        await self._step("log", message, message, act)


def _fill(template: str, result: dict[str, Any]) -> str:
    out = template
    for name in ("exit", "stdout", "stderr"):
        out = out.replace("{" + name + "}", str(result.get(name, "")))
    return out


def _tail(data: bytes | None) -> str:
    data = data or b""
    if len(data) > OUTPUT_CAP:
        data = data[-OUTPUT_CAP:]
    return data.decode("utf-8", errors="replace")


async def _kill_group(proc: trio.Process) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


def _leaves(group: BaseExceptionGroup) -> list[BaseException]:
    out: list[BaseException] = []
    for exc in group.exceptions:
        out.extend(_leaves(exc) if isinstance(exc, BaseExceptionGroup) else [exc])
    return out
