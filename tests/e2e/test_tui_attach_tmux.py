"""The TUI attached to a running ``aegis serve``, in a real terminal: tmux runs bare ``aegis`` next to a serve
with two scripted agents; the CLI in "another shell" sends and the attached TUI shows it; an approval is
answered in the TUI; a second TUI attached at the same time sees the same; quitting detaches and leaves
both agents running — one agent process per session throughout."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from aegis_kernel.testing import pids_mentioning

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

AEGIS = str(Path(sys.executable).with_name("aegis"))


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


def _screen_until(name: str, predicate, what: str, timeout: float = 30) -> str:
    """Poll the pane until ``predicate(screen)``; fail with the last screen after ``timeout``."""
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", name)
        if predicate(screen):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}:\n{screen}")


def test_the_tui_attaches_to_a_running_serve(serve, serve_project: Path, tmp_path: Path) -> None:
    serve.start()
    agents = str(serve_project / ".aegis")  # what each agent process's command line or environment names
    first = json.loads(serve.cli("call", "aegis_spawn", "--json", '{"handle": "first"}').stdout)["handle"]
    second = json.loads(serve.cli("call", "aegis_spawn", "--json", '{"handle": "second"}').stdout)["handle"]
    serve.wait(lambda: all((serve.session(h) or {}).get("state") == "ready" for h in (first, second)), "agents ready")
    assert len(pids_mentioning(agents)) == 2

    done = tmp_path / "exit-status"
    name = f"aegis-attach-{uuid.uuid4().hex[:8]}"
    other = f"{name}-2"  # a second TUI attached at the same time
    for session, status in ((name, done), (other, tmp_path / "exit-status-2")):
        _tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", session, "-c", str(serve_project),
              f"sh -c '{AEGIS}; echo $? > {status}; sleep 60'")
    try:
        for session in (name, other):
            _screen_until(session, lambda s: f"1 {first} ·helper·" in s and f"2 {second} ·helper·" in s,
                          "both tabs")
        assert len(pids_mentioning(agents)) == 2  # attaching started no second copy

        # another shell sends: both attached TUIs' transcripts show the turn
        serve.cli("send", first, "hello from another shell")
        for session in (name, other):
            _screen_until(session, lambda s: "scripted reply to: hello from another shell" in s, "the sent turn")
        _tmux("send-keys", "-t", other, "C-q")

        # an agent asks for approval: answered in the attached TUI
        serve.cli("send", first, "@ask execute rm -rf build")
        _screen_until(name, lambda s: "asks to run" in s, "the approval prompt")
        _tmux("send-keys", "-t", name, "y")
        _screen_until(name, lambda s: "permission rm -rf build → allow" in s, "the approved tool")
        assert (serve.session(first) or {}).get("state") == "ready"

        # Ctrl+Q detaches: the TUI says so and the serve keeps both agents
        _tmux("send-keys", "-t", name, "C-q")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not done.exists():
            time.sleep(0.1)
        assert done.exists() and done.read_text().strip() == "0", _tmux("capture-pane", "-p", "-t", name)
        screen = _tmux("capture-pane", "-p", "-t", name)
        assert f"aegis: detached; aegis serve (pid {serve.proc.pid}) keeps running 2 session(s)" in screen, screen
        sessions = json.loads(serve.cli("sessions", "--json").stdout)
        assert sorted((s["handle"], s["state"]) for s in sessions) == [(first, "ready"), (second, "ready")]
        assert len(pids_mentioning(agents)) == 2  # one agent process per session, still
    finally:
        _tmux("kill-session", "-t", name)
        _tmux("kill-session", "-t", other)
    assert serve.stop() == 0
    assert pids_mentioning(agents) == []
