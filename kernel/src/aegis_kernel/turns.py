"""The turn primitive: run one turn and await its outcome.

Queue workers, group members, workflow steps and scheduled jobs all do the same thing: give an agent
a turn, wait for its *whole* final message, usage and cost, and know whether it went well. This module
is that, once:

- :func:`run_turn` sends ``text`` to a live session and awaits the end of the turn that carries it;
- :func:`open_transient_turn` spawns a transient session of a profile (never restored by a restart)
  whose opening turn is ``prompt``, yields a :class:`Turn` to await, and closes the session when the
  block exits — normally, on error, on a deadline or on cancellation — so no agent process is left
  behind; :func:`run_transient_turn` is the one-call form.

Every wait has a deadline (``timeout``, a trio cancel scope on the run's clock, so trio's
``MockClock`` drives it). The outcome is a :class:`TurnOutcome` with ``status``:

``ok``         the turn ended normally; ``text`` is its whole final message.
``error``      the turn ended with an error, the agent failed (or never started), or the session was
               closed before it answered; ``error`` says which.
``cancelled``  :meth:`Turn.cancel` was called, or the turn was interrupted (stop reason ``cancelled``).
``timed_out``  the deadline passed first.

A caller's own cancellation (an enclosing cancel scope) propagates as trio's ``Cancelled`` as usual;
:func:`run_turn` interrupts the turn on the way out and a transient session is closed.
"""

from __future__ import annotations

import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import trio
from attrs import frozen

from . import events as ev
from .delivery import DeliveryError, Envelope

if TYPE_CHECKING:
    from .kernel import Kernel
    from .sessions import Session

__all__ = ["Turn", "TurnOutcome", "TurnStatus", "open_transient_turn", "run_transient_turn", "run_turn"]

TurnStatus = Literal["ok", "error", "cancelled", "timed_out"]
CLOSE_GRACE = 15.0  # at most this long to close a transient session (its driver kills the process sooner)

# ``stop_reason`` of outcomes that did not come from the agent's own end of turn
START_FAILED = "start_failed"  # the agent failed before it was ready (never started)
AGENT_FAILED = "agent_failed"  # the agent process failed while the turn was awaited
CLOSED = "closed"  # the session was closed before the turn ended
DEADLINE = "deadline"  # the deadline passed
CANCELLED = "cancelled"  # Turn.cancel()


