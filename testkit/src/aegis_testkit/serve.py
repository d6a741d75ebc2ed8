"""A real ``aegis serve`` subprocess on a project directory, for end-to-end tests (yours and ours).

Contract of :class:`ServeProcess`:

- :meth:`~ServeProcess.start` runs ``python -m aegis_kernel.cli serve *extra`` in ``project`` (in a
  session of its own, so a SIGKILL of the serve is not delivered to the test runner) and returns once
  the serve printed its ``ready in`` line (kept as :attr:`~ServeProcess.ready_line`); if the serve
  exits or is not ready within ``timeout`` seconds it is killed and :class:`AssertionError` carries
  everything it printed. Its stdout and stderr are drained by a daemon thread into
  :attr:`~ServeProcess.output`, so a chatty serve never blocks on a full pipe.
- :meth:`~ServeProcess.cli` runs one ``aegis`` command against it (checked unless ``check=False``);
  :meth:`~ServeProcess.call` calls one operation through :func:`aegis_kernel.client.call`, the
  CLI's own client.
- :meth:`~ServeProcess.wait` / :func:`wait_for` poll a predicate until it is truthy, failing only
  after a generous overall deadline (never a fixed sleep to synchronise).
- :meth:`~ServeProcess.stop` is SIGTERM and a clean exit within ``timeout`` (else the whole process
  group is SIGKILLed and :class:`subprocess.TimeoutExpired` is raised); :meth:`~ServeProcess.kill9`
  is ``kill -9`` of the serve alone (its agents run in groups of their own and survive it, as
  after a crash; :func:`reap_orphans` kills scripted agents left behind). Both are no-ops on a
  serve that is not running.

Nothing here imports trio or pytest: it drives a real process from a synchronous test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["ServeProcess", "reap_orphans", "wait_for"]

T = TypeVar("T")


def wait_for(predicate: Callable[[], T], what: str, *, timeout: float = 60, poll: float = 0.1) -> T:
    """Poll ``predicate()`` until it is truthy and return its value; :class:`AssertionError` naming
    ``what`` once ``timeout`` seconds passed without it (the deadline only ever fails a test)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(poll)


def reap_orphans(state_dir: Path) -> None:
    """SIGKILL the scripted agents a killed serve of ``state_dir`` left behind (found through
    their ``AEGIS_SCRIPTED_STATE`` environment variable)."""
    marker = f"AEGIS_SCRIPTED_STATE={Path(state_dir) / 'scripted'}".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            continue
        if marker in environ.split(b"\0"):
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


class ServeProcess:
    """One ``aegis serve`` subprocess of ``project``; ``env`` entries are added to the environment."""

    def __init__(self, project: Path, *, env: Mapping[str, str] | None = None) -> None:
        self.project = Path(project)
        self.extra_env = dict(env or {})
        self.proc: subprocess.Popen[str] | None = None
        self.ready_line = ""
        self.output: list[str] = []
        self._ready = threading.Event()

    @property
    def env(self) -> dict[str, str]:
        """The environment of the serve and of :meth:`cli`: this process's, plus ``extra_env``."""
        return {**os.environ, **self.extra_env}

    @property
    def state_dir(self) -> Path:
        return self.project / ".aegis" / "state"

    @property
    def mcp_url(self) -> str:
        """The MCP endpoint the ready line announced."""
        return self.ready_line.split("MCP ", 1)[1].split(" ", 1)[0]

    def start(self, *extra: str, timeout: float = 60) -> ServeProcess:
        self.ready_line, self.output, self._ready = "", [], threading.Event()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "aegis_kernel.cli", "serve", *extra], cwd=self.project, env=self.env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        threading.Thread(target=self._drain, args=(self.proc, self.output, self._ready), daemon=True).start()
        if not self._ready.wait(timeout) or not self.ready_line:
            code = self.proc.poll()
            self.kill9(group=True)
            state = f"exited {code}" if code is not None else f"not ready in {timeout}s"
            raise AssertionError(f"aegis serve {state}:\n{''.join(self.output)}")
        return self

    def _drain(self, proc: subprocess.Popen[str], output: list[str], ready: threading.Event) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if not ready.is_set() and "ready in" in line:
                self.ready_line = line
                ready.set()
        ready.set()  # EOF: the serve exited (start() tells ready from not by ready_line)

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def cli(self, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        """``aegis *args`` in the project; :class:`AssertionError` with its output if it fails and ``check``."""
        out = subprocess.run([sys.executable, "-m", "aegis_kernel.cli", *args], cwd=self.project, env=self.env,
                             capture_output=True, text=True, timeout=timeout)
        if check and out.returncode != 0:
            raise AssertionError(f"aegis {' '.join(args)} → {out.returncode}\n{out.stdout}\n{out.stderr}")
        return out

    def json(self, *args: str) -> Any:
        """``aegis *args --json``, parsed."""
        return json.loads(self.cli(*args, "--json").stdout)

    def call(self, operation: str, /, _timeout: float | None = 30.0, **params: Any) -> Any:
        """Call ``operation`` with ``params`` on this serve through the CLI's one client, waiting at most
        ``_timeout`` seconds (its name starts with ``_`` so that an operation may take a ``timeout``)."""
        from aegis_kernel.client import call

        return call(self.state_dir, operation, params, timeout=_timeout)

    def wait(self, predicate: Callable[[], T], what: str, timeout: float = 30, poll: float = 0.1) -> T:
        """:func:`wait_for` (poll the serve until ``predicate()`` is truthy)."""
        return wait_for(predicate, what, timeout=timeout, poll=poll)

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM and wait for the exit code (``0`` if never started)."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill9(group=True)
                raise
        return self.proc.returncode

    def kill9(self, *, group: bool = False) -> None:
        """``kill -9`` the serve (with ``group``, its whole process group) and reap it."""
        if self.proc is None or self.proc.poll() is not None:
            return
        if group:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        else:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
