"""Agent process groups outlive nothing: recorded while they run, reaped after a ``kill -9``.

Every agent runs in its own process group (:func:`aegis_kernel.process.open_agent_process`). A kernel
that stops normally closes them all; a kernel killed with SIGKILL cannot, and agents that ignore the
EOF on their stdin (or tool processes they left in their group) would run forever. So:

* While a kernel runs, :class:`PGroupRecorder` keeps one small append-only log per kernel process,
  ``.aegis/state/pgroups/<pid>-<start>.jsonl`` (0600, in a 0700 folder): a header line, then one
  line when a group starts and one when it is closed::

      {"v": 1, "owner": 4242, "owner_start": 918273}
      {"+": 4321, "start": 918999, "argv0": "claude"}
      {"-": 4321}

  ``start`` is the process start time (clock ticks since boot, field 22 of ``/proc/<pid>/stat``) of
  the group's leader, read when it is spawned. Each line is one ``O_APPEND`` write on a descriptor
  opened once (no fsync: a machine that crashes takes the agents with it); a torn last line (the
  kernel killed mid-write) costs only itself. Measured: rewriting a whole ``.json`` file per start and
  end cost ~0.5 ms of kernel CPU per queue worker; an append costs a few µs. The log is compacted
  when it has grown to many times the live groups, and removed when the kernel stops with none left.
* :func:`reap` — at the start of every kernel for the project (``open_kernel``) and on
  ``aegis stop`` — reads the files of **owners that are gone** (the pid is dead or now belongs to a
  process started at another time) and, for each recorded group still alive, sends SIGTERM to the
  group, waits up to ``grace`` seconds and sends SIGKILL to what is left; then deletes the file. The
  files of live kernels (another ``aegis`` of this project, or of this process) are never touched.

A recorded group counts as still ours only when its leader's pid shows the recorded start time
(pids are reused; a reused pid is never signalled). When the leader has exited but members of its
group remain (tool processes), they are ours only if they are in the leader's session and group
(``setsid`` made them so) and started no earlier than the leader; anything else is left alone.

Linux only (``/proc``); elsewhere nothing is recorded and nothing is reaped. The recorder a spawn
uses is :data:`current` (a context variable set by ``open_kernel`` for its tasks): drivers need not
pass anything, and kernels of several projects in one process keep separate records.
"""

from __future__ import annotations

import contextvars
import json
import logging
import os
import signal
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs
import trio

log = logging.getLogger(__name__)

FOLDER = "pgroups"

#: the recorder of the kernel running the current task (None outside a kernel: nothing is recorded)
current: contextvars.ContextVar[PGroupRecorder | None] = contextvars.ContextVar("aegis_pgroups", default=None)

__all__ = ["PGroupRecorder", "Reaped", "current", "reap", "reap_sync", "proc_stat", "start_time", "start", "stop"]


@attrs.frozen
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the reaper needs."""

    pid: int
    state: str
    pgrp: int
    session: int
    start: int

    @property
    def dead(self) -> bool:
        return self.state in ("Z", "X", "x")


@attrs.frozen
class Reaped:
    """A recorded group found alive after its kernel died, and what it took to end it."""

    pgid: int
    argv0: str
    killed: bool  # SIGKILL was needed (SIGTERM was not enough within the grace period)
    gone: bool  # no live member is left


def proc_stat(pid: int) -> ProcStat | None:
    """``/proc/<pid>/stat`` parsed, or None (no such process, or no ``/proc``)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    try:
        rest = data[data.rindex(b")") + 2:].split()  # comm may hold spaces and parentheses
        return ProcStat(pid=pid, state=rest[0].decode(), pgrp=int(rest[2]), session=int(rest[3]),
                        start=int(rest[19]))
    except (ValueError, IndexError):
        return None


def start_time(pid: int) -> int | None:
    """The start time of ``pid`` (clock ticks since boot), or None when it is not running."""
    st = proc_stat(pid)
    return None if st is None or st.dead else st.start


