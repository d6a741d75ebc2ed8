"""The terminal runtime: named shells on PTYs, command boundaries, serialized runs, the ledger, wake-ups.

One :class:`TerminalRuntime` per kernel (published by the terminal service; operations find it with
``kernel.find_service(TerminalRuntime)``); every shell's reader task runs in the service's nursery, so
stopping the kernel cancels them and closes every shell (:meth:`TerminalRuntime.aclose`). Contracts:

- **Commands** are cut by the OSC 133 markers (:mod:`aegis_terminal.osc`): ``C`` opens one (its ``seq``
  is the terminal's next number; ``started`` goes to the ledger), ``D`` closes it with its exit status:
  the ``finished`` record (:mod:`aegis_terminal.ledger`, output capped head + tail) is appended *before*
  anyone is told; then every subscriber except the one who ran it is woken with an envelope from
  ``term:<name>`` (:func:`aegis_terminal.ledger.render`).
- **Runs** (:meth:`Terminal.run`) are first come, first served per terminal (a FIFO ``trio.Semaphore``
  held from sending the command until it *finishes* — a run that timed out keeps the terminal until its
  command ends or is interrupted). The run waits for the shell's prompt, types the command (several
  lines as one ``{ …; }`` group) and waits for its end; after ``timeout_s`` it returns
  ``timed_out: true`` with what it printed so far and how to interrupt it. Commands typed with
  :meth:`Terminal.keys` are recorded too (run by whoever sent the keys).
- **Output**: every byte goes to a raw log ``terminals/<name>/raw.log`` (written from a worker thread;
  beyond :data:`RAW_LOG_MAX` it becomes ``raw.log.1`` and a new one starts),
  and to a ``pyte`` screen for :meth:`Terminal.screen` (fed lazily, from at most the last
  :data:`SCREEN_REPLAY` bytes, so a flood of output never waits on the emulator).
- **Restart**: at start every ledger is replayed; a command that was running when Aegis stopped gets a
  ``finished`` record with status ``killed_by_restart``; ``seq`` and subscriptions go on; the terminal
  is listed as closed until someone spawns it again (same name: its history is kept).
"""

from __future__ import annotations

import logging
import os
from collections import deque
from pathlib import Path
from typing import Any

import trio
from attrs import define, field

from aegis_kernel import DeliveryError, Envelope, Journal, OperationError, SessionError, check_safe_name, utc_now

from . import ledger as term_ledger
from .integration import Launch, command_bytes, prepare
from .keys import KeyError_, encode
from .osc import Mark, OscParser, Output, plain
from .ptyproc import PtyProcess, spawn

log = logging.getLogger("aegis.terminal")

TOPIC = "terminal"
HEAD_RAW = 8192
TAIL_RAW = 32768
SCREEN_REPLAY = 256 * 1024
RAW_LOG_MAX_PENDING = 8 * 1024 * 1024
RAW_LOG_MAX = 64 * 1024 * 1024  # raw.log is moved to raw.log.1 (replacing it) beyond this size
HISTORY = 500
GRACE_S = 1.0  # aegis_term_close: between SIGHUP, SIGTERM and SIGKILL
SHUTDOWN_GRACE_S = 0.3  # quitting Aegis: stay well under the 2 s a quit may take


class TerminalError(OperationError):
    """A refusal of a terminal operation (``code``: unknown_terminal, bad_argument, refused, closed…)."""


@define(eq=False)
class Capture:
    """A command's output: the first :data:`HEAD_RAW` and last :data:`TAIL_RAW` bytes, and the total."""

    head: bytearray = field(factory=bytearray)
    tail: bytearray = field(factory=bytearray)
    total: int = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = HEAD_RAW - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            if len(self.tail) > TAIL_RAW:
                del self.tail[:len(self.tail) - TAIL_RAW]

    @property
    def cut(self) -> int:
        return self.total - len(self.head) - len(self.tail)

    def text(self) -> str:
        if not self.cut:
            return plain(bytes(self.head + self.tail)).strip("\n")
        return (plain(bytes(self.head)) + f"\n…[{self.cut} bytes cut]…\n" + plain(bytes(self.tail))).strip("\n")


