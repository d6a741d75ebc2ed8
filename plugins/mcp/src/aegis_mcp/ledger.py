"""The comms ledger: one JSONL record per MCP tool call, in ``.aegis/state/comms/<YYYY-MM-DD>.jsonl``.

Record (``"v": 1``)::

    {"v": 1, "ts": "2026-01-02T03:04:05.678Z", "call_id": "9f2c…", "from": "swift-otter",
     "tool": "aegis_handoff", "target": "calm-heron", "outcome": "ok", "duration_ms": 0.41}

``from`` is the caller's session handle (authenticated by its MCP token), ``target`` the value of the
call's ``target_handle`` / ``handle`` / ``queue`` argument when it has one (else null), ``outcome`` is
``ok`` (the handler returned), ``refused`` (an ``OperationError``: unknown tool, bad argument,
forbidden, or the handler refused — the record then carries the error's ``code``) or ``error`` (an
unexpected exception inside the handler; ``"code": "internal"``). Dates and timestamps are UTC.
Requests refused before any tool runs (unknown token, bad ``Origin``) are logged, not recorded.

Appending is one ``os.write`` of one line to a file opened with ``O_APPEND``: a few microseconds,
atomic with respect to other appenders for lines this short, no fsync per call (the ledger is an
audit trail, not a source of truth). The file descriptor is kept open and swapped at midnight.
Files are created ``0600`` (they name who talked to whom).

:meth:`CommsLedger.record` never raises: text that is not valid Unicode (a lone surrogate in a tool
name or target) is written with U+FFFD in its place, a value that cannot be serialized is written
with ``str()``, and a failing disk is logged once while calls go on.
"""

from __future__ import annotations

import json
import logging
import os
import re
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_SURROGATE = re.compile("[\ud800-\udfff]")

#: Arguments whose value names the call's target, in order of preference.
TARGET_ARGUMENTS: tuple[str, ...] = ("target_handle", "handle", "queue")


def call_target(arguments: Mapping[str, Any] | None) -> str | None:
    """The value of the first target-naming argument of a call, if any."""
    if not arguments or not isinstance(arguments, Mapping):
        return None
    for name in TARGET_ARGUMENTS:
        value = arguments.get(name)
        if value is not None and value != "":
            if isinstance(value, str):
                return value
            try:
                return str(value)[:200]
            except (ValueError, RecursionError):  # an absurd value: name its type only
                return f"<{type(value).__name__}>"
    return None


class CommsLedger:
    """Append-only writer for the comms ledger.

    ``path_for(date)`` returns the file for one UTC date (``YYYY-MM-DD``); with a kernel it is
    ``lambda d: kernel.state.path("comms", f"{d}.jsonl")`` (parents created).
    """

    def __init__(self, path_for: Callable[[str], Path]):
        self._path_for = path_for
        self._date: str | None = None
        self._fd: int | None = None
        self._broken = False

    def record(self, *, call_id: str, handle: str | None, tool: str, target: str | None, outcome: str,
               duration_ms: float, code: str | None = None, started: float | None = None) -> dict[str, Any]:
        """Append one record; never raises (a failing ledger is logged once, calls still succeed)."""
        now = time.time() if started is None else started
        secs = int(now)
        tm = time.gmtime(secs)
        date = f"{tm.tm_year:04d}-{tm.tm_mon:02d}-{tm.tm_mday:02d}"
        rec: dict[str, Any] = {
            "v": 1,
            "ts": f"{date}T{tm.tm_hour:02d}:{tm.tm_min:02d}:{tm.tm_sec:02d}.{int((now - secs) * 1000):03d}Z",
            "call_id": call_id,
            "from": handle,
            "tool": tool,
            "target": target,
            "outcome": outcome,
            "duration_ms": round(duration_ms, 3),
        }
        if code is not None:
            rec["code"] = code
        try:
            line = json.dumps(rec, ensure_ascii=False, separators=(",", ":"), default=str) + "\n"
            try:
                data = line.encode()
            except UnicodeEncodeError:  # a lone surrogate: keep the record, replace the character
                data = _SURROGATE.sub("\ufffd", line).encode()
            os.write(self._fd_for(date), data)
            self._broken = False
        except (OSError, ValueError, TypeError, RecursionError) as exc:
            if not self._broken:
                log.warning("comms ledger: cannot append (%s); further failures are not logged", exc)
            self._broken = True
        return rec

    def _fd_for(self, date: str) -> int:
        if self._fd is None or date != self._date:
            self.close()
            path = self._path_for(date)
            path.parent.mkdir(parents=True, exist_ok=True)
            self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
            self._date = date
        return self._fd

    def close(self) -> None:
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:  # pragma: no cover
                pass
            self._fd = None
            self._date = None
