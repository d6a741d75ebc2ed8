"""The TUI in a real terminal: tmux runs ``aegis demo`` in a 120×40 window, send-keys drives it,
capture-pane reads it. Real scripted-agent subprocesses, the real MCP plane, the real queue."""

from __future__ import annotations

import os
import re
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


def test_demo_in_a_real_terminal(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    done = tmp_path / "exit-status"
    name = f"aegis-test-{uuid.uuid4().hex[:8]}"
    command = f"{AEGIS} demo --dir {project} --tour-speed 3; echo $? > {done}"
    _tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", name, command)
    try:
        screens: list[str] = []
        metrics: set[str] = set()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            screen = _tmux("capture-pane", "-p", "-t", name)
            screens.append(screen)
            metrics.update(re.findall(r"~?↑\d+k? \(\d+% cached\) ↓\d+k?", screen))
            if "queues: tests ●0/2 ○0 ✓3 ✗0" in screen and "scripted reply to: shard 3" in screen:
                break
            time.sleep(0.25)
        everything = "\n".join(screens)
        assert re.search(r"● 1 [a-z]+-[a-z]+ ·reviewer·", everything), screens[-1]
        assert re.search(r"● 2 [a-z]+-[a-z]+ ·lead·", everything), screens[-1]
        assert "✉ from agent:" in everything, screens[-1]
        assert "✉ from queue:tests · task#" in everything, screens[-1]
        assert len(metrics) >= 2, metrics  # the metrics moved
        assert "queues: tests ●0/2 ○0 ✓3 ✗0" in screens[-1], screens[-1]

        # keys in a real terminal: switch to the reviewer tab and read the envelope there
        _tmux("send-keys", "-t", name, "C-Left")
        deadline = time.monotonic() + 10
        screen = ""
        while time.monotonic() < deadline:
            screen = _tmux("capture-pane", "-p", "-t", name)
            if "✉ from agent:" in screen and "Reviewed: the retry loop looks right" in screen:
                break
            time.sleep(0.2)
        assert "✉ from agent:" in screen, screen
        # type into the input and send
        _tmux("send-keys", "-t", name, "-l", "hello from tmux")
        _tmux("send-keys", "-t", name, "Enter")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            screen = _tmux("capture-pane", "-p", "-t", name)
            if "scripted reply to: hello from tmux" in screen:
                break
            time.sleep(0.2)
        assert "scripted reply to: hello from tmux" in screen, screen
        assert pids_mentioning(str(project)), "the scripted agents should be running"

        _tmux("send-keys", "-t", name, "C-q")
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not done.exists():
            time.sleep(0.1)
        assert done.exists(), _tmux("capture-pane", "-p", "-t", name)
        assert done.read_text().strip() == "0"
        assert pids_mentioning(str(project)) == []  # no agent process left behind
    finally:
        _tmux("kill-session", "-t", name)


def test_sigterm_in_a_real_terminal_leaves_no_process(tmp_path: Path) -> None:
    project = tmp_path / "demo"
    done = tmp_path / "exit-status"
    name = f"aegis-test-{uuid.uuid4().hex[:8]}"
    pidfile = tmp_path / "pid"
    command = f"sh -c 'echo $$ > {pidfile}; exec {AEGIS} demo --dir {project} --tour-speed 2'; echo $? > {done}"
    _tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", name, command)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(pids_mentioning(str(project / ".aegis"))) < 2:
            time.sleep(0.2)
        assert len(pids_mentioning(str(project / ".aegis"))) >= 2  # agents are up
        os.kill(int(pidfile.read_text()), 15)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not done.exists():
            time.sleep(0.1)
        assert done.exists()
        assert done.read_text().strip() == "0"
        assert pids_mentioning(str(project / ".aegis")) == []
    finally:
        _tmux("kill-session", "-t", name)


def test_closing_the_terminal_quits_and_leaves_no_process(tmp_path: Path) -> None:
    """SIGHUP with the terminal already gone: writes fail, yet the app exits and reaps its agents."""
    project = tmp_path / "demo"
    name = f"aegis-test-{uuid.uuid4().hex[:8]}"
    _tmux("new-session", "-d", "-x", "120", "-y", "40", "-s", name,
          f"{AEGIS} demo --dir {project} --tour-speed 2")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(pids_mentioning(str(project / ".aegis"))) < 2:
            time.sleep(0.2)
        assert len(pids_mentioning(str(project / ".aegis"))) >= 2  # agents are up
    finally:
        _tmux("kill-session", "-t", name)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and pids_mentioning(str(project)):
        time.sleep(0.2)
    assert pids_mentioning(str(project)) == []  # neither aegis nor an agent is left
