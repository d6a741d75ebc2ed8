"""aegis_kernel.reaper: agent process groups are recorded while they run and reaped after their kernel
died, never a process whose pid was reused (real child processes; Linux ``/proc``)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio

from aegis_kernel import reaper
from aegis_kernel.process import open_agent_process

pytestmark = [pytest.mark.trio,
              pytest.mark.skipif(not os.path.exists("/proc/self/stat"), reason="the reaper needs Linux /proc")]


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent counts as gone)."""
    st = reaper.proc_stat(pid)
    return st is not None and not st.dead


def group(*argv: str) -> subprocess.Popen:
    """A process leading its own group, as the kernel starts agents."""
    return subprocess.Popen(list(argv), start_new_session=True, stdin=subprocess.DEVNULL)


def record(state: Path, groups: list[dict], *, owner: int | None = None, owner_start: int | None = None) -> Path:
    """A record file as a kernel that has died would have left it (by default: owner this process
    with a start time that is not its own, i.e. a dead kernel whose pid was reused)."""
    owner = os.getpid() if owner is None else owner
    if owner_start is None:
        owner_start = reaper.start_time(os.getpid()) - 1
    folder = state / reaper.FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{owner}-{owner_start}.jsonl"
    lines = [{"v": 1, "owner": owner, "owner_start": owner_start},
             *({"+": g["pgid"], "start": g["start"], "argv0": g["argv0"]} for g in groups)]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def entry(proc: subprocess.Popen, start: int | None = None) -> dict:
    return {"pgid": proc.pid, "start": reaper.start_time(proc.pid) if start is None else start, "argv0": "sleep"}


async def wait_exit(proc: subprocess.Popen) -> int:
    with trio.fail_after(10):
        while proc.poll() is None:
            await trio.sleep(0.02)
    return proc.returncode


async def test_a_group_left_by_a_dead_kernel_is_terminated(tmp_path):
    survivor = group("sleep", "600")
    path = record(tmp_path, [entry(survivor)])
    reaped = await reaper.reap(tmp_path, grace=30)  # returns as soon as the group is gone
    assert [(r.pgid, r.gone, r.killed) for r in reaped] == [(survivor.pid, True, False)]
    assert await wait_exit(survivor) == -signal.SIGTERM
    assert not path.exists()


async def test_a_reused_pid_is_never_touched(tmp_path):
    stranger = group("sleep", "600")  # holds the recorded pid, but started at another time
    try:
        path = record(tmp_path, [entry(stranger, start=reaper.start_time(stranger.pid) - 5)])
        assert await reaper.reap(tmp_path) == []
        assert alive(stranger.pid) and stranger.poll() is None
        assert not path.exists()  # the record is spent either way
    finally:
        stranger.kill()
        stranger.wait()


async def test_the_groups_of_a_live_kernel_are_left_alone(tmp_path):
    busy = group("sleep", "600")
    try:
        path = record(tmp_path, [entry(busy)], owner_start=reaper.start_time(os.getpid()))  # us: alive
        assert await reaper.reap(tmp_path) == []
        assert alive(busy.pid) and path.exists()
    finally:
        busy.kill()
        busy.wait()


async def test_a_group_ignoring_sigterm_is_killed(tmp_path):
    stubborn = subprocess.Popen(["sh", "-c", "trap '' TERM; echo ready; sleep 600 & wait; sleep 600"],
                                start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
    assert stubborn.stdout.readline() == b"ready\n"  # SIGTERM is ignored from here on
    path = record(tmp_path, [entry(stubborn)])
    reaped = await reaper.reap(tmp_path, grace=0.3)
    assert [(r.pgid, r.killed, r.gone) for r in reaped] == [(stubborn.pid, True, True)]
    assert await wait_exit(stubborn) == -signal.SIGKILL
    stubborn.stdout.close()
    assert not path.exists()


async def test_members_outliving_their_leader_are_reaped(tmp_path):
    leader = group(sys.executable, "-c", "import subprocess; print(subprocess.Popen(['sleep', '600']).pid)")
    leader_start = reaper.start_time(leader.pid)
    assert await wait_exit(leader) == 0  # the leader is gone (and reaped: its pid is free)
    members = [int(name) for name in os.listdir("/proc") if name.isdigit()
               and (st := reaper.proc_stat(int(name))) and st.pgrp == leader.pid and not st.dead]
    assert len(members) == 1
    record(tmp_path, [{"pgid": leader.pid, "start": leader_start, "argv0": "python"}])
    reaped = await reaper.reap(tmp_path, grace=30)
    assert [(r.pgid, r.gone) for r in reaped] == [(leader.pid, True)]
    assert not alive(members[0])


async def test_a_kernel_records_its_groups_until_they_are_closed(tmp_path):
    recorder = reaper.PGroupRecorder(tmp_path)
    token = reaper.current.set(recorder)
    try:
        async with trio.open_nursery() as nursery:
            proc = await open_agent_process(nursery, ["sleep", "600"], {}, tmp_path)
            owner, owner_start, groups = reaper.read_log(recorder.path.read_bytes())
            assert owner == os.getpid() and owner_start == reaper.start_time(os.getpid())
            assert groups == [{"pgid": proc.pid, "start": reaper.start_time(proc.pid), "argv0": "sleep"}]
            assert recorder.path.stat().st_mode & 0o777 == 0o600
            assert (tmp_path / reaper.FOLDER).stat().st_mode & 0o777 == 0o700
            await proc.close(grace=0.2)
            assert reaper.read_log(recorder.path.read_bytes())[2] == []  # nothing left to reap
        recorder.close()
        assert not recorder.path.exists()
    finally:
        reaper.current.reset(token)


async def test_the_log_survives_a_torn_line_and_is_compacted_when_long(tmp_path):
    recorder = reaper.PGroupRecorder(tmp_path)
    me = reaper.start_time(os.getpid())
    for pgid in range(1000, 1000 + 3 * reaper.PGroupRecorder.COMPACT_AT):  # spawn and close, many times
        recorder.groups[pgid] = {"pgid": pgid, "start": me, "argv0": "x"}
        recorder._append({"+": pgid, "start": me, "argv0": "x"})
        if pgid % 7:
            recorder.ended(pgid)
    lines = recorder.path.read_bytes().splitlines()
    assert len(lines) <= 2 * reaper.PGroupRecorder.COMPACT_AT + 1  # compacted, not grown without end
    live = sorted(recorder.groups)
    with open(recorder.path, "ab") as log:
        log.write(b'{"+": 5, "sta')  # a kill mid-write
    assert sorted(g["pgid"] for g in reaper.read_log(recorder.path.read_bytes())[2]) == live
    recorder.close()
    assert recorder.path.exists()  # groups left: kept for a later kernel to reap


async def test_outside_a_kernel_nothing_is_recorded(tmp_path):
    async with trio.open_nursery() as nursery:
        proc = await open_agent_process(nursery, ["sleep", "600"], {}, tmp_path)
        await proc.close(grace=0.2)
    assert not (tmp_path / reaper.FOLDER).exists()
