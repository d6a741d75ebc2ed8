"""One run's journal: ``.aegis/state/workflows/runs/<run_id>.jsonl`` (a kernel :class:`~aegis_kernel.Journal`).

Records (each ``{"v": 1, "event": …, "run_id": …, "at": …}``):

``started``   ``name``, ``kwargs``, ``caller`` (the handle called back, or None), ``callback``, ``by``,
              ``started_at`` (epoch seconds)
``begin``     a step that waits durably has started: ``step``, ``verb``, ``key`` and what it needs to
              go on after a restart (``deadline`` of a sleep or a question, the ``question`` itself)
``step``      a step's outcome, written before the workflow continues: ``step`` (its id: ``3``, or
              ``4.1.0`` inside branch 1 of the parallel step 4), ``verb``, ``key`` (what it was called
              with, to notice a diverging replay), ``desc``, and ``result`` or ``error``
``session``   a session the run spawned: ``handle`` and its agent's ``driver_session_id`` (what a
              resume reopens); ``closed: true`` once the run closed it
``finished``  ``status`` ok | error | cancelled, ``result`` or ``error``, ``callback_envelope``

Appends go through the kernel's state writer (``fsync="batch"``: the line is written before
:meth:`RunLog.append` returns, so a killed process loses nothing).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aegis_kernel import Journal, utc_now

FOLDER = ("workflows", "runs")


class RunLog:
    """The journal of one run, and what replaying it found."""

    def __init__(self, path: Path, *, writer: Any = None) -> None:
        self.journal = Journal(path, key="run_id", fsync="batch", writer=writer)
        self.run_id = path.stem
        self.started: dict[str, Any] | None = None
        self.steps: dict[str, dict[str, Any]] = {}
        self.begun: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}  # handle → {profile, log_id, driver_session_id, closed}
        self.finished: dict[str, Any] | None = None
        self.problems: list[str] = []
        self.records: list[dict[str, Any]] = []

    @classmethod
    def open(cls, path: Path, *, writer: Any = None) -> RunLog:
        """Replay the journal at ``path`` (file work: call it off the event loop for long journals)."""
        log = cls(path, writer=writer)
        result = log.journal.replay()
        log.problems = [f"{path.name}: {p}" for p in result.problems]
        for rec in result.records:
            log._apply(rec)
        return log

    def append(self, record: dict[str, Any]) -> dict[str, Any]:
        rec = {"run_id": self.run_id, "at": utc_now(), **record}
        self.journal.append(rec)
        self._apply(rec)
        return rec

    def close(self) -> None:
        self.journal.close()

    def _apply(self, rec: dict[str, Any]) -> None:
        self.records.append(rec)
        kind = rec.get("event")
        if kind == "started":
            self.started = rec
        elif kind == "step" and isinstance(rec.get("step"), str):
            self.steps[rec["step"]] = rec
        elif kind == "begin" and isinstance(rec.get("step"), str):
            self.begun[rec["step"]] = rec
        elif kind == "session" and isinstance(rec.get("handle"), str):
            entry = self.sessions.setdefault(rec["handle"], {})
            entry.update({k: v for k, v in rec.items() if k not in ("v", "event", "run_id", "at", "handle")})
        elif kind == "finished":
            self.finished = rec
