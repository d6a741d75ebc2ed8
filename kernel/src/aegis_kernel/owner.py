"""One kernel per project: the owner lock that ``aegis`` (the TUI) and ``aegis serve`` share.

Whichever starts first takes ``.aegis/state/owner.lock`` — an exclusive ``flock`` held for the
owner's whole life, released by the OS however the owner ends (kill -9 included), so a stale lock
never blocks anyone. The file holds the owner's ``{"pid", "kind", "started"}`` for the others'
messages. The owner restores the sessions and serves the control socket; everything else attaches to
it as a client. Taking the lock happens before any session is restored, so two copies of an agent
never run.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from pathlib import Path
from typing import Any

from .control import ControlError

LOCK_NAME = "owner.lock"
KINDS = {"serve": "aegis serve", "tui": "the Aegis TUI", "local": "a local Aegis command"}


class ProjectOwned(ControlError):
    """Another process owns the project. ``owner`` is its ``{"pid", "kind", "started"}`` (may be partial)."""

    def __init__(self, project: Path, owner: dict[str, Any]) -> None:
        self.project = project
        self.owner = owner
        kind = owner.get("kind", "")
        who = f"{KINDS.get(kind, 'another Aegis')} (pid {owner.get('pid', '?')})"
        if kind == "serve":
            how = "use it (aegis sessions, aegis send, or attach the TUI with: aegis), or stop it: aegis stop"
        elif kind == "tui":
            how = ("use it (aegis sessions, aegis send …, or attach another TUI with: aegis), "
                   "or quit that TUI first (Ctrl+Q)")
        else:
            how = "wait for it to finish"
        super().__init__(f"{who} already owns {project}; {how}")


class OwnerLock:
    """The held lock. ``release()`` (or leaving the ``with``) lets the next owner in."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path = path
        self._fd: int | None = fd

    def release(self) -> None:
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> OwnerLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _open(state_dir: Path) -> int:
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    return os.open(state_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)


def _read(fd: int) -> dict[str, Any]:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096) or b"{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


PROBE_WAIT_S = 0.01  # between attempts while the lock is held by no live owner (see acquire)
PROBE_ATTEMPTS = 100


def _alive(pid: Any) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def acquire(state_dir: Path, kind: str, project: Path | None = None) -> OwnerLock:
    """Take the project for ``kind`` (``serve`` | ``tui`` | ``local``) or raise :class:`ProjectOwned`.

    A lock held while the record names no live process is a moment, not an owner — a
    :func:`current_owner` probe's shared lock, or an owner that has not written its record yet — so
    it is retried (every :data:`PROBE_WAIT_S`, at most about a second) before refusing."""
    fd = _open(state_dir)
    try:
        for attempt in range(PROBE_ATTEMPTS):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                owner = _read(fd)
                if _alive(owner.get("pid")) or attempt == PROBE_ATTEMPTS - 1:
                    raise ProjectOwned(project or state_dir.parent.parent, owner) from None
                time.sleep(PROBE_WAIT_S)
    except BaseException:
        os.close(fd)
        raise
    record = json.dumps({"pid": os.getpid(), "kind": kind, "started": time.time()}).encode()
    os.ftruncate(fd, 0)
    os.pwrite(fd, record, 0)
    return OwnerLock(state_dir / LOCK_NAME, fd)


def current_owner(state_dir: Path) -> dict[str, Any] | None:
    """The live owner's record, or None when nobody holds the project (never blocks, takes nothing)."""
    path = state_dir / LOCK_NAME
    if not path.exists():
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    except OSError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fd) or {"kind": "unknown"}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