@frozen
class TurnOutcome:
    """How a turn ended.

    ``text``: the turn's whole final message (for ``ok`` and a turn that ended with an error), else the
    session's last final message (may be empty). ``usage``/``cost_usd``: this turn's, when the agent
    ended the turn (a ``TurnResult``; falling back to the session's totals where the agent reported
    none), else None. ``stop_reason``: the agent's (``end_turn``, ``error``, ``cancelled``, …) or one of
    this module's :data:`START_FAILED`, :data:`AGENT_FAILED`, :data:`CLOSED`, :data:`DEADLINE`,
    :data:`CANCELLED`. ``error``: a sentence saying what went wrong; ``detail``: the agent's or
    session's own error text, unprefixed. ``model``/``provider``: what ran the turn (for pricing).
    """

    status: TurnStatus
    text: str = ""
    usage: ev.TokenUsage | None = None
    cost_usd: float | None = None
    error: str | None = None
    detail: str | None = None
    stop_reason: str | None = None
    handle: str | None = None
    model: str | None = None
    provider: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class Turn:
    """One awaited turn of ``session``: the turn that carries envelope ``envelope_id`` (any next turn
    when None). Create it *before* the envelope is delivered (it listens to the session's events);
    :func:`run_turn` and :func:`open_transient_turn` do. Synchronous listener work only."""

    def __init__(self, session: Session, envelope_id: str | None = None) -> None:
        self.session = session
        self.envelope_id = envelope_id
        self.outcome: TurnOutcome | None = None
        self.close_reason = "closed"  # what a transient session's close records (open_transient_turn)
        self._armed = False  # our envelope's turn has started
        self._started = session.state not in ("starting", "error")  # the agent has been ready
        self._result: ev.TurnResult | None = None
        self._done = trio.Event()
        self._unsubscribe = session.subscribe(self._on_event)
        if session.state in ("error", "closed"):  # it ended before we were listening
            self._ended_without_turn(session, session.state)

    # --- public ------------------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.outcome is not None

    async def wait(self, timeout: float | None = None) -> TurnOutcome:
        """The outcome, once the turn ends (at once if it has); ``timed_out`` after ``timeout`` seconds.

        A timeout does not stop the agent: interrupt or close the session (the helpers of this module
        do)."""
        if self.outcome is None:
            with trio.move_on_after(math.inf if timeout is None else timeout):
                await self._done.wait()
            if self.outcome is None:
                self._set(TurnOutcome(
                    "timed_out", text=self.session.final_text or "", stop_reason=DEADLINE,
                    error=f"the turn did not finish within {_fmt_s(timeout)}", **self._who()))
        assert self.outcome is not None
        return self.outcome

    def cancel(self, reason: str = "cancelled") -> None:
        """End the wait now with status ``cancelled`` (no-op once ended). Does not touch the agent."""
        if self.outcome is None:
            self._set(TurnOutcome("cancelled", text=self.session.final_text or "", stop_reason=CANCELLED,
                                  error=reason, **self._who()))

    def stop_listening(self) -> None:
        self._unsubscribe()

    # --- the session's events (synchronous) ----------------------------------------------------------

    def _on_event(self, session: Session, event: Any) -> None:
        if self.outcome is not None:
            return
        if isinstance(event, ev.TurnResult):
            if self._armed:
                self._result = event
        elif isinstance(event, ev.StateChanged):
            if event.new == "ready":
                self._started = True
                if self._armed and self._result is not None:
                    self._ended(session, self._result)
            elif event.new == "working" and not self._armed:
                self._armed = self.envelope_id is None or any(
                    env.id == self.envelope_id for env in session._turn_envelopes)
            elif event.new in ("error", "closed"):
                self._ended_without_turn(session, event.new)

    def _ended(self, session: Session, result: ev.TurnResult) -> None:
        metrics = session.metrics
        usage = result.usage if result.usage is not None else metrics.total
        cost = result.cost_usd if result.cost_usd is not None else metrics.cost_usd
        common: dict[str, Any] = {"text": session.final_text, "usage": usage, "cost_usd": cost,
                                  "stop_reason": result.stop_reason, **self._who()}
        if result.stop_reason == "cancelled":
            self._set(TurnOutcome("cancelled", error=result.error or "the turn was interrupted",
                                  detail=result.error, **common))
        elif result.is_error or result.stop_reason == "error":
            self._set(TurnOutcome("error", error=result.error or f"the turn ended with {result.stop_reason}",
                                  detail=result.error, **common))
        else:
            self._set(TurnOutcome("ok", **common))

    def _ended_without_turn(self, session: Session, state: str) -> None:
        text = session.final_text or ""
        if state == "error":
            stage = AGENT_FAILED if self._started else START_FAILED
            detail = session.error
            error = (f"the agent failed: {detail or 'unknown error'}" if self._started
                     else detail or "the agent failed to start")
        else:
            stage, detail = CLOSED, session._close_reason or "shutdown"
            error = f"the session was closed before it answered ({detail})"
        self._set(TurnOutcome("error", text=text, error=error, detail=detail, stop_reason=stage, **self._who()))

    def _set(self, outcome: TurnOutcome) -> None:
        self.outcome = outcome
        self._unsubscribe()
        self._done.set()

    def _who(self) -> dict[str, Any]:
        session = self.session
        return {"handle": session.handle, "provider": session.provider,
                "model": getattr(session.profile, "model", None) or _init_model(session)}


