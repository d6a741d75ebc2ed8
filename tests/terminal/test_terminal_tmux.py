"""The terminal tab in a real terminal: tmux runs ``aegis`` in a 120×40 window; Ctrl+E opens a terminal
tab, ``echo hi`` in run mode shows a block with ``exit 0``, Ctrl+K then ``less`` on a file draws its first
screen, ``q`` returns to the prompt; Ctrl+Q with ``sleep 1000`` running quits and leaves no shell; started
again, Aegis restores the ``term:<name>`` tab and re-spawns its shell."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from terminal_testkit import shells_with_term

pytestmark = [pytest.mark.e2e, pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")]

AEGIS = str(Path(sys.executable).with_name("aegis"))
CONFIG = "default_agent: helper\nagents:\n  helper:\n    provider: scripted\n"


def _tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], capture_output=True, text=True, timeout=10).stdout


def _screen_with(name: str, *texts: str, timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = _tmux("capture-pane", "-p", "-t", name)
        if all(t in screen for t in texts):
            return screen
        time.sleep(0.1)
    raise AssertionError(f"never saw {texts} on the screen:\n{screen}")


def test_terminal_tab_run_mode_raw_mode_and_quit(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / ".aegis.yaml").write_text(CONFIG)
    (project / "notes.txt").write_text("".join(f"notes line {i}\n" for i in range(1, 200)))
    home = tmp_path / "home"
    home.mkdir()
    done = tmp_path / "exit-status"
    term = f"t{uuid.uuid4().hex[:8]}"
    name = f"aegis-test-{term}"
    command = f"cd {project} && HOME={home} SHELL=/bin/bash {AEGIS} --clean; echo $? > {done}"
    _tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", name, command)
    try:
        deadline = time.monotonic() + 60
        while "name a terminal" not in _tmux("capture-pane", "-p", "-t", name):  # Ctrl+E works once the kernel is up
            assert time.monotonic() < deadline, _tmux("capture-pane", "-p", "-t", name)
            _tmux("send-keys", "-t", name, "C-e")
            time.sleep(0.5)
        _tmux("send-keys", "-t", name, "-l", term)
        _tmux("send-keys", "-t", name, "Enter")
        _screen_with(name, f"1 term:{term}", "mode: run")  # its own tab, titled term:<name>; the prompt closed
        _tmux("send-keys", "-t", name, "-l", "echo hi")
        _tmux("send-keys", "-t", name, "Enter")
        screen = _screen_with(name, "$ echo hi", "exit 0")
        assert "run by user" in screen

        _tmux("send-keys", "-t", name, "C-k")
        _screen_with(name, "mode: raw")
        _tmux("send-keys", "-t", name, "-l", "less notes.txt")
        _tmux("send-keys", "-t", name, "Enter")
        screen = _screen_with(name, "notes line 1", "notes line 15", "notes.txt")
        assert "notes line 199" not in screen  # its first screen, not the whole file
        _tmux("send-keys", "-t", name, "q")
        _tmux("send-keys", "-t", name, "-l", "sleep 1000")
        _tmux("send-keys", "-t", name, "Enter")
        _screen_with(name, "sleep 1000", "busy")
        assert shells_with_term(term), "the terminal's shell should be running"

        _tmux("send-keys", "-t", name, "C-q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not done.exists():
            time.sleep(0.1)
        assert done.exists(), _tmux("capture-pane", "-p", "-t", name)
        assert done.read_text().strip() == "0"
        assert shells_with_term(term) == []  # no shell (nor its sleep) left behind

        # started again: the workspace brings the term:<name> tab back and the tab re-spawns its shell
        again = tmp_path / "exit-status-2"
        _tmux("kill-session", "-t", name)
        _tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", name,
              f"cd {project} && HOME={home} SHELL=/bin/bash {AEGIS}; echo $? > {again}")
        _screen_with(name, f"1 term:{term}", f"term:{term} · idle", "$ echo hi", timeout=60)
        deadline = time.monotonic() + 30
        while not shells_with_term(term):
            assert time.monotonic() < deadline, "the restored tab should re-spawn its shell"
            time.sleep(0.1)
        _tmux("send-keys", "-t", name, "C-q")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not again.exists():
            time.sleep(0.1)
        assert again.exists() and again.read_text().strip() == "0", _tmux("capture-pane", "-p", "-t", name)
        assert shells_with_term(term) == []
    finally:
        _tmux("kill-session", "-t", name)
