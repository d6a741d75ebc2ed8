"""One kernel per project: the owner lock shared by aegis serve and the TUI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from aegis_kernel.owner import ProjectOwned, acquire, current_owner


def test_the_first_owner_keeps_the_project_and_the_second_is_told_who(tmp_path):
    state = tmp_path / ".aegis" / "state"
    assert current_owner(state) is None
    with acquire(state, "serve", tmp_path):
        assert current_owner(state)["pid"] == os.getpid()
        with pytest.raises(ProjectOwned) as info:
            acquire(state, "tui", tmp_path)
        assert f"aegis serve (pid {os.getpid()}) already owns {tmp_path}" in str(info.value)
        assert "aegis stop" in str(info.value)
    assert current_owner(state) is None
    with acquire(state, "tui", tmp_path):
        with pytest.raises(ProjectOwned, match=r"the Aegis TUI \(pid \d+\).*Ctrl\+Q"):
            acquire(state, "serve", tmp_path)


def test_an_owner_killed_with_sigkill_leaves_no_stale_lock(tmp_path):
    state = tmp_path / ".aegis" / "state"
    child = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from aegis_kernel.owner import acquire;"
        f"lock = acquire(Path({str(state)!r}), 'serve'); print('held', flush=True); time.sleep(600)")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "held"
        assert current_owner(state)["pid"] == child.pid
        with pytest.raises(ProjectOwned):
            acquire(state, "serve")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert current_owner(state) is None
    with acquire(state, "serve") as lock:
        assert lock.path.exists()
        assert (lock.path.stat().st_mode & 0o777) == 0o600


def test_a_probe_of_who_owns_the_project_never_makes_a_starting_owner_fail(tmp_path, monkeypatch):
    """``current_owner`` (the TUI asks it before it starts) holds a shared lock for a moment: an
    ``aegis serve`` starting in that moment waits for it instead of refusing to start."""
    import fcntl

    from aegis_kernel import owner

    state = tmp_path / ".aegis" / "state"
    with acquire(state, "tui", tmp_path):
        pass  # the file exists, emptied as a stopped owner leaves it
    probe = os.open(state / "owner.lock", os.O_RDONLY)
    fcntl.flock(probe, fcntl.LOCK_SH | fcntl.LOCK_NB)  # the prober, caught mid-probe
    waits: list[float] = []

    def the_probe_ends(seconds: float) -> None:
        waits.append(seconds)
        fcntl.flock(probe, fcntl.LOCK_UN)

    monkeypatch.setattr(owner.time, "sleep", the_probe_ends)
    try:
        with acquire(state, "serve", tmp_path):
            assert current_owner(state)["kind"] == "serve"
    finally:
        os.close(probe)
    assert len(waits) == 1
