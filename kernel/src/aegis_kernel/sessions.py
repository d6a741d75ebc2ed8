"""Sessions: one live agent each, and the manager that spawns, finds, renames and closes them.

A :class:`Session` owns its agent process inside its own nursery (started in the kernel's nursery),
runs turns one at a time, folds events into metrics and a JSONL event log, and takes envelopes from
the delivery channel: idle → woken at once; working → buffered and delivered as one batch at turn end.
States: ``starting → ready ⇄ working``, ``input-required`` while a permission request waits for the user,
``error`` when the process failed, ``closed`` at the end.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from . import events as ev
from .delivery import DeliveryError, Envelope, render_batch, utc_now
from .drivers import AgentProcess, Driver, Launch, SpawnRefused, SpawnSpec
from .hookcall import HookFailed, chain
from .metrics import SessionMetrics
from .names import check_handle, generate_handle
from .redact import redact, redact_event
from .snapshot import SessionSnapshot
from .state import Ledger
from .writer import Ticket

if TYPE_CHECKING:
    from .kernel import Kernel
    from .profiles import AgentProfile

log = logging.getLogger("aegis.sessions")

STATES = ("starting", "ready", "working", "input-required", "error", "closed")
PRIMER = (
    "You are the agent '{handle}' in Aegis, a harness where several coding agents work together. "
    "Messages from others arrive as turns starting with '✉ from <sender>'."
)  # plugins add what their tools are for through aegis_system_prompt (the inbox: aegis_meta)


HISTORY_TEXT_KEEP = 64 * 1024  # characters of a tool result kept in memory (the transcript keeps them all)


def _bounded(event: Any) -> Any:
    """``event`` as kept in :attr:`Session.history`: a huge tool result keeps only its tail (after a
    line saying how much was cut); the transcript file has the whole text."""
    if isinstance(event, ev.ToolResult) and len(event.text) > HISTORY_TEXT_KEEP:
        cut = len(event.text) - HISTORY_TEXT_KEEP
        return attrs.evolve(event, text=f"… ({cut} characters cut here; the transcript file has them)\n"
                                        + event.text[cut:])
    return event


_REPLAYED = (ev.UserEcho, ev.AssistantText, ev.Thinking, ev.ToolUse, ev.ToolResult, ev.Plan)


class SessionError(Exception):
    """A refusal about sessions (unknown handle, bad handle, unknown agent profile)."""


class Session:
    def __init__(self, kernel: Kernel, handle: str, profile_name: str, profile: AgentProfile, *,
                 cwd: Path, spawned_by: str | None = None, log_id: str | None = None,
                 resume_id: str | None = None, restorable: bool = True, transcript: str | None = None) -> None:
        self.kernel = kernel
        self.handle = handle
        self.profile_name = profile_name
        self.profile = profile
        self.provider = profile.provider
        self.cwd = cwd
        self.spawned_by = spawned_by
        self.restorable = restorable  # False: a transient worker, never brought back by a restart
        self.created_at = utc_now()
        self.log_id = log_id or f"{datetime.now(timezone.utc).strftime('%Y%m%dT%H%M%S%fZ')}-{handle}"
        self.driver_session_id: str | None = resume_id
        self.resume_id = resume_id
        self.state = "starting"
        self.error: str | None = None
        driver = kernel.driver_for(profile.provider)  # the window is the vendor's knowledge, so its driver's
        self.metrics = SessionMetrics(provider=profile.provider,
                                      context_size=driver.context_window(profile.model) if driver else 0)
        self.history: list[Any] = []
        self.final_text = ""
        self.pending_permission: ev.PermissionRequest | None = None
        self._kernel_asks: dict[str, tuple[trio.Event, list[bool]]] = {}  # ask_user requests by id
        self.listeners: list[Callable[[Session, Any], None]] = []
        self._pending: list[Envelope] = []
        self._turn_text: list[str] = []
        self._turn_message: str | None = None
        self._turn_envelopes: list[Envelope] = []
        self._turn_read = False
        self._wake = trio.Event()
        self._changed = trio.Event()
        self._interrupting = False
        self._nursery: trio.Nursery | None = None
        self._proc: AgentProcess | None = None
        self._scope: trio.CancelScope | None = None
        self._close_reason: str | None = None
        self._handing_over = False  # closed for its own resume: its pending envelopes go to the new session
        self._closed = trio.Event()
        # A resumed agent replays its history before it reports its session id (SystemInit); our log
        # already has that history, so those events are not recorded twice.
        self._replaying = resume_id is not None or (log_id is not None and transcript is None)
        # A shared transcript (transient workers: see SessionManager.spawn) is the manager's to close;
        # its records carry the handle and this session's log id.
        self._transcript_name = transcript
        self._log_retired = False
        if transcript is not None:
            self._log = kernel.sessions._transcript(transcript)
        else:
            log_path = kernel.state.path("sessions", f"{self.log_id}.jsonl")
            if log_id is not None:  # a resumed session: its transcript continues
                self.history = [_bounded(ev.event_from_dict(r["event"])) for r in Ledger.replay(log_path).records
                                if isinstance(r.get("event"), dict)]
            self._log = Ledger(log_path, fsync="never")

    # --- public ---------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return f"<Session {self.handle} {self.provider} {self.state}>"

    @property
    def pending_count(self) -> int:
        return len(self._pending)

    @property
    def busy(self) -> bool:
        return self.state in ("working", "input-required")

    def info(self) -> dict[str, Any]:
        return {
            "handle": self.handle, "agent": self.profile_name, "provider": self.provider, "state": self.state,
            "model": self.profile.model, "permission": self.profile.permission, "cwd": str(self.cwd),
            "spawned_by": self.spawned_by, "created_at": self.created_at, "pending": len(self._pending),
            "driver_session_id": self.driver_session_id, "error": self.error, "log_id": self.log_id,
            "transcript": str(self._log.path), "pid": self._proc.pid if self._proc is not None else None,
            "metrics": self.metrics.to_dict(),
        }

    def enqueue(self, envelope: Envelope) -> int:
        """Take an envelope (already persisted). Returns its queue position, 0 = goes out now.

        An envelope already waiting here (same id) is not taken twice."""
        if any(e.id == envelope.id for e in self._pending):
            return self._pending.index(next(e for e in self._pending if e.id == envelope.id)) + 1
        self._pending.append(envelope)
        if envelope.interrupt:
            self.interrupt()
        if envelope.passive:  # never wakes the agent: it rides with the next turn (see Envelope.passive)
            self._notify()
            return len(self._pending)
        self._kick()
        return 0 if self.state == "ready" and len(self._pending) == 1 else len(self._pending)

    @property
    def wants_turn(self) -> bool:
        """An envelope waits that starts a turn (passive ones only ride along with one)."""
        return any(not e.passive for e in self._pending)

    def interrupt(self) -> None:
        """Ask the agent to stop its current turn (no-op when idle). Sent at once from the session's own
        nursery, never queued behind a turn that is still being handed to the agent."""
        if self.busy and self._proc is not None and self._nursery is not None and not self._interrupting:
            self._interrupting = True
            self._nursery.start_soon(self._send_interrupt)

    async def _send_interrupt(self) -> None:
        try:
            assert self._proc is not None
            await self._proc.interrupt()
        except Exception as exc:  # noqa: BLE001 - a dead agent is reported by its event stream
            log.warning("session %s: interrupt failed: %s", self.handle, exc)
        finally:
            self._interrupting = False

    async def ask_user(self, tool_name: str, summary: str, raw_input: Any = None) -> bool:
        """Hold a request this agent made of *the kernel* (an operation that needs the user's approval)
        until a person answers it: the session is ``input-required`` meanwhile, exactly as for a tool
        permission prompt, and ``aegis approve``/``deny`` (or the TUI) answer it. Returns the answer;
        a cancelled wait (the call's deadline, the session closing) leaves nothing pending."""
        request_id = f"aegis-{len(self._kernel_asks)}-{time.monotonic_ns()}"
        req = ev.PermissionRequest(request_id=request_id, tool_name=tool_name, kind="other", summary=summary,
                                   raw_input=raw_input, options=("allow", "deny"))
        done, answer = trio.Event(), list[bool]()
        self._kernel_asks[request_id] = (done, answer)
        previous = self.state
        self._record(req)
        self.pending_permission = req
        self._set_state("input-required")
        try:
            await done.wait()
        finally:
            self._kernel_asks.pop(request_id, None)
            if self.pending_permission is req:  # cancelled before an answer: nothing stays pending
                self.pending_permission = None
                if self.state == "input-required":
                    self._set_state(previous if previous != "input-required" else "working")
        return bool(answer and answer[0])

    async def answer_permission(self, allow: bool, *, always: bool = False) -> None:
        req = self.pending_permission
        if req is not None and req.request_id in self._kernel_asks:  # asked by the kernel: no agent to tell
            self.pending_permission = None
            self._record(ev.ApprovalAnswered(request_id=req.request_id, tool_name=req.tool_name, allow=allow))
            self._set_state("working")
            done, answer = self._kernel_asks[req.request_id]
            answer.append(allow)
            done.set()
            return
        if req is None or self._proc is None:
            raise SessionError(f"session '{self.handle}' has no pending approval")
        self.pending_permission = None
        self._record(ev.ApprovalAnswered(request_id=req.request_id, tool_name=req.tool_name, allow=allow,
                                         always=always))
        if always and allow:
            self.kernel.approvals.remember(self, req)
        self._set_state("working")
        await self._proc.answer_permission(req.request_id, allow, always=always)

    async def close(self, reason: str = "closed") -> None:
        """Close politely → terminate → kill; returns once the process is gone."""
        if self._close_reason is None:
            self._close_reason = reason
        if self._closed.is_set():  # the process already ended (error): just retire the session
            if self.state != "closed":
                self._set_state("closed")
                self.kernel.hooks.aegis_session_closed(session=self, reason=reason)
            self.kernel.sessions._forget(self, explicit=True)
            self._retire_log()
            return
        if self._scope is not None:
            self._scope.cancel()
        await self._closed.wait()

    async def wait_for(self, predicate: Callable[[Session], bool], timeout: float = 30) -> None:
        """Wait (as a cancel scope deadline) until ``predicate(self)`` holds."""
        with trio.fail_after(timeout):
            while not predicate(self):
                await self._changed.wait()

    async def wait_idle(self, timeout: float = 30) -> None:
        await self.wait_for(lambda s: s.state in ("ready", "error", "closed") and not s.wants_turn,
                            timeout)

    def subscribe(self, listener: Callable[[Session, Any], None]) -> Callable[[], None]:
        self.listeners.append(listener)
        return lambda: self.listeners.remove(listener) if listener in self.listeners else None

    # --- the session task ------------------------------------------------------------------------

    async def run(self, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        kernel = self.kernel
        try:
            with trio.CancelScope() as scope:
                self._scope = scope
                if self._close_reason is not None:
                    scope.cancel()
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    task_status.started()
                    try:
                        self._proc = await kernel.sessions.start_process(self, nursery)
                    except (SpawnRefused, Exception) as exc:  # noqa: BLE001 - surfaced on the session
                        self._fail(f"{exc}")
                        return
                    self._set_state("ready")
                    kernel.hooks.aegis_session_started(session=self)
                    nursery.start_soon(self._turn_loop)
                    await self._read_events()
                    nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                if self._proc is not None:
                    with trio.move_on_after(6):
                        await self._proc.close()
                reason = self._close_reason
                if reason is not None or self.state != "error":
                    self._set_state("closed")
                    kernel.hooks.aegis_session_closed(session=self, reason=reason or "shutdown")
                kernel.sessions._forget(self, explicit=reason is not None)
                if self.state == "closed" or self._transcript_name is None:
                    self._retire_log()  # a failed session still writes "closed" when it is retired
                self._closed.set()

    async def _read_events(self) -> None:
        assert self._proc is not None
        async for event in self._proc.events():
            await self._on_event(event)
        if self._close_reason is None and self.state != "error":
            self._fail("the agent process ended")

    async def _on_event(self, event: Any) -> None:
        if self._replaying and isinstance(event, _REPLAYED):
            return
        if not self._turn_read and self.state == "working":
            self._turn_read = True
            for env in self._turn_envelopes:
                self.kernel.delivery.record(self, "read", env.id)
        if isinstance(event, ev.TurnResult) and self.state not in ("working", "input-required"):
            # a turn end with no turn running (a duplicate or stray result frame): noted, never counted
            self._record(ev.Unknown(raw=repr(event)[:4096], reason=f"a turn end while no turn was running "
                                                                   f"(state {self.state}); ignored"))
            return
        self.metrics.observe(event)
        if isinstance(event, ev.SystemInit):
            self._replaying = False
            if event.session_id and event.session_id != self.driver_session_id:
                if self.restorable:  # what resume needs: on disk before anyone sees it or the agent goes on
                    await self.kernel.sessions.persist_change(self, driver_session_id=event.session_id)
                else:
                    self.driver_session_id = event.session_id
        elif isinstance(event, ev.AssistantText) and not event.partial and event.parent_tool_use_id is None:
            if event.message_id is not None and event.message_id != self._turn_message:
                self._turn_text = []
                self._turn_message = event.message_id
            self._turn_text.append(event.text)
        elif isinstance(event, (ev.ToolUse, ev.ToolResult)) and event.parent_tool_use_id is None:
            self._turn_text, self._turn_message = [], None
        elif isinstance(event, ev.PermissionRequest):
            self._record(event)
            await self._on_permission(event)
            return
        elif isinstance(event, ev.AgentError):
            self._record(event)
            self._fail(event.message + (f"\n{event.stderr_tail}" if event.stderr_tail else ""))
            return
        self._record(event)
        if isinstance(event, ev.TurnResult):
            self._finish_turn(event)

    async def _on_permission(self, req: ev.PermissionRequest) -> None:
        decision = self.kernel.approvals.decide(self, req)
        if decision is None:
            self.pending_permission = req
            self._set_state("input-required")
            return
        # the policy answered: said in the transcript, so viewers close the request as a person's answer does
        self._record(ev.ApprovalAnswered(request_id=req.request_id, tool_name=req.tool_name, allow=decision))
        assert self._proc is not None
        await self._proc.answer_permission(req.request_id, decision)

    def _finish_turn(self, result: ev.TurnResult) -> None:
        self.final_text = "".join(self._turn_text).strip()
        self._turn_text, self._turn_message = [], None
        self.pending_permission = None
        self._set_state("ready")
        self.kernel.hooks.aegis_turn_finished(session=self, result=result, final_text=self.final_text)
        if self.wants_turn:
            self._kick()

    async def _turn_loop(self) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            if self.state == "ready" and self.wants_turn:
                await self._start_turn()

    async def _start_turn(self) -> None:
        assert self._proc is not None
        batch, self._pending = self._pending, []
        text = chain(self.kernel.plugins.pm, "aegis_pre_turn", "text", render_batch(batch), fail_closed=False,
                     session=self)
        for env in batch:
            if env.sender == "user":
                self._record(ev.UserTurn(text=env.body))
            else:
                self._record(ev.EnvelopeReceived(env.id, env.sender, env.body, env.ts, env.task_id, env.status))
        self._turn_envelopes = batch
        self._turn_read = False
        self._turn_text, self._turn_message = [], None  # replayed history is not this turn's answer
        self.metrics.begin_turn()
        self._set_state("working")
        await self._proc.prompt(text)
        for env in batch:
            self.kernel.delivery.record(self, "delivered", env.id)
            self.kernel.hooks.aegis_envelope_delivered(session=self, envelope=env)

    # --- bookkeeping ---------------------------------------------------------------------------

    def _record(self, event: Any) -> None:
        # streaming previews (partial deltas) go to live listeners only: the whole text follows them
        if not getattr(event, "partial", False):
            event = redact_event(event)  # no secret reaches a transcript (read_peer shows it to peers)
            self.history.append(_bounded(event))
            try:
                record = {"ts": time.time(), "event": ev.event_to_dict(event)}
                if self._transcript_name is not None:
                    record["handle"], record["session"] = self.handle, self.log_id
                self._log.append(record)
            except (OSError, TypeError, ValueError) as exc:
                log.warning("session %s: cannot log event: %s", self.handle, exc)
        for listener in list(self.listeners):
            try:
                listener(self, event)
            except Exception:  # noqa: BLE001 - a broken listener must not kill the session
                log.exception("session listener failed")
        self._notify()

    def _retire_log(self) -> None:
        """Close this session's transcript; a shared one is released once (the last session out closes
        it). Idempotent for an own transcript: a later record reopens it and a second call closes it."""
        if self._transcript_name is None:
            self._log.close()
        elif not self._log_retired:
            self._log_retired = True
            self.kernel.sessions.release_transcript(self._transcript_name, self._log)

    def _fail(self, message: str) -> None:
        self.error = message = redact(message)
        if self.metrics.streaming:
            self.metrics.end_turn(ev.TurnResult(stop_reason="error", is_error=True, error=message))
        self._set_state("error")

    def _set_state(self, new: str) -> None:
        old = self.state
        if old == new:
            return
        self.state = new
        self._record(ev.StateChanged(old=old, new=new, reason=self.error or "" if new == "error" else ""))
        self.kernel.hooks.aegis_session_state_changed(session=self, old=old, new=new)
        if new == "ready" and self.wants_turn:
            self._kick()

    def _kick(self) -> None:
        self._wake.set()
        self._notify()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()


class SessionManager:
    """All live sessions of one kernel, by handle."""

    def __init__(self, kernel: Kernel) -> None:
        self.kernel = kernel
        self.sessions: dict[str, Session] = {}
        self._transcripts: dict[str, Ledger] = {}  # shared transcripts by name, open while a session uses one
        self._transcript_users: dict[str, int] = {}
        self._snapshot = SessionSnapshot(kernel.state.path("sessions.json"), kernel.state.writer)
        snapshot, problems = self._snapshot.load()  # read once: the first spawn rewrites the file
        self._saved: list[dict[str, Any]] = snapshot["sessions"]
        self._ended: list[dict[str, Any]] = snapshot["ended"]
        self._written: list[dict[str, Any]] = list(self._saved)  # "sessions" as the file has them
        self._changing: dict[Session, dict[str, Any]] = {}  # fields being made durable (persist_change)
        self.restored = trio.Event()  # set once restore() ran (or the kernel started without restoring)
        self.restore_problems: list[str] = problems  # sessions restore() could not bring back, with why

    def __iter__(self) -> Iterator[Session]:
        return iter(list(self.sessions.values()))

    def get(self, handle: str) -> Session | None:
        return self.sessions.get(handle)

    def require(self, handle: str) -> Session:
        session = self.sessions.get(handle)
        if session is None:
            known = ", ".join(sorted(self.sessions)) or "none"
            raise SessionError(f"no session '{handle}' (live sessions: {known}; see aegis_list_sessions)")
        return session

    def profile(self, name: str | None) -> tuple[str, AgentProfile]:
        agents = self.kernel.config.get("agents") or {}
        name = name or self.kernel.config.get("default_agent") or (next(iter(agents), None))
        if name is None:
            raise SessionError("no agents configured: add one under 'agents:' in .aegis.yaml")
        if name not in agents:
            raise SessionError(f"unknown agent '{name}' (configured: {', '.join(sorted(agents)) or 'none'})")
        return name, agents[name]

    async def spawn(self, agent: str | None = None, *, handle: str | None = None, prompt: str | None = None,
                    spawned_by: str | None = None, resume_id: str | None = None, log_id: str | None = None,
                    sender: str = "user", cwd: Path | None = None, restorable: bool = True,
                    transcript: str | None = None) -> Session:
        """Start a session of profile ``agent`` (default agent when None) and return it at once.

        The process starts in the background; ``prompt`` (if any) is its opening turn. ``cwd``
        overrides the profile's working folder (e.g. a worktree); ``restorable=False`` keeps a transient
        worker out of the snapshot a restart restores. ``transcript`` (transient sessions only) names a
        transcript shared by many sessions, ``sessions/<transcript>.jsonl``, whose records carry
        ``"handle"`` and ``"session"`` (the session's ``log_id``, unique where handles are reused;
        ``log_id`` may then be given to name it): a queue's workers write one file per queue and day instead of one file each
        (creating a file costs more CPU than the rest of a worker's bookkeeping).
        """
        if transcript is not None and restorable:
            raise ValueError("a shared transcript is for transient sessions (restorable=False) only")
        name, profile = self.profile(agent)
        carried: list[Envelope] = []
        if handle is not None:
            check_handle(handle)
            if handle in self.sessions and (resume_id is not None or log_id is not None):
                carried = await self._take_over_failed(handle)
            if handle in self.sessions:
                raise SessionError(f"handle '{handle}' is taken; pick another or omit it")
        else:
            handle = generate_handle(self.sessions)
        if cwd is None:
            cwd = Path(profile.cwd).expanduser() if profile.cwd else self.kernel.project_dir
        if not cwd.is_absolute():
            cwd = self.kernel.project_dir / cwd
        session = Session(self.kernel, handle, name, profile, cwd=cwd, spawned_by=spawned_by, log_id=log_id,
                          resume_id=resume_id, restorable=restorable, transcript=transcript)
        self.sessions[handle] = session
        persisted = None
        for envelope in carried:  # held for the failed session this one resumes: theirs first
            session.enqueue(envelope)
        try:
            if restorable:
                persisted = self.persist()
            if prompt:
                self.kernel.deliver(handle, Envelope.new(sender, prompt))
            # start_soon, not start: run() honours a close() that comes before it begins, and start()'s
            # hand-over costs more than the rest of a spawn's bookkeeping
            self.kernel.nursery.start_soon(session.run, name=f"session:{handle}")
        except BaseException:
            if self.sessions.get(handle) is session:
                del self.sessions[handle]
            session._retire_log()
            raise
        if persisted is None:
            await trio.lowlevel.checkpoint()
        else:  # acknowledged once a restart would bring it back
            try:
                await persisted.wait()
            except OSError as exc:
                log.error("session %s: the session snapshot could not be written (a restart will not restore "
                          "it): %s", handle, exc)
        return session

    async def start_process(self, session: Session, nursery: trio.Nursery) -> AgentProcess:
        kernel = self.kernel
        drivers = kernel.plugins.registry.objects("drivers")
        driver: Driver | None = drivers.get(session.provider)
        if driver is None:
            raise SessionError(
                f"unknown provider '{session.provider}' for agent '{session.profile_name}' "
                f"(installed drivers: {', '.join(sorted(drivers)) or 'none'}; is its plugin installed and enabled?)")
        primer = PRIMER.format(handle=session.handle)
        system_prompt = chain(kernel.plugins.pm, "aegis_system_prompt", "text", primer, fail_closed=False,
                              session=session)
        if session.profile.prompt:
            persona = Path(session.profile.prompt).expanduser()
            if not persona.is_absolute():
                persona = kernel.project_dir / persona
            try:
                system_prompt += "\n\n" + persona.read_text()
            except OSError as exc:
                raise SessionError(f"cannot read persona file {persona}: {exc.strerror}") from None
        resume = session.resume_id if getattr(driver, "supports_resume", False) else None
        spec = SpawnSpec(handle=session.handle, profile_name=session.profile_name, profile=session.profile,
                         cwd=session.cwd, state_dir=kernel.state.root, resume_id=resume,
                         system_prompt=system_prompt)
        launch = driver.build_launch(spec)
        launch = pre_spawn(kernel.plugins.pm, spec, launch)
        return await driver.start(spec, launch, nursery)

    def _transcript(self, name: str) -> Ledger:
        """The shared transcript ``name``, for one more session (see :meth:`release_transcript`)."""
        ledger = self._transcripts.get(name)
        if ledger is None:
            ledger = self._transcripts[name] = Ledger(self.kernel.state.path("sessions", f"{name}.jsonl"),
                                                      fsync="never")
        self._transcript_users[name] = self._transcript_users.get(name, 0) + 1
        return ledger

    def release_transcript(self, name: str, ledger: Ledger) -> None:
        """A session is done with shared transcript ``name``; the last one out closes it (no fd per day
        kept)."""
        users = self._transcript_users.get(name, 0) - 1
        if users > 0:
            self._transcript_users[name] = users
            return
        self._transcript_users.pop(name, None)
        if self._transcripts.get(name) is ledger:
            del self._transcripts[name]
        ledger.close()

    def close_transcripts(self) -> None:
        """Close the shared transcripts still open (at kernel exit; a later append would reopen one)."""
        for ledger in self._transcripts.values():
            ledger.close()
        self._transcripts.clear()
        self._transcript_users.clear()

    def rename(self, old: str, new: str) -> Session:
        session = self.require(old)
        check_handle(new)
        if new in self.sessions:
            raise SessionError(f"handle '{new}' is taken")
        del self.sessions[old]
        session.handle = new
        self.sessions[new] = session
        self.kernel.delivery.rename(old, new)
        self.persist()
        return session

    async def close(self, handle: str, reason: str = "closed") -> None:
        await self.require(handle).close(reason)

    async def _take_over_failed(self, handle: str) -> list[Envelope]:
        """A resume of ``handle`` while its session is in ``error``: retire the failed session (its
        observers see it closed, reason ``resumed``) and return the envelopes held for it, which go to
        the resumed session instead of being dropped. Any other live session keeps its handle."""
        old = self.sessions[handle]
        if old.state != "error":
            return []
        old._handing_over = True
        await old.close("resumed")
        carried, old._pending = list(old._pending), []
        return carried

    def _forget(self, session: Session, *, explicit: bool) -> None:
        if explicit and self.sessions.get(session.handle) is session:
            del self.sessions[session.handle]
            self.kernel.approvals.forget(session)
            # envelopes it never got are dropped, so a later session reusing the handle never gets them
            # (unless it is handing them over to its own resume: see _take_over_failed)
            if not session._handing_over:
                self.kernel.delivery.drop(session, list(session._pending))
                session._pending.clear()
            if session.restorable:
                self._ended = [r for r in self._ended if r["handle"] != session.handle][-(MAX_ENDED - 1):]
                self._ended.append(_record(session))
        if session.restorable:
            self.persist()

    # --- persistence ---------------------------------------------------------------------------

    def persist(self) -> Ticket:
        """Write the live-session snapshot (what a restart restores) on the state writer thread; the
        returned ticket is done (``await ticket.wait()``) once it is on disk."""
        self._written = [_record(s) | self._changing.get(s, {}) for s in self.sessions.values() if s.restorable]
        return self._snapshot.write(self._written, list(self._ended))

    async def persist_change(self, session: Session, **fields: Any) -> None:
        """Write ``fields`` of ``session``'s record (e.g. ``driver_session_id``) to the snapshot, wait
        until it is on disk, then set them on the session: whoever sees the new value can count on a
        restart finding it (a snapshot written meanwhile for another reason carries it too)."""
        self._changing[session] = {**self._changing.get(session, {}), **fields}
        try:
            await self.persisted()
        finally:
            for name, value in self._changing.pop(session, {}).items():
                setattr(session, name, value)

    async def persisted(self) -> None:
        """:meth:`persist` and wait until the snapshot is on disk (a failure is logged: the session goes
        on, but a restart would not find this state)."""
        try:
            await self.persist().wait()
        except OSError as exc:
            log.error("the session snapshot could not be written (a restart will not find this state): %s", exc)

    def saved(self) -> list[dict[str, Any]]:
        """Sessions that were live when the previous run stopped (what :meth:`restore` brings back)."""
        return list(self._saved)

    def saved_all(self) -> list[dict[str, Any]]:
        """Live and recently ended sessions (what ``aegis spawn --resume`` can bring back)."""
        return list(self._ended) + list(self._written)

    async def restore(self) -> list[Session]:
        """Respawn the sessions that were live at the last stop, then re-deliver their pending envelopes."""
        restored = []
        saved, self._saved = self._saved, []
        try:
            for rec in saved:
                handle = rec["handle"]
                if handle in self.sessions:
                    continue
                try:
                    pending = self.kernel.delivery.pending(handle)  # before the session can take new ones
                except DeliveryError as exc:  # its inbox is lost, the session is not
                    log.error("session %s: restored without its pending envelopes: %s", handle, exc)
                    self.restore_problems.append(f"{handle}: restored without its pending envelopes: {exc}")
                    pending = []
                try:
                    session = await self.spawn(rec.get("agent"), handle=handle, spawned_by=rec.get("spawned_by"),
                                               resume_id=rec.get("driver_session_id"), log_id=rec.get("log_id"))
                except Exception as exc:  # noqa: BLE001 - one bad record must not stop the others
                    log.warning("cannot restore session %s: %s", handle, exc)
                    self.restore_problems.append(f"{handle}: {exc}")
                    continue
                for envelope in pending:
                    session.enqueue(envelope)
                restored.append(session)
        finally:
            self.restored.set()
        return restored

    def clear_saved(self) -> None:
        """Start fresh (``--clean``): forget the previous run's live sessions."""
        self._saved = []
        self.persist()
        self.restored.set()


MAX_ENDED = 200


def _record(s: Session) -> dict[str, Any]:
    return {"handle": s.handle, "agent": s.profile_name, "log_id": s.log_id, "spawned_by": s.spawned_by,
            "driver_session_id": s.driver_session_id, "created_at": s.created_at}


def pre_spawn(pm: Any, spec: SpawnSpec, launch: Launch) -> Launch:
    """Run ``aegis_pre_spawn`` (chained, through ``pm.hook``), **fail-closed**: any exception refuses
    the spawn with ``SpawnRefused`` naming the plugin (a deliberate ``SpawnRefused`` keeps its reason)."""
    try:
        result: Launch = chain(pm, "aegis_pre_spawn", "launch", launch, fail_closed=True, spec=spec)
    except HookFailed as exc:
        if isinstance(exc.error, SpawnRefused):
            raise SpawnRefused(f"spawn refused by plugin {exc.plugin!r}: {exc.error}") from None
        raise SpawnRefused(f"spawn refused by plugin {exc.plugin!r}: aegis_pre_spawn failed: "
                           f"{type(exc.error).__name__}: {exc.error}") from None
    return result


def transcript_lines(events: list[Any]) -> list[str]:
    """A plain-text rendering of a session's events (CLI transcript, read_peer)."""
    out: list[str] = []
    for e in events:
        if isinstance(e, ev.UserTurn):
            out.append(f"› {e.text}")
        elif isinstance(e, ev.EnvelopeReceived):
            env = Envelope(e.sender, e.body, e.envelope_id, e.ts, e.task_id, e.status)
            out.append(env.header())
            out.extend(f"  {line}" for line in e.body.splitlines())
        elif isinstance(e, ev.AssistantText) and not e.partial:
            out.append(e.text)
        elif isinstance(e, ev.ToolUse):
            out.append(f"⏺ {e.name}({e.summary})")
        elif isinstance(e, ev.ToolResult):
            first = (e.text.strip().splitlines() or [""])[0]
            out.append(f"  └ {'error: ' if e.is_error else ''}{first[:200]}")
        elif isinstance(e, ev.AgentError):
            out.append(f"✗ {e.message}")
        elif isinstance(e, ev.TurnResult) and e.is_error:
            out.append(f"✗ turn ended: {e.error or e.stop_reason}")
        elif isinstance(e, ev.UnknownEvent):
            out.append(f"? {e.describe()}")
    return out
