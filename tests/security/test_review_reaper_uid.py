"""Review of issue 12 finding 14: the reaper signals only process groups that are still ours. A
recorded group whose leader is gone is recognised by its members (same session, born after the
leader); if the pid was reused by *another user's* session whose leader has exited too, its members
fit that description — and a serve run as root would have killed them. Members must also be ours."""

from __future__ import annotations

import os
import subprocess

import pytest
import trio

from aegis_kernel import reaper

pytestmark = [pytest.mark.trio,
              pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="the reaper needs Linux /proc"),
              pytest.mark.skipif(os.geteuid() != 0, reason="needs root to own a group as another user (nobody)")]


def leaderless_group_of_nobody() -> tuple[int, int]:
    """(pgid, pid of a survivor): ``nobody`` starts a session whose leader exits, leaving a sleep in it."""
    done = subprocess.run(["setsid", "sh", "-c", "sleep 600 </dev/null >/dev/null 2>&1 & echo $$ $!"],
                          user="nobody", capture_output=True, text=True, timeout=30, check=True)
    pgid, survivor = (int(x) for x in done.stdout.split())
    return pgid, survivor


async def test_a_reused_pgid_whose_members_belong_to_another_user_is_never_signalled(tmp_path):
    pgid, survivor = leaderless_group_of_nobody()
    try:
        with trio.fail_after(30):  # the leader (sh) is gone once it has been reaped by init
            while (st := reaper.proc_stat(pgid)) is not None and not st.dead:
                await trio.sleep(0.02)
        # what a kernel killed earlier recorded: this pgid, a leader born before the survivor
        folder = tmp_path / reaper.FOLDER
        folder.mkdir(parents=True)
        owner_start = reaper.start_time(os.getpid()) - 1
        (folder / f"{os.getpid()}-{owner_start}.jsonl").write_text(
            f'{{"v":1,"owner":{os.getpid()},"owner_start":{owner_start}}}\n'
            f'{{"+":{pgid},"start":{reaper.start_time(survivor) - 1},"argv0":"python"}}\n')
        await reaper.reap(tmp_path, grace=5)
        st = reaper.proc_stat(survivor)
        assert st is not None and not st.dead, "the reaper killed another user's process"
    finally:
        try:
            os.kill(survivor, 9)
        except ProcessLookupError:
            pass
