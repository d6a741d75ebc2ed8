"""A process on a pseudo-terminal, owned by trio: spawn, non-blocking read, write, resize, close.

Contracts:

- :func:`spawn` opens a PTY pair, starts ``argv`` as the leader of a new session whose controlling
  terminal is the PTY (``setsid -c`` from util-linux where present, else ``setsid()`` +
  ``TIOCSCTTY`` in the child), and keeps only the master side (non-blocking) in this process.
- :meth:`PtyProcess.read` waits for readiness with ``trio.lowlevel.wait_readable`` — never a blocking
  read, never a thread — so it is cancellable at any time; it returns ``b""`` at end of file (every
  holder of the PTY's other side is gone: Linux reports ``EIO``).
- :meth:`PtyProcess.close` ends the whole session: ``SIGHUP`` to every process group of the shell's
  session (a job running in its own group included), then ``SIGTERM``, then ``SIGKILL``, waiting
  ``grace`` seconds (trio time) between steps only while something is still alive; then the master fd
  is closed. It returns in bounded time whatever the children do (a child ignoring ``SIGHUP`` or
  ``SIGTERM`` is killed by ``SIGKILL``), and is safe to call twice.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import signal
import struct
import termios
from collections.abc import Mapping
from pathlib import Path

import trio

DEFAULT_SIZE = (24, 80)


def _set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def _ctty() -> None:  # pragma: no cover - runs in the child between fork and exec
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def session_groups(sid: int) -> set[int]:
    """The process groups of the processes whose session is ``sid`` (Linux ``/proc``)."""
    groups: set[int] = set()
    try:
        pids = os.listdir("/proc")
    except OSError:
        return groups
    for pid in pids:
        if not pid.isdigit():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_bytes()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        # fields: state ppid pgrp session ...
        if len(fields) > 3 and int(fields[3]) == sid and fields[0] != b"Z":
            groups.add(int(fields[2]))
    return groups


class PtyProcess:
    """One process on a PTY (see the module docstring). Build with :func:`spawn`."""

    def __init__(self, process: trio.Process, master: int) -> None:
        self.process = process
        self.master = master
        self.pid = process.pid
        self._closed = False
        self._write_lock = trio.Lock()

    @property
    def returncode(self) -> int | None:
        return self.process.returncode

    async def read(self, max_bytes: int = 65536) -> bytes:
        """The next bytes the process wrote; ``b""`` at end of file (see the module docstring)."""
        while True:
            if self._closed:
                return b""
            try:
                return os.read(self.master, max_bytes)
            except BlockingIOError:
                pass
            except OSError as exc:
                if exc.errno in (errno.EIO, errno.EBADF):
                    return b""
                raise
            try:
                await trio.lowlevel.wait_readable(self.master)
            except trio.ClosedResourceError:
                return b""

    async def write(self, data: bytes) -> None:
        """Write all of ``data`` (waiting for room without blocking the event loop)."""
        async with self._write_lock:
            view = memoryview(data)
            while view:
                if self._closed:
                    raise BrokenPipeError("the terminal is closed")
                try:
                    n = os.write(self.master, view)
                    view = view[n:]
                except BlockingIOError:
                    try:
                        await trio.lowlevel.wait_writable(self.master)
                    except trio.ClosedResourceError:
                        raise BrokenPipeError("the terminal is closed") from None

    def resize(self, rows: int, cols: int) -> None:
        """Set the window size (the kernel sends ``SIGWINCH`` to the foreground group)."""
        if not self._closed:
            _set_size(self.master, rows, cols)

    def _signal_all(self, sig: int) -> bool:
        """Send ``sig`` to every process group of the session; True if any was alive."""
        groups = session_groups(self.pid)
        if self.process.returncode is None:
            groups.add(self.pid)
        sent = False
        for pgid in groups:
            try:
                os.killpg(pgid, sig)
                sent = True
            except (ProcessLookupError, PermissionError):
                pass
        return sent

    async def close(self, grace: float = 1.0) -> int | None:
        """End the session (SIGHUP → SIGTERM → SIGKILL) and release the PTY; the shell's exit status."""
        if not self._closed:
            with trio.CancelScope(shield=True):
                for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGKILL):
                    if not self._signal_all(sig):
                        break
                    with trio.move_on_after(grace):
                        while self.process.returncode is None or session_groups(self.pid):
                            await self._poll_exit()
                    if self.process.returncode is not None and not session_groups(self.pid):
                        break
                with trio.move_on_after(grace):
                    await self.process.wait()
                self._closed = True
                trio.lowlevel.notify_closing(self.master)
                os.close(self.master)
        return self.process.returncode

    async def _poll_exit(self) -> None:
        with trio.move_on_after(0.02):
            await self.process.wait()
        if self.process.returncode is not None:
            await trio.sleep(0.02)  # other members of the session are not our children: poll /proc


async def spawn(argv: list[str], *, cwd: str | os.PathLike[str], env: Mapping[str, str],
                size: tuple[int, int] = DEFAULT_SIZE) -> PtyProcess:
    """Start ``argv`` on a new PTY (see the module docstring)."""
    master, slave = os.openpty()
    try:
        _set_size(slave, *size)
        os.set_blocking(master, False)
        fcntl.fcntl(master, fcntl.F_SETFD, fcntl.FD_CLOEXEC)
        setsid = shutil.which("setsid")
        options: dict[str, object] = {}
        if setsid:
            argv = [setsid, "-c", *argv]
        else:
            options["preexec_fn"] = _ctty
        process = await trio.lowlevel.open_process(argv, stdin=slave, stdout=slave, stderr=slave, cwd=os.fspath(cwd),
                                                   env=dict(env), close_fds=True, **options)
    except BaseException:
        os.close(master)
        raise
    finally:
        os.close(slave)
    return PtyProcess(process, master)
