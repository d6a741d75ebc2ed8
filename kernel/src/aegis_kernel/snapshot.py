"""The session snapshot ``.aegis/state/sessions.json``: what a restart restores, what ``--resume`` finds.

Shape: ``{"v": 1, "sessions": [record…], "ended": [record…]}``; a record is ``{handle, agent,
log_id, spawned_by, driver_session_id, created_at}`` (strings; all but ``handle`` may be null).

Contracts:

- :meth:`SessionSnapshot.write` never blocks the caller: the file is written (temp file, fsync,
  rename, fsync of the folder) on the kernel's state writer thread, and several writes in a row
  coalesce into one of the newest content. Await the returned ticket to know it is on disk.
- Before each replace, the file being replaced is kept as ``sessions.json.bak`` (a hard link: no copy).
- :meth:`SessionSnapshot.load` never loses the snapshot to one bad byte: each record is checked at
  this edge and a bad one is skipped with a problem naming it (``sessions.json: sessions[2]: …``); a
  file that is not a snapshot at all is moved aside to ``sessions.json.corrupt-<UTC time>`` (so the
  next write cannot overwrite it) and ``sessions.json.bak`` is loaded instead.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .names import is_valid_handle
from .state import StateError, read_json, write_text_atomic
from .writer import StateWriter, Ticket

log = logging.getLogger("aegis.sessions")

__all__ = ["SessionSnapshot", "check_record"]

_OPTIONAL = ("agent", "log_id", "spawned_by", "driver_session_id", "created_at")
LISTS = ("sessions", "ended")


def check_record(rec: Any) -> str | None:
    """Why ``rec`` is not a session record, or None when it is one."""
    if not isinstance(rec, dict):
        return f"not an object ({type(rec).__name__})"
    handle = rec.get("handle")
    if not isinstance(handle, str) or not is_valid_handle(handle):
        return f"'handle' is not a valid handle ({handle!r})"
    for key in _OPTIONAL:
        if rec.get(key) is not None and not isinstance(rec[key], str):
            return f"session {handle}: '{key}' must be a string ({type(rec[key]).__name__})"
    log_id = rec.get("log_id")
    if log_id is not None and (not log_id or "/" in log_id or "\0" in log_id or log_id in (".", "..")):
        return f"session {handle}: 'log_id' is not a file name ({log_id!r})"
    return None


class SessionSnapshot:
    """``sessions.json`` of one project, written through ``writer``."""

    def __init__(self, path: Path, writer: StateWriter) -> None:
        self.path = path
        self.backup = path.with_name(path.name + ".bak")
        self._writer = writer
        self._latest: dict[str, Any] | None = None

    # --- read --------------------------------------------------------------------------------------

    def load(self) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        """``({"sessions": [...], "ended": [...]}, problems)``; see the module contracts."""
        data, why = self._read(self.path)
        if why is None:
            return self._records(data, self.path)
        problems = [f"{self.path.name}: {why}"]
        aside = self.path.with_name(f"{self.path.name}.corrupt-{datetime.now(timezone.utc):%Y%m%dT%H%M%SZ}")
        try:
            os.replace(self.path, aside)
            problems[0] += f" (kept as {aside.name})"
        except OSError as exc:
            problems[0] += f" (could not move it aside: {exc.strerror})"
        backup, bak_why = self._read(self.backup)
        if bak_why is None and backup:
            problems.append(f"{self.path.name}: using the previous snapshot {self.backup.name}")
            snapshot, more = self._records(backup, self.backup)
        else:
            snapshot, more = {k: [] for k in LISTS}, []
        for problem in problems:
            log.warning("session snapshot: %s", problem)
        return snapshot, problems + more

    @staticmethod
    def _read(path: Path) -> tuple[dict[str, Any], str | None]:
        try:
            data = read_json(path, {})
        except StateError as exc:
            return {}, str(exc).removeprefix(f"{path}: ")
        if not isinstance(data, dict):
            return {}, f"not a snapshot (a JSON {type(data).__name__})"
        for key in LISTS:
            if key in data and not isinstance(data[key], list):
                return {}, f"not a snapshot ('{key}' is a {type(data[key]).__name__})"
        return data, None

    @staticmethod
    def _records(data: dict[str, Any], path: Path) -> tuple[dict[str, list[dict[str, Any]]], list[str]]:
        out: dict[str, list[dict[str, Any]]] = {}
        problems = []
        for key in LISTS:
            out[key] = []
            for i, rec in enumerate(data.get(key) or []):
                why = check_record(rec)
                if why is None:
                    out[key].append(rec)
                else:
                    problems.append(f"{path.name}: {key}[{i}] skipped: {why}")
                    log.warning("session snapshot: %s", problems[-1])
        return out, problems

    # --- write -------------------------------------------------------------------------------------

    def write(self, sessions: list[dict[str, Any]], ended: list[dict[str, Any]]) -> Ticket:
        """Write the snapshot on the writer thread (the lists are not read again here: pass copies)."""
        self._latest = {"v": 1, "sessions": sessions, "ended": ended}
        return self._writer.submit(self._write_latest, key=(self, "write"))

    def _write_latest(self) -> None:
        data = self._latest
        text = json.dumps(data, ensure_ascii=False, separators=(",", ":")) + "\n"
        write_text_atomic(self.path, text, before_replace=self._keep_backup)

    def _keep_backup(self, tmp: Path) -> None:
        """The file about to be replaced becomes ``.bak`` (atomically: a link renamed over the old one)."""
        link = self.backup.with_name(f".{self.backup.name}.{secrets.token_hex(4)}.tmp")
        try:
            os.link(self.path, link)
        except FileNotFoundError:
            return
        except OSError as exc:  # a filesystem without hard links: no backup, the write goes on
            log.debug("no %s: %s", self.backup, exc)
            return
        try:
            os.replace(link, self.backup)
        except OSError:
            link.unlink(missing_ok=True)