@define(eq=False)
class Command:
    """A command that is running."""

    seq: int
    cmd: str | None
    who: str
    started: str
    t0: float
    by_run: bool = False
    from_echo: bool = False  # cmd is what the PTY echoed; the shell's own text (E) replaces it
    capture: Capture = field(factory=Capture)
    done: trio.Event = field(factory=trio.Event)
    record: dict[str, Any] | None = None


@define(eq=False)
class Pending:
    """A run whose command was typed but has not started (no ``C`` yet)."""

    cmd: str
    who: str
    started: trio.Event = field(factory=trio.Event)
    command: Command | None = None


class Terminal:
    """One named terminal: its journal, and while open its shell, parser and screen."""

    def __init__(self, rt: TerminalRuntime, name: str, journal: Journal) -> None:
        self.rt = rt
        self.name = name
        self.journal = journal
        self.folder = journal.path.parent
        self.proc: PtyProcess | None = None
        self.launch: Launch | None = None
        self.shell: str | None = None
        self.cwd: str | None = None
        self.seq = 0
        self.subscribers: list[str] = []
        self.history: deque[dict[str, Any]] = deque(maxlen=HISTORY)
        self.current: Command | None = None
        self.pending: Pending | None = None
        self.turn = trio.Semaphore(1)  # FIFO: runs are served first come, first served
        self.idle = False
        self.prompt = trio.Event()  # set at each prompt (replaced when a command starts)
        self.exited = trio.Event()
        self.size = (24, 80)
        self.keys_by = "user"
        self._last_e: str | None = None
        self._parser = OscParser()
        self._screen: Any = None
        self._stream: Any = None
        self._screen_pending = bytearray()
        self._raw_pending = bytearray()
        self._raw_ready = trio.Event()
        self._raw_room = trio.Event()
        self.recent = bytearray()  # the last bytes printed, for a read with no command yet
        self.closing: str | None = None  # who is closing the shell right now
        self._typed = bytearray()  # what was echoed since the prompt ended

    # --- info ---------------------------------------------------------------------------------------

    @property
    def open(self) -> bool:
        return self.proc is not None and not self.exited.is_set()

    def info(self) -> dict[str, Any]:
        state = "closed"
        if self.open:
            state = "idle" if self.idle and self.current is None else "busy"
        return {"terminal": self.name, "state": state, "shell": self.shell, "cwd": self.cwd,
                "pid": self.proc.pid if self.open and self.proc else None, "seq": self.seq,
                "running": self._running_info(), "subscribers": list(self.subscribers),
                "integrated": bool(self.launch and self.launch.integrated), "rows": self.size[0],
                "cols": self.size[1], "commands": len(self.history)}

    def _running_info(self) -> dict[str, Any] | None:
        cur = self.current
        if cur is None:
            return None
        return {"seq": cur.seq, "cmd": cur.cmd, "who": cur.who, "started": cur.started,
                "output_tail": term_ledger.tail_lines(plain(bytes(cur.capture.tail or cur.capture.head)))}

    # --- the shell ----------------------------------------------------------------------------------

    async def start(self, shell: str, cwd: Path, by: str) -> None:
        launch = await trio.to_thread.run_sync(prepare, shell, self.folder / "shell")
        env = {k: v for k, v in os.environ.items() if not k.startswith("AEGIS_MCP")}
        env.update(launch.env)
        env.update({"AEGIS_TERM": self.name, "TERM": "xterm-256color", "COLUMNS": str(self.size[1]),
                    "LINES": str(self.size[0])})
        self.launch, self.shell, self.cwd = launch, shell, str(cwd)
        self.proc = await spawn(launch.argv, cwd=cwd, env=env, size=self.size)
        self.exited = trio.Event()
        self.closing = None
        self.idle = not launch.integrated
        self.prompt = trio.Event()
        if self.idle:
            self.prompt.set()
        self._parser = OscParser()
        self._screen = None
        self._screen_pending = bytearray()
        self.journal.append({"event": "spawned", term_ledger.KEY: self.name, "at": utc_now(), "shell": shell,
                             "cwd": str(cwd), "by": by, "pid": self.proc.pid})
        self.rt.publish(self, "spawned", by=by)

    async def reader(self) -> None:
        """Read the shell until end of file (cancelled by close); then record its exit."""
        proc = self.proc
        assert proc is not None
        try:
            while True:
                data = await proc.read()
                if not data:
                    break
                await self._raw(data)
                for ev in self._parser.feed(data):
                    self._event(ev)
        except Exception:  # noqa: BLE001 - one broken terminal must not stop the kernel: close it
            log.exception("terminal %s: reader failed; closing the shell", self.name)
            with trio.CancelScope(shield=True):
                await self.close("error")
            return
        # end of file: the shell (and everything holding the PTY) is gone, or the terminal was closed
        if self.closing is None:
            with trio.move_on_after(GRACE_S):
                await proc.process.wait()
            self._shell_gone(proc, "shell_exited", by="exit")

    async def raw_writer(self) -> None:
        """Append what the reader collected to ``raw.log`` from a worker thread (cancelled by close)."""
        path = self.folder / "raw.log"
        try:
            while True:
                await self._raw_ready.wait()
                self._raw_ready = trio.Event()
                await self._flush_raw(path)
        finally:
            with trio.CancelScope(shield=True):
                await self._flush_raw(path)

    async def _flush_raw(self, path: Path) -> None:
        data, self._raw_pending = bytes(self._raw_pending), bytearray()
        self._raw_room.set()
        if data:
            limit = RAW_LOG_MAX

            def write() -> None:
                try:
                    if os.stat(path).st_size + len(data) > limit:  # keep one older log: raw.log.1
                        os.replace(path, path.with_name(path.name + ".1"))
                except FileNotFoundError:
                    pass
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
                try:
                    os.write(fd, data)
                finally:
                    os.close(fd)
            try:
                await trio.to_thread.run_sync(write)
            except OSError as exc:  # a full disk loses raw log bytes, never the terminal
                log.warning("terminal %s: raw log not written (%d bytes): %s", self.name, len(data), exc)

    async def _raw(self, data: bytes) -> None:
        while len(self._raw_pending) > RAW_LOG_MAX_PENDING:
            self._raw_room = trio.Event()
            await self._raw_room.wait()
        self._raw_pending += data
        self._raw_ready.set()

    def _event(self, ev: Output | Mark) -> None:
        if isinstance(ev, Output):
            self._screen_pending += ev.data
            if len(self._screen_pending) > 2 * SCREEN_REPLAY:
                del self._screen_pending[:len(self._screen_pending) - SCREEN_REPLAY]
                self._screen = None  # rebuilt from the last SCREEN_REPLAY bytes
            self.recent += ev.data
            if len(self.recent) > TAIL_RAW:
                del self.recent[:len(self.recent) - TAIL_RAW]
            if self.current is not None:
                self.current.capture.add(ev.data)
            elif len(self._typed) < TAIL_RAW:
                self._typed += ev.data
            return
        if ev.kind == "C":
            self._command_started()
        elif ev.kind == "E":
            text = ev.args[0] if ev.args else ""
            text = _history_line(text) if self.launch and self.launch.kind == "bash" else text.strip()
            if self.current is None:
                self._last_e = text  # zsh: preexec, just before C
            elif self.current.cmd is None or self.current.from_echo:
                self.current.cmd = text  # bash: from history, just before D
                self.current.from_echo = False
        elif ev.kind == "D":
            if self.current is not None:
                self._command_finished(self.current, ev.exit_code, "ok" if ev.exit_code is not None else "unknown")
        elif ev.kind in ("A", "B"):
            self._last_e = None
            self._typed = bytearray()
            if ev.kind == "A" and self.launch and self.launch.integrated:
                return  # the prompt is being drawn: ready at its end (B)
            self.idle = True
            if self.pending is not None and self.current is None:  # the run's line started no command
                pending, self.pending = self.pending, None
                pending.started.set()
                self.turn.release()
            self.prompt.set()

    def _command_started(self) -> None:
        if self.current is not None:  # a C without D (the shell was interrupted oddly): end it
            self._command_finished(self.current, None, "unknown")
        self.seq += 1
        pending, self.pending = self.pending, None
        if pending is not None:
            cmd, who = pending.cmd, pending.who
        else:
            cmd, who = self._last_e, self.keys_by
        echoed = None
        if cmd is None:  # typed by hand into bash: what the terminal echoed, until history says better
            echoed = plain(bytes(self._typed)).strip() or None
        self._last_e = None
        self._typed = bytearray()
        cur = Command(self.seq, cmd or echoed, who, utc_now(), trio.current_time(), by_run=pending is not None,
                      from_echo=echoed is not None)
        self.current = cur
        self.idle = False
        self.prompt = trio.Event()
        self.journal.append({"event": "started", term_ledger.KEY: self.name, "at": cur.started, "seq": cur.seq,
                             "cmd": cur.cmd, "who": who})
        self.rt.publish(self, "started", seq=cur.seq, cmd=cur.cmd, who=who)
        if pending is not None:
            pending.command = cur
            pending.started.set()

    def _command_finished(self, cur: Command, exit_code: int | None, status: str) -> None:
        self.current = None
        now = utc_now()
        rec = {"event": "finished", term_ledger.KEY: self.name, "at": now, "seq": cur.seq, "cmd": cur.cmd or "",
               "who": cur.who, "started": cur.started, "finished": now,
               "duration_s": round(max(0.0, trio.current_time() - cur.t0), 3), "exit": exit_code,
               "status": status, "output": cur.capture.text(), "bytes": cur.capture.total,
               "bytes_cut": cur.capture.cut}
        self.journal.append(rec)
        cur.record = rec
        self.history.append(rec)
        if cur.by_run:
            self.turn.release()
        cur.done.set()
        self.rt.publish(self, "finished", seq=cur.seq, exit=exit_code, status=status, who=cur.who)
        self.rt.notify(self, rec)

    def _shell_gone(self, proc: PtyProcess, status: str, *, by: str) -> None:
        if self.proc is not proc or self.exited.is_set():
            return
        for ev in self._parser.flush():
            self._event(ev)
        if self.current is not None:
            self._command_finished(self.current, proc.returncode, status)
        if self.pending is not None:
            self.pending.started.set()
            self.pending = None
            self.turn.release()
        self.exited.set()
        self.prompt.set()
        self.idle = False
        self.journal.append({"event": "closed", term_ledger.KEY: self.name, "at": utc_now(), "by": by,
                             "exit": proc.returncode})
        self.rt.publish(self, "closed", by=by, exit=proc.returncode)

    async def close(self, by: str, grace: float = GRACE_S) -> int | None:
        """End the shell's session (SIGHUP → SIGTERM → SIGKILL, ``grace`` seconds apart while alive)."""
        proc = self.proc
        if proc is None or self.exited.is_set():
            return proc.returncode if proc else None
        self.closing = by
        try:
            code = await proc.close(grace)
        finally:
            self.closing = None
        self._shell_gone(proc, "killed_by_restart" if by == "shutdown" else "closed", by=by)
        return code

    # --- operations ---------------------------------------------------------------------------------

    def require_open(self) -> PtyProcess:
        if not self.open or self.proc is None:
            raise TerminalError(f"terminal '{self.name}' is not running (spawn it again with aegis_term_spawn; "
                                "its history is kept)", code="closed")
        return self.proc

    async def run(self, cmd: str, who: str, timeout_s: float) -> dict[str, Any]:
        """Run ``cmd`` (see the module docstring); the finished record, or a ``timed_out`` answer."""
        self.require_open()
        pending: Pending | None = None
        with trio.move_on_after(timeout_s):
            await self.turn.acquire()
            try:
                while not (self.idle and self.current is None):
                    if self.exited.is_set():
                        raise TerminalError(f"terminal '{self.name}' exited", code="closed")
                    await self.prompt.wait()
                proc = self.require_open()
            except BaseException:
                self.turn.release()
                raise
            # from here the turn is released by the command's end (or by the prompt, if none started)
            pending = Pending(cmd, who)
            self.pending = pending
            self.idle = False
            self.prompt = trio.Event()
            await proc.write(command_bytes(cmd, integrated=bool(self.launch and self.launch.integrated)))
            await pending.started.wait()
            if pending.command is None:
                status = "closed" if self.exited.is_set() else "no_command"
                return {"terminal": self.name, "seq": None, "cmd": cmd, "who": who, "exit": None,
                        "status": status, "timed_out": False,
                        "message": "the terminal exited" if status == "closed" else
                        "the line ran no command (empty, a comment or a syntax error?)",
                        "output": plain(bytes(self.recent[-2048:])).strip("\n")}
            await pending.command.done.wait()
            assert pending.command.record is not None
            return {**_public(pending.command.record), "timed_out": False}
        how = (f"interrupt it with aegis_term_keys(name='{self.name}', keys='ctrl-c'), or follow it with "
               f"aegis_term_read(name='{self.name}')")
        if pending is not None:
            cur = pending.command
            seq = cur.seq if cur is not None else None
            tail = term_ledger.tail_lines(plain(bytes(cur.capture.tail or cur.capture.head))) if cur else ""
            return {"terminal": self.name, "seq": seq, "cmd": cmd, "who": who, "timed_out": True, "running": True,
                    "output_tail": tail,
                    "message": f"still running after {timeout_s:g}s in terminal '{self.name}'"
                               + (f" (seq {seq})" if seq is not None else "") + ": " + how}
        cur = self.current
        busy = f" (seq {cur.seq}: {cur.cmd!r} by {cur.who})" if cur else ""
        return {"terminal": self.name, "seq": None, "cmd": cmd, "who": who, "timed_out": True, "running": False,
                "message": f"not run: terminal '{self.name}' stayed busy{busy} for {timeout_s:g}s; "
                           f"interrupt the running command with aegis_term_keys(name='{self.name}', keys='ctrl-c')"
                           " or try again later"}

    async def keys(self, keys: str, who: str) -> dict[str, Any]:
        proc = self.require_open()
        try:
            data = encode(keys)
        except KeyError_ as exc:
            raise TerminalError(str(exc), code="bad_argument", param="keys") from None
        self.keys_by = who
        await proc.write(data)
        return {"terminal": self.name, "sent": len(data)}

    def resize(self, rows: int, cols: int) -> dict[str, Any]:
        proc = self.require_open()
        self.size = (rows, cols)
        proc.resize(rows, cols)
        if self._screen is not None:
            self._screen.resize(rows, cols)
        return {"terminal": self.name, "rows": rows, "cols": cols}

    def screen_lines(self) -> list[str]:
        """The emulator's screen (one string per row, trailing blanks kept to the width)."""
        import pyte

        if self._screen is None:
            self._screen = pyte.Screen(self.size[1], self.size[0])
            self._stream = pyte.ByteStream(self._screen)
        if self._screen_pending:
            data, self._screen_pending = bytes(self._screen_pending), bytearray()
            self._stream.feed(data)
        return list(self._screen.display)

    def screen(self) -> dict[str, Any]:
        lines = self.screen_lines()
        cursor = self._screen.cursor
        return {"terminal": self.name, "rows": self.size[0], "cols": self.size[1],
                "text": "\n".join(line.rstrip() for line in lines).rstrip("\n"),
                "cursor": {"row": cursor.y, "col": cursor.x}, "state": self.info()["state"]}

    def read(self, last_n: int, since_seq: int | None) -> dict[str, Any]:
        recs = [_public(r) for r in self.history if since_seq is None or r["seq"] > since_seq]
        if since_seq is None:
            recs = recs[-last_n:] if last_n else []
        out: dict[str, Any] = {"terminal": self.name, "commands": recs, "seq": self.seq,
                               "running": self._running_info(), "state": self.info()["state"]}
        if not recs and self.current is None:
            out["recent"] = term_ledger.tail_lines(plain(bytes(self.recent)))
        return out


