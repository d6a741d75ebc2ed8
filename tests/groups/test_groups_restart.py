"""Groups across a restart: the journal brings groups back, restored members stay, lost ones leave with
a reason, an open broadcast is closed ``interrupted`` and its broadcaster told exactly once."""

from __future__ import annotations

import json

import pytest
import trio.testing
from gkit import call, envelopes, ready, wait_until

from aegis_kernel.state import Ledger
from aegis_groups.runtime import GroupRuntime


@pytest.mark.trio
async def test_restart_interrupts_the_open_broadcast_keeps_restored_members_and_drops_lost_ones(
        gdriver, make_kernel, aegis_project):
    async with make_kernel() as kernel:
        prod = await ready(kernel)
        out = await call(kernel, "aegis_group_spawn", prod.handle, name="audit", preset="trio")
        members = out["members"]
        for handle in members:
            await kernel.sessions.get(handle).wait_for(lambda s: s.state == "ready")
            gdriver.plan[handle] = "hang"
        b = await call(kernel, "aegis_group_broadcast", prod.handle, name="audit", objective="q")
        await wait_until(lambda: all(kernel.sessions.get(h).state == "working" for h in members))
    # one member's session is lost (not in the snapshot the restart restores)
    snapshot = aegis_project / ".aegis" / "state" / "sessions.json"
    data = json.loads(snapshot.read_text())
    data["sessions"] = [s for s in data["sessions"] if s["handle"] != members[2]]
    snapshot.write_text(json.dumps(data))
    gdriver.plan.clear()
    async with make_kernel(restore=True) as kernel:
        rt = kernel.service(GroupRuntime)
        await rt.settled.wait()
        group = rt.groups["audit"]
        assert list(group.members) == members[:2]
        assert group.left[-1]["handle"] == members[2] and "lost at restart" in group.left[-1]["reason"]
        assert group.current is None and group.broadcasts[-1].status == "interrupted"
        prod = kernel.sessions.get(prod.handle)
        await wait_until(lambda: envelopes(prod, "group:audit/broadcast:"))
        [env] = envelopes(prod, "group:audit/broadcast:")
        assert env.status == "interrupted" and b["broadcast_id"] in env.sender
        for handle in members[:2]:  # the members that were on it get a passive note that it is moot
            session = kernel.sessions.get(handle)
            notes = [e for e in [*session._pending, *envelopes(session, "group:audit/cancel:")]
                     if getattr(e, "sender", "") == f"group:audit/cancel:{b['broadcast_id']}"]
            assert [n.status for n in notes] == ["interrupted by a restart of Aegis"]
        # the group works again
        await call(kernel, "aegis_group_broadcast", name="audit", objective="after")
        result = await call(kernel, "aegis_group_wait_all", name="audit", timeout=30)
        assert set(result["reduced"]) == set(members[:2])
    async with make_kernel(restore=True) as kernel:  # a further restart tells nobody again
        rt = kernel.service(GroupRuntime)
        await rt.settled.wait()
        await trio.testing.wait_all_tasks_blocked()
        prod = kernel.sessions.get(prod.handle)
        assert len([e for e in envelopes(prod, "group:audit/broadcast:") if e.status == "interrupted"]) == 1
    records = Ledger.replay(aegis_project / ".aegis" / "state" / "groups" / "audit.jsonl").records
    closed = [r for r in records if r["event"] == "closed"]
    assert [r["status"] for r in closed] == ["interrupted", "complete"]


@pytest.mark.trio
async def test_a_long_journal_archives_its_older_broadcasts_at_start_and_keeps_the_group(gdriver, make_kernel,
                                                                                      aegis_project):
    from aegis_groups.runtime import ARCHIVE_AT, RECENT

    async with make_kernel() as kernel:
        out = await call(kernel, "aegis_group_spawn", name="busy", profiles=["member"])
        for i in range(ARCHIVE_AT):
            await call(kernel, "aegis_group_broadcast", name="busy", objective=f"q{i}")
            await call(kernel, "aegis_group_wait_all", name="busy", timeout=30)
    folder = aegis_project / ".aegis" / "state" / "groups"
    async with make_kernel(restore=True) as kernel:
        rt = kernel.service(GroupRuntime)
        await rt.settled.wait()
        group = rt.groups["busy"]
        assert list(group.members) == out["members"]
        assert [b.fields["objective"] for b in group.broadcasts] == [f"q{i}" for i in range(ARCHIVE_AT - RECENT,
                                                                                            ARCHIVE_AT)]
        await call(kernel, "aegis_group_broadcast", name="busy", objective="after")
        result = await call(kernel, "aegis_group_wait_all", name="busy", timeout=30)
        assert result["reduced"] == {out["members"][0]: f"answer from {out['members'][0]}: after"}
    live = Ledger.replay(folder / "busy.jsonl").records
    assert live[0]["event"] == "archived" and live[0]["broadcasts"] == ARCHIVE_AT - RECENT
    [archive] = list((folder / "archive").glob("busy-*.jsonl"))
    moved = Ledger.replay(archive).records
    assert sum(r["event"] == "closed" for r in moved) == ARCHIVE_AT - RECENT
