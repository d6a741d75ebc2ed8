"""Review of issue 12 finding 3: folders the kernel creates *while running* in a fresh state (not only
those fixed at start) are owner-only. The first envelope to a restorable session creates
``inboxes/``; it came out 0755 (umask default) beside 0600 files."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aegis_kernel.delivery import Envelope

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted) is not installed")


def wrong(root: Path) -> dict[str, str]:
    """Every folder not 0700 and file not 0600 under ``root`` (symlinks and sockets aside)."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            st = path.lstat()
            if stat.S_ISLNK(st.st_mode) or stat.S_ISSOCK(st.st_mode):
                continue
            want = 0o700 if stat.S_ISDIR(st.st_mode) else 0o600
            if stat.S_IMODE(st.st_mode) != want:
                out[str(path.relative_to(root))] = oct(stat.S_IMODE(st.st_mode))
    return out


@pytest.mark.trio
async def test_folders_made_while_running_in_a_fresh_state_are_owner_only(aegis_project, make_kernel):
    state = aegis_project / ".aegis" / "state"
    old = os.umask(0o022)  # the usual login umask: what a folder made without a mode would get
    try:
        async with make_kernel() as kernel:
            a = await kernel.sessions.spawn("helper", prompt="@reply hello")
            await a.wait_for(lambda s: s.metrics.turns == 1, timeout=30)
            kernel.deliver(a.handle, Envelope.new("user", "@reply again"))
            await a.wait_for(lambda s: s.metrics.turns == 2, timeout=30)
            assert (state / "inboxes").is_dir()
            assert wrong(state) == {}
            await kernel.sessions.close(a.handle)
    finally:
        os.umask(old)
    assert wrong(state) == {}
