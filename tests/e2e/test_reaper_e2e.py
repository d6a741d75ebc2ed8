"""``kill -9`` of a real ``aegis serve`` leaves agent process groups behind; the next serve (or
``aegis stop``) ends them (issue 12, finding 14)."""

from __future__ import annotations

import json
import os
import signal
import sys
from contextlib import contextmanager

import pytest

from aegis_kernel import reaper

pytestmark = [pytest.mark.e2e,
              pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="the reaper needs Linux /proc")]

# The scripted agent, wrapped so that its group outlives the serve: when the serve dies the agent
# sees EOF and exits, and the wrapper (the group leader, same pid and start time) sleeps on.
STUBBORN_CONFIG = f"""\
default_agent: stubborn
agents:
  stubborn:
    provider: scripted
    command: [sh, -c, '"$@"; exec sleep 600', sh, {json.dumps(sys.executable)}, -m, aegis_scripted]
"""


def group_alive(pgid: int) -> bool:
    """Any live (non-zombie) process in group ``pgid``."""
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = reaper.proc_stat(int(name))
            if st is not None and st.pgrp == pgid and not st.dead:
                return True
    return False


@contextmanager
def killed_on_failure(pgid_box: list[int]):
    """Never leave a sleeping agent behind when the test fails."""
    try:
        yield
    finally:
        for pgid in pgid_box:
            if group_alive(pgid):
                os.killpg(pgid, signal.SIGKILL)


def spawn_stubborn(serve) -> int:
    serve.cli("spawn", "stubborn", "--handle", "mule", "--prompt", "hello")
    info = serve.wait(lambda: (s := serve.session("mule")) and s["state"] == "ready" and s, "mule ready")
    assert info["pid"]
    return info["pid"]


def test_a_killed_serve_leaves_agents_that_the_next_serve_reaps(serve):
    (serve.project / ".aegis.yaml").write_text(STUBBORN_CONFIG)
    serve.start()
    pgids: list[int] = []
    with killed_on_failure(pgids):
        pgids.append(pgid := spawn_stubborn(serve))
        serve.kill9()
        assert group_alive(pgid), "the agent's group outlived the killed serve"
        serve.start()  # reaps before it is ready
        serve.wait(lambda: not group_alive(pgid), "the old agent group is reaped")
        records = (serve.project / ".aegis" / "state" / reaper.FOLDER).glob("*.jsonl")
        assert all(pgid not in [g["pgid"] for g in reaper.read_log(p.read_bytes())[2]] for p in records)


def test_aegis_stop_without_a_serve_reaps_what_a_killed_one_left(serve):
    (serve.project / ".aegis.yaml").write_text(STUBBORN_CONFIG)
    serve.start()
    pgids: list[int] = []
    with killed_on_failure(pgids):
        pgids.append(pgid := spawn_stubborn(serve))
        serve.kill9()
        assert group_alive(pgid)
        out = serve.cli("stop")
        assert "ended 1 agent process group(s)" in out.stdout
        serve.wait(lambda: not group_alive(pgid), "the agent group is gone")
        again = serve.cli("stop", check=False)  # nothing left: the usual "no running Aegis" error
        assert again.returncode == 1