async def run_turn(session: Session, text: str, *, sender: str = "user", timeout: float | None = None,
                   task_id: str | None = None) -> TurnOutcome:
    """Send ``text`` to ``session`` (as ``sender``, through the delivery channel: buffered behind a
    running turn like any envelope) and await the end of the turn that carries it.

    On ``timed_out``, and when the caller is cancelled, the turn is interrupted (the session stays).
    A session that cannot take the envelope gives an ``error`` outcome."""
    from .sessions import SessionError

    envelope = Envelope.new(sender, text, task_id=task_id)
    turn = Turn(session, envelope.id)
    try:
        try:
            session.kernel.deliver(session.handle, envelope)
        except (DeliveryError, SessionError) as exc:
            turn.stop_listening()
            return TurnOutcome("error", error=f"the session cannot take the turn: {exc}", detail=str(exc),
                               stop_reason=START_FAILED, **turn._who())
        outcome = await turn.wait(timeout)
    except BaseException:
        turn.cancel("the caller was cancelled")
        session.interrupt()
        raise
    if outcome.status == "timed_out":
        session.interrupt()
    return outcome


@asynccontextmanager
async def open_transient_turn(kernel: Kernel, agent: str | None, prompt: str, *, sender: str = "user",
                              handle: str | None = None, cwd: Path | None = None, transcript: str | None = None,
                              log_id: str | None = None, resume_id: str | None = None,
                              close_reason: str = "transient turn done",
                              close_grace: float = CLOSE_GRACE) -> AsyncIterator[Turn]:
    """Spawn a transient session of profile ``agent`` whose opening turn is ``prompt`` and yield its
    :class:`Turn` (``await turn.wait(timeout)``; ``turn.session`` is the session).

    The session is never restored by a restart (``restorable=False``); ``transcript``/``log_id``/
    ``resume_id``/``handle``/``cwd`` are :meth:`SessionManager.spawn
    <aegis_kernel.sessions.SessionManager.spawn>`'s. When the block exits — however it exits — the
    session is closed (shielded from cancellation; ``Session.close`` terminates the process and kills
    it after the driver's grace; ``close_grace`` bounds the whole close) with ``turn.close_reason``
    (``close_reason`` unless the block changed it), so no agent process outlives the block. Spawn
    refusals (``SessionError``, ``ValueError``) propagate before anything starts.
    """
    with trio.CancelScope(shield=True):  # spawn returns at once; cancelled inside it, the session would leak
        session = await kernel.sessions.spawn(agent, handle=handle, spawned_by=None, cwd=cwd, restorable=False,
                                              transcript=transcript, log_id=log_id, resume_id=resume_id)
    turn: Turn | None = None
    try:
        envelope = Envelope.new(sender, prompt)
        turn = Turn(session, envelope.id)
        turn.close_reason = close_reason
        if not turn.done:
            try:
                kernel.deliver(session.handle, envelope)
            except Exception as exc:  # noqa: BLE001 - the session went away under us: an error outcome
                turn._set(TurnOutcome("error", error=f"the session cannot take the turn: {exc}", detail=str(exc),
                                      stop_reason=START_FAILED, **turn._who()))
        yield turn
    finally:
        # shielded: a cancelled caller still waits for the process to go (Session.close terminates, then
        # kills it after the driver's grace); close_grace only bounds a close that hangs elsewhere
        with trio.CancelScope(shield=True), trio.move_on_after(close_grace):
            await session.close(turn.close_reason if turn is not None else close_reason)


async def run_transient_turn(kernel: Kernel, agent: str | None, prompt: str, *, timeout: float | None = None,
                             **spawn: Any) -> TurnOutcome:
    """:func:`open_transient_turn` + :meth:`Turn.wait`: the outcome of a transient session's opening
    turn; the session is closed (its process gone) before this returns."""
    async with open_transient_turn(kernel, agent, prompt, **spawn) as turn:
        return await turn.wait(timeout)


def _init_model(session: Session) -> str | None:
    for event in session.history[:20]:
        if isinstance(event, ev.SystemInit) and event.model:
            return event.model
    return None


def _fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "∞"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"
