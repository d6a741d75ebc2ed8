"""Audit and replay across kernels: a fire_at that fired never fires again; a dangling fire is closed
failed:interrupted; counts survive; the snapshot says what the dashboards show; catch_up."""

from __future__ import annotations

import json

import pytest
import trio
import trio.testing
from skit import BASE, scheduler, until

from aegis_kernel import iso_utc, parse_iso


def journal(project, name: str) -> list[dict]:
    path = project / ".aegis" / "state" / "schedules" / f"{name}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.trio
async def test_a_fire_at_that_fired_never_fires_again_after_a_restart(write_config, flows, make_kernel, pin_wall,
                                                                      aegis_project, autojump_clock):
    pin_wall("2026-06-01T00:00:00Z")
    write_config(BASE + """
schedules:
  once:
    workflow: tick
    fire_at: "2026-06-01T00:00:05Z"
""")
    async with make_kernel() as kernel:
        await trio.sleep(60)
        assert [at for _, at, _ in flows.calls] == [parse_iso("2026-06-01T00:00:05Z")]
    pin_wall("2026-06-01T00:00:00Z")  # the next kernel starts *before* the instant again
    async with make_kernel() as kernel:
        await trio.sleep(60)
        info = scheduler(kernel).info(scheduler(kernel).get("once"))
    assert len(flows.calls) == 1
    assert info["fires"] == 1 and info["next_fire"] is None and info["last_status"] == "ok"
    events = [r["event"] for r in journal(aegis_project, "once")]
    assert events == ["created", "fire_requested", "fire_completed"]


@pytest.mark.trio
async def test_a_dangling_fire_is_closed_failed_interrupted_and_counts_survive(write_config, flows, make_kernel,
                                                                               pin_wall, aegis_project,
                                                                               autojump_clock):
    pin_wall("2026-06-01T00:00:00Z")
    write_config(BASE + """
schedules:
  long:
    workflow: slow
    args: {seconds: 3600}
    every: 10m
    lifecycle: {fires: 3}
""")
    async with make_kernel() as kernel:
        await until(lambda: flows.calls, timeout=3600)
        assert scheduler(kernel).info(scheduler(kernel).get("long"))["in_flight"] == 1
    # the kernel stopped mid-fire: nothing closed it
    assert journal(aegis_project, "long")[-1]["event"] == "fire_requested"
    async with make_kernel() as kernel:
        info = scheduler(kernel).info(scheduler(kernel).get("long"))
        assert info["fires"] == 1 and info["last_status"] == "failed:interrupted"
        snapshot = aegis_project / ".aegis" / "state" / "schedules.snapshot.json"
        await until(lambda: snapshot.exists())
        await until(lambda: json.loads(snapshot.read_text())["schedules"][0]["last_status"] == "failed:interrupted")
        row = json.loads(snapshot.read_text())["schedules"][0]
        assert row["name"] == "long" and row["fires"] == 1 and row["next_fire"]
    last = journal(aegis_project, "long")[-1]
    assert last["event"] == "fire_failed" and last["status"] == "failed:interrupted"


@pytest.mark.trio
async def test_a_crashing_workflow_is_recorded_failed_crash(write_config, flows, make_kernel, pin_wall, aegis_project,
                                                            autojump_clock):
    pin_wall("2026-06-01T00:00:00Z")
    write_config(BASE + """
schedules:
  bad:
    workflow: boom
    every: 90s
    lifecycle: once
""")
    async with make_kernel() as kernel:
        await trio.sleep(200)
        records = scheduler(kernel).logs("bad")
    assert [r["event"] for r in records] == ["fire_requested", "fire_failed"]
    assert records[1]["status"] == "failed:crash" and "kaboom" in records[1]["error"]


@pytest.mark.trio
@pytest.mark.parametrize("catch_up, expected", [("skip", 0), ("once", 1)])
async def test_fires_missed_while_nothing_ran_follow_catch_up(write_config, flows, make_kernel, pin_wall,
                                                              catch_up, expected, autojump_clock):
    pin_wall("2026-06-01T00:00:00Z")
    write_config(BASE + f"""
schedules:
  hourly:
    workflow: tick
    cron: "0 * * * *"
    catch_up: {catch_up}
""")
    async with make_kernel():
        await trio.sleep(3600 + 60)
    assert len(flows.calls) == 1
    pin_wall("2026-06-01T05:30:00Z")  # four due instants passed while no kernel ran
    async with make_kernel():
        await trio.testing.wait_all_tasks_blocked()
        await until(lambda: len(flows.calls) >= 1 + expected)
        await trio.sleep(60)  # half an hour before the next due: nothing more
        assert len(flows.calls) == 1 + expected
        await trio.sleep(1800)
        assert [iso_utc(at) for _, at, _ in flows.calls][-1] == "2026-06-01T06:00:00Z"


@pytest.mark.trio
async def test_old_fires_move_to_the_archive_at_start_and_still_count(write_config, flows, make_kernel, pin_wall,
                                                                      aegis_project, monkeypatch, autojump_clock):
    from aegis_scheduler import runtime

    monkeypatch.setattr(runtime, "ARCHIVE_AT", 5)
    monkeypatch.setattr(runtime, "KEEP", 2)
    pin_wall("2026-06-01T00:00:00Z")
    write_config(BASE + "schedules:\n  often:\n    workflow: tick\n    every: 10s\n    lifecycle: {fires: 12}\n")
    async with make_kernel():
        await trio.sleep(95)  # nine fires (due 10 s … 90 s)
    assert len(flows.calls) == 9
    async with make_kernel() as kernel:
        live = journal(aegis_project, "often")
        archived = [r for r in live if r["event"] == "archived"]
        assert len(archived) == 1 and archived[0]["fires"] == 7  # all but the newest two moved
        assert (aegis_project / ".aegis" / "state" / "schedules" / "archive").is_dir()
        rt = scheduler(kernel)
        assert rt.get("often").fires == 9
        await trio.sleep(3600)
        assert len(flows.calls) == 12 and rt.get("often").fires == 12  # the lifecycle still counts them all