class PGroupRecorder:
    """Records the process groups one kernel process starts (see the module docstring).

    Never raises: a state folder that cannot be written is logged once, and the spawn goes on (the
    group then simply cannot be reaped after a ``kill -9``).
    """

    COMPACT_AT = 512  # lines: past this (and 4× the live groups) the log is rewritten with the live ones

    def __init__(self, state_root: Path | str):
        self.owner = os.getpid()
        self.owner_start = start_time(self.owner)
        self.folder = Path(state_root) / FOLDER
        self.path = self.folder / f"{self.owner}-{self.owner_start}.jsonl"
        self.groups: dict[int, dict[str, Any]] = {}
        self._fd: int | None = None
        self._lines = 0
        self._warned = False
        self._token: contextvars.Token[PGroupRecorder | None] | None = None

    @property
    def enabled(self) -> bool:
        return self.owner_start is not None

    def started(self, pgid: int, argv: Sequence[str] = ()) -> None:
        """A new group led by ``pgid`` (our child, not yet reaped: its pid cannot be reused yet)."""
        start = start_time(pgid) if self.enabled else None
        if start is None:
            return
        group = {"pgid": pgid, "start": start, "argv0": os.path.basename(argv[0]) if argv else ""}
        self.groups[pgid] = group
        self._append({"+": pgid, "start": start, "argv0": group["argv0"]})

    def ended(self, pgid: int) -> None:
        """The group has been closed (signalled and its leader reaped)."""
        if self.groups.pop(pgid, None) is not None:
            self._append({"-": pgid})

    def close(self) -> None:
        """The kernel stops. Its groups have been closed (each :meth:`ended`), so the log is removed;
        a group that could not be closed stays recorded, for a later kernel to reap once this
        process has exited."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if not self.groups:
            try:
                self.path.unlink(missing_ok=True)
            except OSError:
                pass

    def _append(self, record: dict[str, Any]) -> None:
        try:
            if self._fd is None or (self._lines > self.COMPACT_AT and self._lines > 4 * len(self.groups)):
                self._rewrite()
            else:
                assert self._fd is not None
                os.write(self._fd, json.dumps(record, separators=(",", ":")).encode() + b"\n")
                self._lines += 1
        except OSError as exc:
            if not self._warned:
                log.warning("cannot record agent process groups in %s (%s): a serve killed with "
                            "SIGKILL may leave agents running", self.folder, exc)
                self._warned = True

    def _rewrite(self) -> None:
        """Start the log afresh with the header and the live groups (first use, or compaction)."""
        self.folder.mkdir(mode=0o700, exist_ok=True)  # in the state folder (0700), never its parents
        lines = [{"v": 1, "owner": self.owner, "owner_start": self.owner_start},
                 *({"+": g["pgid"], "start": g["start"], "argv0": g["argv0"]} for g in self.groups.values())]
        data = b"".join(json.dumps(x, separators=(",", ":")).encode() + b"\n" for x in lines)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | getattr(os, "O_CLOEXEC", 0))
        self._lines = len(lines)


def read_log(data: bytes) -> tuple[int, Any, list[dict[str, Any]]]:
    """``(owner, owner_start, live groups)`` folded from a recorder's log; a bad line costs only itself.
    Raises ``ValueError`` when the header is unreadable."""
    lines = data.splitlines()
    if not lines:
        raise ValueError("empty")
    header = json.loads(lines[0])
    owner, owner_start = int(header["owner"]), header["owner_start"]
    groups: dict[int, dict[str, Any]] = {}
    for line in lines[1:]:
        try:
            rec = json.loads(line)
        except ValueError:
            continue  # torn by a kill mid-write
        if not isinstance(rec, dict):
            continue
        if isinstance(rec.get("+"), int) and isinstance(rec.get("start"), int) and rec["+"] > 1:
            groups[rec["+"]] = {"pgid": rec["+"], "start": rec["start"], "argv0": str(rec.get("argv0") or "")}
        elif isinstance(rec.get("-"), int):
            groups.pop(rec["-"], None)
    return owner, owner_start, list(groups.values())


# --- reaping ----------------------------------------------------------------------------------------


def _orphaned_files(folder: Path) -> list[tuple[Path, list[dict[str, Any]]]]:
    """Record files whose owner process is gone, with their groups (unreadable files: no groups)."""
    found = []
    try:
        entries = sorted(folder.glob("*.jsonl"))
    except OSError:
        return []
    for path in entries:
        try:
            owner, owner_start, groups = read_log(path.read_bytes())
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("pgroups: skipping unreadable record %s (%s)", path, exc)
            continue
        if start_time(owner) == owner_start:  # that kernel still runs: its groups are its business
            continue
        found.append((path, groups))
    return found


def _live_members(pgid: int, start: int) -> list[int]:
    """Pids of the live processes of recorded group ``pgid`` whose leader started at ``start``
    (empty when the group is gone or the pid was reused by someone else's group). Only our own
    processes count: a leaderless group of another user's is never ours, whatever its shape."""
    leader = proc_stat(pgid)
    if leader is not None and leader.start != start:
        return []  # the pid now belongs to another process: never touch it
    members = []
    uid = os.geteuid()
    try:
        pids = [int(name) for name in os.listdir("/proc") if name.isdigit()]
    except OSError:
        return []
    for pid in pids:
        st = proc_stat(pid)
        if st is None or st.dead or st.pgrp != pgid:
            continue
        if leader is None and (st.session != pgid or st.start < start):
            continue  # leader gone: only processes of its own session, born after it
        if _owner(pid) != uid:
            continue  # another user's (a reused pid): a root serve must never signal it
        members.append(pid)
    return members


def _owner(pid: int) -> int | None:
    """The uid owning process ``pid``, or None when it is gone."""
    try:
        return os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return None


def _signal(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _wait_gone(groups: list[dict[str, Any]], reaped: list[Reaped], grace: float, poll: float, *,
                     killed: bool) -> list[dict[str, Any]]:
    """Poll until ``groups`` have no live member (each appended to ``reaped``) or ``grace`` runs
    out; returns the groups still alive."""
    pending = list(groups)
    with trio.move_on_after(grace):
        while pending:
            still = []
            for group in pending:
                if await trio.to_thread.run_sync(_live_members, group["pgid"], group["start"]):
                    still.append(group)
                else:
                    reaped.append(Reaped(group["pgid"], group.get("argv0") or "", killed=killed, gone=True))
            pending = still
            if pending:
                await trio.sleep(poll)
    return pending


async def reap(state_root: Path | str, *, grace: float = 2.0, poll: float = 0.05) -> list[Reaped]:
    """End the recorded groups of kernels that died without closing them (see the module docstring).

    Returns what was found alive. Never raises for one bad record; ``/proc`` is scanned in a worker
    thread. Takes about ``grace`` seconds at most (plus a moment) when a group ignores SIGTERM, no
    time at all when nothing is recorded.
    """
    folder = Path(state_root) / FOLDER
    if not folder.is_dir():
        return []
    files = await trio.to_thread.run_sync(_orphaned_files, folder)
    if not files:
        return []
    alive: list[dict[str, Any]] = []
    for _, groups in files:
        for group in groups:
            if await trio.to_thread.run_sync(_live_members, group["pgid"], group["start"]):
                alive.append(group)
    for group in alive:
        log.warning("reaping agent process group %d (%s) left by a kernel that did not stop cleanly",
                    group["pgid"], group.get("argv0") or "?")
        _signal(group["pgid"], signal.SIGTERM)
    reaped: list[Reaped] = []
    pending = await _wait_gone(alive, reaped, grace, poll, killed=False)
    for group in pending:  # SIGTERM was not enough: re-check the identity, then SIGKILL
        if await trio.to_thread.run_sync(_live_members, group["pgid"], group["start"]):
            _signal(group["pgid"], signal.SIGKILL)
    pending = await _wait_gone(pending, reaped, grace, poll, killed=True)
    reaped.extend(Reaped(g["pgid"], g.get("argv0") or "", killed=True, gone=False) for g in pending)
    for path, _ in files:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("pgroups: cannot remove %s (%s)", path, exc)
    return reaped


def reap_sync(state_root: Path | str, *, grace: float = 2.0) -> list[Reaped]:
    """:func:`reap` for synchronous callers (the CLI), in a trio run of its own."""
    return trio.run(lambda: reap(state_root, grace=grace))


# --- the kernel's side ------------------------------------------------------------------------------


async def start(state_root: Path | str) -> PGroupRecorder:
    """At kernel start: reap what killed kernels of this project left, then record this kernel's
    groups (:data:`current` is set for the calling task and every task it spawns from now on)."""
    await reap(state_root)
    recorder = PGroupRecorder(state_root)
    recorder._token = current.set(recorder)
    return recorder


def stop(recorder: PGroupRecorder) -> None:
    """At kernel stop (after its agents are closed): forget the record, unset :data:`current`."""
    recorder.close()
    token, recorder._token = recorder._token, None
    if token is not None:
        try:
            current.reset(token)
        except ValueError:  # reset from another context (a generator finalised late): nothing to undo
            pass
