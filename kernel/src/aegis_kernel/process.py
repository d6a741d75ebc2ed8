"""A trio subprocess helper shared by every driver.

:func:`open_agent_process` starts an agent CLI in its **own process group** with stdin/stdout/stderr
pipes and returns an :class:`AgentSubprocess`:

- :meth:`AgentSubprocess.send_line` writes one line (a ``\\n`` is appended); concurrent senders are
  serialised; a closed or broken stdin raises :class:`AgentStdinClosed` naming the process.
- :meth:`AgentSubprocess.lines` yields stdout lines (without the ``\\n``), read in bounded chunks, up to
  :attr:`AgentSubprocess.max_frame_bytes` each (default :data:`MAX_FRAME_BYTES`, 64 MiB: a 20 MB
  frame is one line). A longer frame ends the stream at once, without holding more than the cap:
  :attr:`AgentSubprocess.frame_overflow` says so and :meth:`AgentSubprocess.death_event` names the limit,
  so the session fails with that clear error. A truncated last line at EOF is yielded as-is. One consumer
  only.
- stderr is drained by a background task (in the nursery given to :func:`open_agent_process`) into a
  64 KiB ring buffer: :meth:`AgentSubprocess.stderr_tail`.
- :meth:`AgentSubprocess.close` is polite (stdin EOF) → SIGTERM to the group → SIGKILL to the group,
  ``grace`` seconds between steps; it never hangs much past ``2 × grace``, is safe to call twice
  (the second call waits for the first) and reaps the process. It runs shielded from cancellation.
- A failed exec (binary missing, not executable, bad cwd) raises :class:`SpawnFailed` with the argv
  and the OS error, at once.
- Inside a kernel, each group is recorded (leader pid and start time) by the kernel's
  :class:`aegis_kernel.reaper.PGroupRecorder` from spawn until :meth:`AgentSubprocess.close`, so
  that a kernel killed with SIGKILL leaves no group the next one cannot reap.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path

import trio

from . import reaper
from .events import AgentError

STDERR_RING_BYTES = 64 * 1024
READ_CHUNK = 256 * 1024
MAX_FRAME_BYTES = 64 * 1024 * 1024  # one stdout line of an agent; read when a process starts (tests lower it)

__all__ = [
    "AgentProcessError", "SpawnFailed", "AgentStdinClosed", "AgentSubprocess", "SubprocessAgent",
    "open_agent_process",
    "STDERR_RING_BYTES", "MAX_FRAME_BYTES",
]


class AgentProcessError(Exception):
    """Base class of the errors this module raises."""


class SpawnFailed(AgentProcessError):
    """The agent binary could not be started (missing, not executable, bad cwd)."""

    def __init__(self, argv: Sequence[str], error: OSError, cwd: str | os.PathLike[str] | None = None):
        self.argv = tuple(argv)
        self.error = error
        self.cwd = cwd
        reason = error.strerror or str(error)
        where = f" (cwd {cwd})" if cwd is not None else ""
        target = f": {error.filename}" if getattr(error, "filename", None) else ""
        super().__init__(f"cannot start agent {_shell(self.argv)}{where}: {reason}{target}")


class AgentStdinClosed(AgentProcessError):
    """Writing to the agent failed: its stdin is closed (it exited, or we closed it)."""


def _size(n: int) -> str:
    """``64 MiB`` / ``512 KiB`` / ``100 bytes``."""
    for unit, scale in (("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale:
            return f"{n / scale:.4g} {unit}"
    return f"{n} bytes"


def _shell(argv: Sequence[str]) -> str:
    import shlex

    return " ".join(shlex.quote(a) for a in argv)


class AgentSubprocess:
    """A running agent process; see the module docstring for the contract."""

    def __init__(self, proc: trio.Process, argv: Sequence[str]) -> None:
        self._proc = proc
        self.argv: tuple[str, ...] = tuple(argv)
        self.pid: int = proc.pid
        self._pgid = proc.pid  # start_new_session=True: the child leads its own group
        self._send_lock = trio.Lock()
        self._stderr = bytearray()
        self._stderr_done = trio.Event()
        self._drain_scope = trio.CancelScope()
        self._closing = False
        self._closed = trio.Event()
        self._recorder: reaper.PGroupRecorder | None = None  # set by open_agent_process inside a kernel
        self.max_frame_bytes: int = MAX_FRAME_BYTES
        self.frame_overflow: str | None = None  # why lines() stopped early (a frame over the cap)

    # --- state ------------------------------------------------------------------------------------

    @property
    def returncode(self) -> int | None:
        """Exit code once the process has exited (negative = killed by that signal), else None."""
        return self._proc.returncode

    @property
    def describe(self) -> str:
        """``argv`` as one shell-quoted string (for error messages)."""
        return _shell(self.argv)

    def exit_description(self) -> str:
        """``exit code 3`` / ``killed by SIGKILL`` / ``still running``."""
        rc = self.returncode
        if rc is None:
            return "still running"
        if rc < 0:
            try:
                return f"killed by {signal.Signals(-rc).name}"
            except ValueError:
                return f"killed by signal {-rc}"
        return f"exit code {rc}"

    # --- stdin ----------------------------------------------------------------------------------

    async def send_line(self, data: bytes | str) -> None:
        """Write ``data`` + ``\\n``. Raises :class:`AgentStdinClosed` if the pipe is closed or broken."""
        if isinstance(data, str):
            data = data.encode()
        stdin = self._proc.stdin
        assert stdin is not None
        async with self._send_lock:
            try:
                await stdin.send_all(data + b"\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError, BrokenPipeError) as exc:
                raise AgentStdinClosed(
                    f"cannot write to agent {self.describe} (pid {self.pid}): stdin is closed "
                    f"({self.exit_description()})"
                ) from exc

    async def close_stdin(self) -> None:
        """Close our end of stdin (the polite EOF); a sender blocked on a full pipe is woken. Never raises."""
        stdin = self._proc.stdin
        if stdin is None:
            return
        try:
            await stdin.aclose()
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            pass

    # --- stdout -----------------------------------------------------------------------------------

    async def lines(self) -> AsyncIterator[bytes]:
        """Yield stdout lines (no trailing ``\\n``) until EOF; the unterminated tail is yielded last.

        A line longer than :attr:`max_frame_bytes` is never accumulated: the stream ends there (as if
        at EOF) with :attr:`frame_overflow` set, and the process is asked to stop (SIGTERM to its group).
        """
        stdout = self._proc.stdout
        assert stdout is not None
        cap = self.max_frame_bytes
        buf = bytearray()
        while True:
            try:
                data = await stdout.receive_some(READ_CHUNK)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                data = b""
            chunk = data if isinstance(data, bytes) else bytes(data)  # a pipe gives bytes; the stream type allows bytearray
            if not chunk:
                if buf:
                    yield bytes(buf)
                return
            nl = chunk.find(b"\n")
            if len(buf) + (len(chunk) if nl < 0 else nl) > cap:
                self._overflow(len(buf) + (len(chunk) if nl < 0 else nl))
                return
            if nl < 0:
                buf += chunk
                continue
            if buf:
                buf += chunk[:nl]
                line = bytes(buf)
                buf.clear()
            else:
                line = chunk[:nl]
            yield line
            start = nl + 1
            while True:
                nl = chunk.find(b"\n", start)
                if nl < 0:
                    break
                if nl - start > cap:
                    self._overflow(nl - start)
                    return
                yield chunk[start:nl]
                start = nl + 1
            if start < len(chunk):
                if len(chunk) - start > cap:
                    self._overflow(len(chunk) - start)
                    return
                buf += chunk[start:]

    def _overflow(self, seen: int) -> None:
        self.frame_overflow = (
            f"agent {self.describe} (pid {self.pid}) wrote an output frame larger than the "
            f"{_size(self.max_frame_bytes)} limit (more than {_size(seen)} without a newline); "
            "the session was stopped")
        self._signal_group(signal.SIGTERM)

    # --- stderr -----------------------------------------------------------------------------------

    async def _drain_stderr(self) -> None:
        stderr = self._proc.stderr
        assert stderr is not None
        try:
            with self._drain_scope:
                while True:
                    try:
                        chunk = await stderr.receive_some(65536)
                    except (trio.ClosedResourceError, trio.BrokenResourceError):
                        break
                    if not chunk:
                        break
                    self._stderr += chunk
                    excess = len(self._stderr) - STDERR_RING_BYTES
                    if excess > 0:
                        del self._stderr[:excess]
        finally:
            self._stderr_done.set()

    def stderr_tail(self, limit: int | None = None) -> str:
        """The last ``limit`` bytes (default: all kept, ≤ 64 KiB) of stderr, decoded leniently."""
        data = bytes(self._stderr if limit is None else self._stderr[-limit:])
        return data.decode("utf-8", errors="replace")

    async def stderr_settled(self, timeout: float = 0.5) -> None:
        """Wait (bounded) until stderr reached EOF, so :meth:`stderr_tail` holds the last words."""
        with trio.move_on_after(timeout):
            await self._stderr_done.wait()

    async def settle_after_eof(self) -> None:
        """Stdout ended: give the process a moment to exit and its stderr to drain (bounded)."""
        with trio.move_on_after(0.5 if self.frame_overflow else 2):
            await self.wait()
        await self.stderr_settled(0.5)

    def death_event(self, *, during_turn: bool, tail_bytes: int = 8192) -> AgentError:
        """The ``AgentError`` for an agent that ended without being asked to: argv, pid, exit, stderr tail."""
        if self.frame_overflow:
            return AgentError(message=self.frame_overflow, exit_code=self.returncode,
                              stderr_tail=self.stderr_tail(tail_bytes))
        what = self.exit_description() if self.returncode is not None else "closed its output but is still running"
        during = " during a turn" if during_turn else ""
        return AgentError(message=f"agent {self.describe} (pid {self.pid}) ended unexpectedly{during}: {what}",
                          exit_code=self.returncode, stderr_tail=self.stderr_tail(tail_bytes))

    # --- lifetime ---------------------------------------------------------------------------------

    async def wait(self) -> int:
        """Wait for the process to exit; return its exit code."""
        return await self._proc.wait()

    def _signal_group(self, sig: int) -> bool:
        """Signal the whole process group; False when no process of the group is left."""
        try:
            os.killpg(self._pgid, sig)
            return True
        except ProcessLookupError:
            return False
        except PermissionError:
            return False

    async def _group_gone(self, timeout: float) -> bool:
        """Poll until no member of the group is left (the leader is already reaped)."""
        with trio.move_on_after(timeout):
            while self._signal_group(0):
                await trio.sleep(0.02)
            return True
        return False

    async def close(self, grace: float = 2.0) -> int | None:
        """Polite → SIGTERM group → SIGKILL group; reap; return the exit code (None if unreapable)."""
        with trio.CancelScope(shield=True):
            if self._closing:
                with trio.move_on_after(2 * grace + 1):
                    await self._closed.wait()
                return self.returncode
            self._closing = True
            try:
                await self._close(grace)
            finally:
                if self._recorder is not None and self.returncode is not None:  # reaped: nothing left to record
                    self._recorder.ended(self._pgid)
                self._closed.set()
        return self.returncode

    async def _close(self, grace: float) -> None:
        await self.close_stdin()
        exited = self.returncode is not None
        if not exited:
            with trio.move_on_after(grace):
                await self._proc.wait()
                exited = True
        if exited:
            # The leader left politely; anything it left behind in its group gets TERM, then KILL.
            if self._signal_group(signal.SIGTERM) and not await self._group_gone(min(grace, 0.5)):
                self._signal_group(signal.SIGKILL)
        else:
            self._signal_group(signal.SIGTERM)
            with trio.move_on_after(grace):
                await self._proc.wait()
                exited = True
            # Kill the group either way: the leader may be gone while a grandchild ignores SIGTERM.
            self._signal_group(signal.SIGKILL)
            if not exited:
                with trio.move_on_after(grace):
                    await self._proc.wait()
        # Give the stderr drain a moment to take the last words, then stop it and close our pipe ends.
        with trio.move_on_after(0.2):
            await self._stderr_done.wait()
        self._drain_scope.cancel()
        for stream in (self._proc.stdout, self._proc.stderr):
            if stream is not None:
                try:
                    await stream.aclose()
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                    pass


async def open_agent_process(
    nursery: trio.Nursery,
    argv: Sequence[str],
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | Path | None = None,
) -> AgentSubprocess:
    """Start ``argv`` in a new session/process group, env = ``os.environ`` + ``env``.

    The stderr drain runs in ``nursery``; it ends by itself when the process's stderr closes (or when
    :meth:`AgentSubprocess.close` finishes). Raises :class:`SpawnFailed` when exec fails.
    """
    if not argv:
        raise SpawnFailed((), OSError(2, "empty command line"), cwd)
    # bytes: os.environb copies without decoding, and Popen would encode every str pair again
    full_env = {**os.environb, **{os.fsencode(k): os.fsencode(v) for k, v in (env or {}).items()}}
    try:
        proc = await trio.lowlevel.open_process(
            list(argv),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=full_env,  # type: ignore[arg-type]  # bytes pairs are fine for subprocess; trio's stub says str
            cwd=os.fspath(cwd) if cwd is not None else None,
            start_new_session=True,
        )
    except OSError as exc:
        raise SpawnFailed(argv, exc, cwd) from exc
    agent = AgentSubprocess(proc, argv)
    recorder = reaper.current.get()
    if recorder is not None:
        recorder.started(proc.pid, argv)
        agent._recorder = recorder
    nursery.start_soon(agent._drain_stderr)
    return agent


class SubprocessAgent:
    """Mixin for ``AgentProcess`` implementations over an :class:`AgentSubprocess`: one shielded,
    idempotent :meth:`close` (a second caller waits for the first). Subclasses set ``proc``,
    ``_ended`` (a ``trio.Event`` set when the reader stops) and ``_closing = False``, and may override
    :meth:`_say_goodbye` (a protocol-level close) and :meth:`_end_events` (close the event stream)."""

    proc: AgentSubprocess
    _ended: trio.Event
    _closing: bool

    async def close(self, grace: float = 2.0) -> None:
        """Polite goodbye → stdin EOF → SIGTERM → SIGKILL to the group; never hangs past ~2×grace + 1 s."""
        with trio.CancelScope(shield=True):
            if self._closing:
                with trio.move_on_after(2 * grace + 1):
                    await self._ended.wait()
                return
            self._closing = True
            try:
                await self._say_goodbye(grace)
                await self.proc.close(grace)
                with trio.move_on_after(1):
                    await self._ended.wait()
            finally:
                self._end_events()
                self._ended.set()

    async def _say_goodbye(self, grace: float) -> None:
        """A protocol-level close before the process is asked to stop (default: none)."""

    def _end_events(self) -> None:
        """Close the event stream consumers read from."""

