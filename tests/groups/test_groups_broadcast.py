"""Groups on the in-memory driver: spawn from a preset, broadcast, per-broadcast correlation, gathering."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from gkit import call, envelopes, ready, wait_until

from aegis_kernel import Envelope
from aegis_kernel.operations import OperationError
from aegis_kernel.state import Ledger
from aegis_groups.runtime import GroupRuntime


def journal(kernel, name):
    return Ledger.replay(kernel.state.root / "groups" / f"{name}.jsonl").records


async def spawn_trio(kernel, caller=None):
    out = await call(kernel, "aegis_group_spawn", caller, name="audit", preset="trio")
    members = out["members"]
    for handle in members:
        await kernel.sessions.get(handle).wait_for(lambda s: s.state == "ready")
    return members


async def early_turns(kernel, members):
    """Every member answers a prompt first (those replies must never count for a broadcast)."""
    for handle in members:
        kernel.deliver(handle, Envelope.new("user", f"warm up {handle}"))
    for handle in members:
        await kernel.sessions.get(handle).wait_idle()
        assert kernel.sessions.get(handle).final_text.startswith("early ")


@pytest.mark.trio
async def test_wait_all_returns_exactly_each_members_answer_to_this_broadcast(gdriver, kernel):
    prod = await ready(kernel)
    members = await spawn_trio(kernel, prod.handle)
    assert [kernel.sessions.get(h).profile_name for h in members] == ["member", "member", "other"]
    assert all(kernel.sessions.get(h).spawned_by == prod.handle for h in members)
    await early_turns(kernel, members)
    out = await call(kernel, "aegis_group_broadcast", prod.handle, name="audit", objective="audit PR 214",
                     output_format="bullets", tool_guidance="Read only", boundaries="no patches")
    assert out["members"] == members
    result = await call(kernel, "aegis_group_wait_all", prod.handle, name="audit", timeout=30,
                        reducer="join_by_handle")
    assert result["reduced"] == {h: f"answer from {h}: audit PR 214" for h in members}
    assert result["timeouts"] == [] and result["errors"] == {} and result["status"] == "complete"
    assert set(result["replies"]) == set(members)
    for reply in result["replies"].values():
        assert reply["status"] == "ok" and reply["usage"]["output"] == 5 and reply["turn_s"] >= 0
    # each member got one envelope from the broadcast, with the four fields
    for handle in members:
        [env] = envelopes(kernel.sessions.get(handle), "group:audit/broadcast:")
        assert env.sender == f"group:audit/broadcast:{out['broadcast_id']}"
        for text in ("audit PR 214", "bullets", "Read only", "no patches"):
            assert text in env.body
    events = [r["event"] for r in journal(kernel, "audit")]
    assert events[:4] == ["created", "joined", "joined", "joined"]
    assert events[4:] == ["broadcast", "reply", "reply", "reply", "closed"]


@pytest.mark.trio
async def test_a_reply_from_a_turn_that_did_not_carry_the_broadcast_never_counts(gdriver, kernel):
    members = await spawn_trio(kernel)
    busy = members[0]
    # the member is busy with another turn when the broadcast arrives: that turn's answer is not its reply
    kernel.deliver(busy, Envelope.new("user", "a long task\ngate"))
    await wait_until(lambda: kernel.sessions.get(busy).state == "working")
    await call(kernel, "aegis_group_broadcast", name="audit", objective="question one")
    await wait_until(lambda: len(kernel.service(GroupRuntime).groups["audit"].current.replies) == 2)
    gdriver.gate.set()
    result = await call(kernel, "aegis_group_wait_all", name="audit", timeout=30)
    assert result["reduced"][busy] == f"answer from {busy}: question one"
    texts = [t for h, t in gdriver.turns if h == busy]
    assert texts[0] == "a long task\ngate" and "question one" in texts[1]  # two turns: the broadcast came second


@pytest.mark.trio
async def test_a_failing_member_is_an_error_not_silence(gdriver, kernel):
    members = await spawn_trio(kernel)
    gdriver.plan[members[1]] = "fail"
    gdriver.plan[members[2]] = "crash"
    await call(kernel, "aegis_group_broadcast", name="audit", objective="q")
    result = await call(kernel, "aegis_group_wait_all", name="audit", timeout=30)
    assert list(result["replies"]) == [members[0]]
    assert set(result["errors"]) == {members[1], members[2]} and result["timeouts"] == []
    assert "model refused" in result["errors"][members[1]]
    assert "agent failed" in result["errors"][members[2]]


@pytest.mark.trio
async def test_wait_all_timeout_lists_the_silent_members_and_closes_the_broadcast(gdriver, kernel):
    members = await spawn_trio(kernel)
    gdriver.plan[members[2]] = "hang"
    await call(kernel, "aegis_group_broadcast", name="audit", objective="q")
    await wait_until(lambda: len(kernel.service(GroupRuntime).groups["audit"].current.replies) == 2)
    result = await call(kernel, "aegis_group_wait_all", name="audit", timeout=0.05)
    assert result["timeouts"] == [members[2]] and result["status"] == "timed_out"
    assert set(result["replies"]) == set(members[:2])
    # the group takes a new broadcast now
    await call(kernel, "aegis_group_broadcast", name="audit", objective="again")


@pytest.mark.trio
async def test_a_second_broadcast_while_one_is_open_is_refused_naming_it(gdriver, kernel):
    members = await spawn_trio(kernel)
    gdriver.plan[members[0]] = "hang"
    first = await call(kernel, "aegis_group_broadcast", name="audit", objective="q")
    with pytest.raises(OperationError) as info:
        await call(kernel, "aegis_group_broadcast", name="audit", objective="q2")
    assert first["broadcast_id"] in info.value.message and info.value.code == "busy"


@pytest.mark.trio
async def test_wait_any_returns_the_first_and_the_others_get_the_cancel_envelope(gdriver, kernel):
    members = await spawn_trio(kernel)
    fast, *slow = members
    for handle in slow:
        gdriver.plan[handle] = "hang"
    out = await call(kernel, "aegis_group_broadcast", name="audit", objective="race")
    result = await call(kernel, "aegis_group_wait_any", name="audit", timeout=30)
    assert result["winner"] == fast and result["reduced"] == f"answer from {fast}: race"
    assert list(result["replies"]) == [fast]
    bid = out["broadcast_id"]
    for handle in slow:  # the loser is busy: the passive envelope waits for its turn end
        session = kernel.sessions.get(handle)
        assert [e.id for e in session._pending if e.sender == f"group:audit/cancel:{bid}"]
        [env] = [e for e in session._pending if e.sender.startswith("group:audit/cancel:")]
        assert env.header().startswith(f"✉ from group:audit/cancel:{bid} · superseded by {fast} · ")
    assert not [e for e in kernel.sessions.get(fast)._pending if e.sender.startswith("group:")]


@pytest.mark.trio
async def test_callback_delivers_the_reduced_result_as_one_envelope(gdriver, kernel):
    prod = await ready(kernel)
    members = await spawn_trio(kernel, prod.handle)
    out = await call(kernel, "aegis_group_broadcast", prod.handle, name="audit", objective="cb", callback=True,
                     reducer="concat")
    await wait_until(lambda: envelopes(prod, "group:audit/broadcast:"))
    await trio.testing.wait_all_tasks_blocked()
    [env] = envelopes(prod, "group:audit/broadcast:")
    assert env.sender == f"group:audit/broadcast:{out['broadcast_id']}" and env.status == "complete"
    for handle in members:
        assert f"## {handle}\nanswer from {handle}: cb" in env.body


@pytest.mark.trio
async def test_unknown_or_raising_reducer_is_named_and_the_replies_still_come_back(gdriver, kernel):
    members = await spawn_trio(kernel)
    await call(kernel, "aegis_group_broadcast", name="audit", objective="q")
    result = await call(kernel, "aegis_group_wait_all", name="audit", timeout=30, reducer="nope")
    assert "unknown reducer 'nope'" in result["error"] and result["reduced"] is None
    assert set(result["replies"]) == set(members)


@pytest.mark.trio
async def test_dissolve_closes_only_the_members_the_group_spawned(gdriver, kernel):
    members = await spawn_trio(kernel)
    outsider = await ready(kernel, "other")
    await call(kernel, "aegis_group_add", name="audit", handles=[outsider.handle])
    out = await call(kernel, "aegis_group_dissolve", name="audit")
    assert sorted(out["closed"]) == sorted(members) and out["left_running"] == [outsider.handle]
    assert outsider.state == "ready" and all(kernel.sessions.get(h) is None for h in members)
    assert "audit" not in kernel.service(GroupRuntime).groups
    assert not (kernel.state.root / "groups" / "audit.jsonl").exists()
    assert list((kernel.state.root / "groups" / "archive").glob("audit-*.jsonl"))


@pytest.mark.trio
async def test_rename_move_remove_and_from_handle_must_be_the_caller(gdriver, kernel):
    prod = await ready(kernel)
    members = await spawn_trio(kernel, prod.handle)
    with pytest.raises(OperationError) as info:
        await call(kernel, "aegis_group_spawn", prod.handle, name="x", profiles=["member"], from_handle="someone")
    assert info.value.code == "forbidden"
    await call(kernel, "aegis_group_rename", prod.handle, name="audit", new_name="review")
    rt = kernel.service(GroupRuntime)
    assert list(rt.groups) == ["review"]
    await call(kernel, "aegis_group_add", name="spare", handles=[])
    out = await call(kernel, "aegis_group_move", handle=members[0], to="spare")
    assert out == {"handle": members[0], "from": "review", "to": "spare"}
    await call(kernel, "aegis_group_remove", name="review", handles=[members[1]])
    assert list(rt.groups["review"].members) == [members[2]]
    # another agent may not manage a group it did not create
    other = await ready(kernel, "other")
    with pytest.raises(OperationError) as info:
        await call(kernel, "aegis_group_dissolve", other.handle, name="review")
    assert info.value.code == "forbidden"
    status = await call(kernel, "aegis_group_status", name="review")
    assert [m["handle"] for m in status["members"]] == [members[2]]
    assert {left["handle"] for left in status["left"]} == {members[0], members[1]}


@pytest.mark.trio
async def test_a_member_closed_for_good_leaves_the_group_and_counts_as_an_error(gdriver, kernel):
    members = await spawn_trio(kernel)
    gdriver.plan[members[0]] = "hang"
    await call(kernel, "aegis_group_broadcast", name="audit", objective="q")
    await kernel.sessions.get(members[0]).close("closed by user")
    result = await call(kernel, "aegis_group_wait_all", name="audit", timeout=30)
    assert members[0] in result["errors"]
    assert members[0] not in kernel.service(GroupRuntime).groups["audit"].members


@pytest.mark.trio
async def test_a_renamed_member_stays_a_member_under_its_new_handle(gdriver, kernel):
    members = await spawn_trio(kernel)
    await call(kernel, "aegis_rename", handle=members[0], new_handle="renamed-one")
    status = await call(kernel, "aegis_group_status", name="audit")
    assert [m["handle"] for m in status["members"]] == ["renamed-one", *members[1:]]
    assert status["members"][0]["state"] == "ready"
    await call(kernel, "aegis_group_broadcast", name="audit", objective="q")
    result = await call(kernel, "aegis_group_wait_all", name="audit", timeout=30)
    assert result["reduced"]["renamed-one"] == f"answer from {members[0]}: q"  # the agent knows its first name
    records = journal(kernel, "audit")
    assert {"handle": members[0], "to": "renamed-one"}.items() <= next(
        r for r in records if r["event"] == "member_renamed").items()


@pytest.mark.trio
async def test_a_broadcast_nobody_gathers_closes_at_the_groups_timeout_and_calls_back(gdriver, kernel,
                                                                                       autojump_clock):
    prod = await ready(kernel)
    members = await spawn_trio(kernel, prod.handle)
    gdriver.plan[members[2]] = "hang"
    start = trio.current_time()
    out = await call(kernel, "aegis_group_broadcast", prod.handle, name="audit", objective="q", callback=True)
    b = kernel.service(GroupRuntime).groups["audit"].broadcasts[-1]
    await b.closed.wait()
    assert b.status == "timed_out" and trio.current_time() - start >= 3600  # groups.defaults.timeout: 1h
    await wait_until(lambda: envelopes(prod, "group:audit/broadcast:"))
    [env] = envelopes(prod, "group:audit/broadcast:")
    assert env.status == "timed_out" and env.sender.endswith(out["broadcast_id"])
    assert f"no answer from: {members[2]}" in env.body and f"answer from {members[0]}: q" in env.body