def _public(rec: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in rec.items() if k not in ("v", "event", "at")}


def _history_line(text: str) -> str:
    """``history 1``'s line (``  42  cmd``) → ``cmd``."""
    text = text.strip("\r\n")
    stripped = text.lstrip()
    num, _, rest = stripped.partition(" ")
    if num.rstrip("*").isdigit():
        return rest.strip()
    return text.strip()


class TerminalRuntime:
    """Every terminal of one kernel (see the module docstring)."""

    def __init__(self, kernel: Any, nursery: trio.Nursery) -> None:
        self.kernel = kernel
        self.nursery = nursery
        self.root = Path(os.path.realpath(kernel.project_dir))
        self.folder = kernel.state.root / "terminals"
        self.terminals: dict[str, Terminal] = {}
        self._spawn_lock = trio.Lock()

    # --- start: replay ------------------------------------------------------------------------------

    async def start(self) -> None:
        names = await trio.to_thread.run_sync(self._ledger_names)
        for name in names:
            try:
                await self._restore(name)
            except Exception:  # noqa: BLE001 - one damaged terminal must not stop the others
                log.exception("terminal %s: could not be restored", name)

    def _ledger_names(self) -> list[str]:
        if not self.folder.is_dir():
            return []
        return sorted(p.parent.name for p in self.folder.glob("*/ledger.jsonl"))

    def _journal(self, name: str) -> Journal:
        path = self.kernel.state.path("terminals", name, "ledger.jsonl")
        return Journal(path, key=term_ledger.KEY, name=name, writer=self.kernel.state.writer)

    async def _restore(self, name: str) -> None:
        journal = self._journal(name)
        result = await trio.to_thread.run_sync(journal.replay)
        for problem in result.problems:
            log.warning("terminal %s: %s: %s", name, journal.path, problem)
        state = term_ledger.fold(result.records).get(name)
        if state is None:
            return
        term = Terminal(self, name, journal)
        term.seq = state["seq"]
        term.subscribers = list(state["subscribers"])
        term.shell, term.cwd = state["shell"], state["cwd"]
        for rec in term_ledger.finished(result.records)[-HISTORY:]:
            term.history.append(rec)
        now = utc_now()
        for seq, started in sorted(state["running"].items()):
            rec = {"event": "finished", term_ledger.KEY: name, "at": now, "seq": seq, "cmd": started.get("cmd") or "",
                   "who": started.get("who"), "started": started.get("at"), "finished": None, "duration_s": None,
                   "exit": None, "status": "killed_by_restart", "output": "", "bytes": 0, "bytes_cut": 0}
            journal.append(rec)
            term.history.append(rec)
        if state["open"]:
            journal.append({"event": "closed", term_ledger.KEY: name, "at": now, "by": "restart", "exit": None})
        self.terminals[name] = term

    # --- operations ---------------------------------------------------------------------------------

    def require(self, name: str) -> Terminal:
        term = self.terminals.get(name)
        if term is None:
            raise TerminalError(f"no terminal '{name}' (aegis_term_list shows them; aegis_term_spawn makes one)",
                                code="unknown_terminal", param="name")
        return term

    async def spawn(self, name: str, *, shell: str | None, cwd: str | None, by: str,
                    confine: bool) -> dict[str, Any]:
        problem = check_safe_name(name, "terminal")
        if problem:
            raise TerminalError(problem, code="bad_argument", param="name")
        async with self._spawn_lock:
            term = self.terminals.get(name)
            if term is not None and term.open:
                return {**term.info(), "created": False}
            shell_path = _shell(shell or self._default_shell(term))
            where = await trio.to_thread.run_sync(self._cwd, cwd, confine)
            if term is None:
                term = Terminal(self, name, self._journal(name))
                self.terminals[name] = term
            try:
                await term.start(shell_path, where, by)
            except OSError as exc:
                raise TerminalError(f"cannot start {shell_path}: {exc.strerror or exc}", code="refused",
                                    param="shell") from None
            self.nursery.start_soon(term.reader)
            self.nursery.start_soon(_raw_writer, term)
            return {**term.info(), "created": True}

    def _default_shell(self, term: Terminal | None) -> str:
        if term is not None and term.shell:
            return term.shell
        return os.environ.get("SHELL") or "/bin/bash"

    def _cwd(self, cwd: str | None, confine: bool) -> Path:
        where = Path(os.path.realpath(self.root / cwd)) if cwd else self.root
        if confine and where != self.root and self.root not in where.parents:
            raise TerminalError(f"cwd '{cwd}' is outside the project (only the user may start a terminal there)",
                                code="refused", param="cwd")
        if not where.is_dir():
            raise TerminalError(f"cwd '{cwd}' is not a folder", code="bad_argument", param="cwd")
        return where

    def list(self) -> list[dict[str, Any]]:
        return [t.info() for t in self.terminals.values()]

    def subscribe(self, name: str, handle: str) -> dict[str, Any]:
        term = self.require(name)
        if handle not in term.subscribers:
            term.subscribers.append(handle)
            term.journal.append({"event": "subscribed", term_ledger.KEY: name, "at": utc_now(), "handle": handle})
            self.publish(term, "subscribed", handle=handle)
        return {"terminal": name, "subscribed": True, "handle": handle, "subscribers": list(term.subscribers)}

    def unsubscribe(self, name: str, handle: str, *, reason: str = "unsubscribed") -> bool:
        term = self.require(name)
        if handle not in term.subscribers:
            return False
        term.subscribers.remove(handle)
        term.journal.append({"event": "unsubscribed", term_ledger.KEY: name, "at": utc_now(), "handle": handle,
                             "reason": reason})
        self.publish(term, "unsubscribed", handle=handle)
        return True

    def session_closed(self, handle: str, reason: str) -> None:
        for name, term in list(self.terminals.items()):
            if handle in term.subscribers:
                self.unsubscribe(name, handle, reason=f"session closed ({reason})")

    async def aclose(self) -> None:
        """Close every open shell (shielded, bounded: SIGHUP → SIGTERM → SIGKILL each)."""
        with trio.CancelScope(shield=True):
            async with trio.open_nursery() as nursery:
                for term in self.terminals.values():
                    if term.open:
                        nursery.start_soon(term.close, "shutdown", SHUTDOWN_GRACE_S)
            for term in self.terminals.values():
                term.journal.close()

    # --- wake-ups and events ------------------------------------------------------------------------

    def notify(self, term: Terminal, rec: dict[str, Any]) -> None:
        runner = rec.get("who") or ""
        body = term_ledger.render(rec)
        for handle in list(term.subscribers):
            if runner == f"agent:{handle}":
                continue
            self._send(handle, Envelope.new(f"term:{term.name}", body))

    def _send(self, handle: str, envelope: Envelope) -> None:
        sessions = self.kernel.sessions
        session = sessions.get(handle)
        if session is not None and session.state != "closed":
            try:
                self.kernel.delivery.deliver(session, envelope, hold_if_failed=True)
            except (DeliveryError, SessionError) as exc:
                log.info("terminal wake-up for %s not delivered: %s", handle, exc)
            return
        if handle in {r.get("handle") for r in sessions.saved()}:
            self.kernel.delivery.hold(handle, envelope)  # its restore delivers it
        else:
            log.info("terminal subscriber %s is not running; the command is in the ledger only", handle)

    def publish(self, term: Terminal, what: str, **data: Any) -> None:
        self.kernel.bus.publish(TOPIC, {"terminal": term.name, "event": what, "seq": term.seq, **data})


async def _raw_writer(term: Terminal) -> None:
    """The raw log writer of one shell: runs until the shell has exited, then flushes."""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(term.raw_writer)
        await term.exited.wait()
        nursery.cancel_scope.cancel()


def _shell(shell: str) -> str:
    import shutil

    found = shell if os.path.isabs(shell) else shutil.which(shell)
    if not found or not os.access(found, os.X_OK):
        raise TerminalError(f"no shell '{shell}' on this machine", code="bad_argument", param="shell")
    return found
