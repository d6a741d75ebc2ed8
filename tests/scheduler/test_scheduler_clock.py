"""Exact firing on the kernel clock (trio MockClock): cron in a timezone across DST changes, every with
a fire count, and the three overlap policies with a workflow slower than the interval."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import trio
from skit import BASE, scheduler


DAY = 86400


def local(epoch: float, zone: str) -> str:
    return datetime.fromtimestamp(epoch, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M %Z")


def ticks(flows, name: str = "tick") -> list[float]:
    return [at for wf, at, _ in flows.calls if wf == name]


@pytest.mark.trio
async def test_berlin_0230_fires_once_each_day_across_both_dst_changes(write_config, flows, make_kernel, pin_wall,
                                                                        autojump_clock):
    pin_wall("2026-03-27T12:00:00Z")
    write_config(BASE + """
schedules:
  nightly:
    workflow: tick
    cron: "30 2 * * *"
    timezone: Europe/Berlin
""")
    async with make_kernel():
        await trio.sleep(4 * DAY)  # the mock clock jumps from due instant to due instant
    spring = [local(t, "Europe/Berlin") for t in ticks(flows)]
    assert spring == ["2026-03-28 02:30 CET",
                      "2026-03-29 03:00 CEST",  # 02:30 does not exist: the gap's end, once
                      "2026-03-30 02:30 CEST",
                      "2026-03-31 02:30 CEST"]
    flows.calls.clear()
    pin_wall("2026-10-23T12:00:00Z")  # the next kernel, months later (catch_up: skip)
    async with make_kernel() as kernel:
        await trio.sleep(4 * DAY)
        autumn = [local(t, "Europe/Berlin") for t in ticks(flows)]
        assert autumn == ["2026-10-24 02:30 CEST",
                          "2026-10-25 02:30 CEST",  # 02:30 happens twice: only the first fires
                          "2026-10-26 02:30 CET",
                          "2026-10-27 02:30 CET"]
        assert scheduler(kernel).info(scheduler(kernel).get("nightly"))["fires"] == 8  # replayed + new


@pytest.mark.trio
async def test_havana_changes_at_midnight_fire_once_and_invent_nothing(write_config, flows, make_kernel, pin_wall,
                                                                       autojump_clock):
    pin_wall("2026-03-07T12:00:00Z")
    write_config(BASE + """
schedules:
  midnight:
    workflow: tick
    cron: "30 0 * * *"
    timezone: America/Havana
  hourly:
    workflow: tick
    cron: "0 * * * *"
    timezone: America/Havana
    args: {label: hourly}
""")
    async with make_kernel():
        await trio.sleep(2 * DAY - 1800)  # ends at half past: no due instant at the edge
        nightly = [local(at, "America/Havana") for wf, at, a in flows.calls if not a["label"]]
        assert nightly == ["2026-03-08 01:00 CDT",  # 00:00–01:00 does not exist on 2026-03-08
                           "2026-03-09 00:30 CDT"]
        hourly = [at for wf, at, a in flows.calls if a["label"] == "hourly"]
        # 47 real hours, each an hour on the wall; the skipped wall hour 00:00 invents no extra fire
        assert len(hourly) == len(set(hourly)) == 47
    flows.calls.clear()
    pin_wall("2026-10-31T11:30:00Z")  # the next kernel, months later (catch_up: skip)
    async with make_kernel():
        await trio.sleep(2 * DAY)
        nightly = [local(at, "America/Havana") for wf, at, a in flows.calls if not a["label"]]
        assert nightly == ["2026-11-01 00:30 CDT",  # 00:30 happens twice on 2026-11-01: once
                           "2026-11-02 00:30 CST"]
        hourly = [at for wf, at, a in flows.calls if a["label"] == "hourly"]
        # 48 real hours, but the wall hour 00:00 happens twice on 2026-11-01 and fires once
        assert len(hourly) == len(set(hourly)) == 47


@pytest.mark.trio
async def test_every_10m_with_three_fires_fires_three_times_then_stops(write_config, flows, make_kernel, pin_wall,
                                                                       autojump_clock):
    pin_wall("2026-05-01T00:00:00Z")
    write_config(BASE + """
schedules:
  thrice:
    workflow: tick
    every: 10m
    lifecycle: {fires: 3}
""")
    async with make_kernel() as kernel:
        start = kernel.clock.now()
        await trio.sleep(DAY)
        assert [t - start for t in ticks(flows)] == [600, 1200, 1800]
        info = scheduler(kernel).info(scheduler(kernel).get("thrice"))
        assert info["fires"] == 3 and info["next_fire"] is None and info["last_status"] == "ok"


async def _overlap(write_config, flows, make_kernel, policy: str) -> tuple[list[float], list[dict]]:
    write_config(BASE + f"""
schedules:
  busy:
    workflow: slow
    args: {{seconds: 150}}
    every: 60s
    on_overlap: {policy}
    lifecycle: {{until: "2026-05-01T00:05:30Z"}}
""")
    async with make_kernel() as kernel:
        start = kernel.clock.now()
        await trio.sleep(900)
        rt = scheduler(kernel)
        records = rt.logs("busy", 100)
        return [t - start for t in ticks(flows, "slow")], records


@pytest.mark.trio
async def test_on_overlap_skip_drops_the_fires_due_while_one_runs(write_config, flows, make_kernel, pin_wall,
                                                                  autojump_clock):
    pin_wall("2026-05-01T00:00:00Z")
    started, records = await _overlap(write_config, flows, make_kernel, "skip")
    assert started == [60, 240]  # 120 and 180 fell while the first ran; 300 while the second did
    assert [r["due"][-9:] for r in records if r["event"] == "fire_skipped"] == ["00:02:00Z", "00:03:00Z", "00:05:00Z"]
    assert [r["status"] for r in records if r["event"] == "fire_completed"] == ["ok", "ok"]


@pytest.mark.trio
async def test_on_overlap_queue_starts_the_next_fire_when_the_last_ends(write_config, flows, make_kernel, pin_wall,
                                                                        autojump_clock):
    pin_wall("2026-05-01T00:00:00Z")
    started, records = await _overlap(write_config, flows, make_kernel, "queue")
    # due 120 waits for the first (ends 210); dues passing meanwhile join it; then 240 waits until 360…
    assert started == [60, 210, 360]
    assert [r["status"] for r in records if r["event"] == "fire_completed"] == ["ok", "ok", "ok"]
    assert not [r for r in records if r["event"] == "fire_failed"]


@pytest.mark.trio
async def test_on_overlap_kill_cancels_the_running_fire_and_starts_the_new_one(write_config, flows, make_kernel,
                                                                               pin_wall, autojump_clock):
    pin_wall("2026-05-01T00:00:00Z")
    started, records = await _overlap(write_config, flows, make_kernel, "kill")
    assert started == [60, 120, 180, 240, 300]
    outcomes = [r["status"] for r in records if r["event"] in ("fire_completed", "fire_failed")]
    assert outcomes == ["failed:killed"] * 4 + ["ok"]
    assert flows.finished and len(flows.finished) == 1  # only the last one ran to its end
