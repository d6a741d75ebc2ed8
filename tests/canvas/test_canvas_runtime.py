"""Canvas operations in one kernel on the in-memory driver: open, read, write, conflicts, wake-ups with
real diffs, external edits, and durability across kernels."""

from __future__ import annotations

import difflib
import json
import os

import pytest
import trio
import trio.testing
from canvas_testkit import agent, call, summaries, wait_until, wakeups

from aegis_canvas.runtime import CanvasRuntime
from aegis_kernel import OperationError, Ledger


def ledger(kernel, name):
    return Ledger.replay(kernel.state.root / "canvases" / name / "ledger.jsonl").records


@pytest.mark.trio
async def test_open_creates_the_file_and_refuses_rebinding_to_another(fake, kernel, aegis_project):
    a = await agent(kernel)
    out = await call(kernel, "aegis_canvas_open", a.handle, name="report-q3", file="vault/reports/q3.md",
                     from_handle=a.handle)
    assert (out["canvas"], out["file"], out["version"], out["created"]) == ("report-q3", "vault/reports/q3.md", 0, True)
    assert (aegis_project / "vault/reports/q3.md").read_text() == ""
    again = await call(kernel, "aegis_canvas_open", a.handle, name="report-q3", file="vault/reports/q3.md")
    assert again["created"] is False
    with pytest.raises(OperationError, match="bound to 'vault/reports/q3.md'") as err:
        await call(kernel, "aegis_canvas_open", a.handle, name="report-q3", file="other.md")
    assert not (aegis_project / "other.md").exists() and err.value.param == "file"
    with pytest.raises(OperationError, match="is not you"):
        await call(kernel, "aegis_canvas_open", a.handle, name="x", file="x.md", from_handle="someone-else")


@pytest.mark.trio
async def test_a_write_wakes_each_other_subscriber_once_with_a_real_diff_of_the_section(fake, kernel, aegis_project):
    pm, researcher, writer_sub = await agent(kernel), await agent(kernel), await agent(kernel)
    path = aegis_project / "vault/reports/q3.md"
    path.parent.mkdir(parents=True)
    old_data = "".join(f"row {i}\n" for i in range(10))
    path.write_text(f"# Q3\n\n## data\n{old_data}\n## notes\nkeep me\n")
    os.chmod(path, 0o640)
    await call(kernel, "aegis_canvas_open", pm.handle, name="report-q3", file="vault/reports/q3.md")
    await call(kernel, "aegis_canvas_subscribe", pm.handle, name="report-q3", from_handle=pm.handle)
    await call(kernel, "aegis_canvas_subscribe", writer_sub.handle, name="report-q3")
    new_data = "Q3 numbers came in stronger than projected\n" + "".join(
        f"row {i}\n" for i in range(10) if i not in (2, 3, 4)) + "".join(f"extra {i}\n" for i in range(17))
    out = await call(kernel, "aegis_canvas_write_section", writer_sub.handle, name="report-q3", section="data",
                     content=new_data, if_version=0)
    assert out["version"] == 1
    unified = list(difflib.unified_diff(old_data.splitlines(), new_data.splitlines(), lineterm=""))
    plus = sum(1 for ln in unified if ln.startswith("+") and not ln.startswith("+++"))
    minus = sum(1 for ln in unified if ln.startswith("-") and not ln.startswith("---"))
    assert (out["added"], out["removed"]) == (plus, minus) == (18, 3)
    text = path.read_text()
    assert "keep me" in text and "extra 16" in text and "row 2\n" not in text
    assert oct(path.stat().st_mode & 0o777) == oct(0o640)  # the file's mode is kept
    await wait_until(lambda: len(wakeups(pm)) == 1 and pm.state == "ready")
    [env] = wakeups(pm)
    assert env.sender == "canvas:report-q3"
    assert summaries(env) == [{"section": "data", "writer": f"agent:{writer_sub.handle}", "added": 18, "removed": 3}]
    assert env.body.split("\n──\n", 1)[1].startswith("Q3 numbers came in stronger than projected\n")
    assert researcher.history and not wakeups(researcher)  # not subscribed
    await trio.testing.wait_all_tasks_blocked()
    assert wakeups(writer_sub) == []  # the writer is not woken by its own write
    [rec] = [r for r in ledger(kernel, "report-q3") if r["event"] == "write"]
    assert {k: rec[k] for k in ("writer", "section", "op", "added", "removed", "version")} == {
        "writer": f"agent:{writer_sub.handle}", "section": "data", "op": "write", "added": 18, "removed": 3,
        "version": 1}


@pytest.mark.trio
async def test_a_stale_if_version_is_a_conflict_with_the_diff_since_and_writes_nothing(fake, kernel, aegis_project):
    a, b = await agent(kernel), await agent(kernel)
    await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
    await call(kernel, "aegis_canvas_write_section", a.handle, name="doc", section="plan", content="step 1")
    before = (aegis_project / "doc.md").read_bytes()
    with pytest.raises(OperationError) as err:
        await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="plan", content="mine",
                   if_version=0)
    assert err.value.code == "conflict" and err.value.data["version"] == 1
    assert "+step 1" in err.value.data["diff"]
    assert (aegis_project / "doc.md").read_bytes() == before
    ok = await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="plan", content="mine",
                    if_version=1)
    assert ok["version"] == 2
    read = await call(kernel, "aegis_canvas_read", a.handle, name="doc", section="plan")
    assert (read["content"], read["version"], read["last"]["writer"]) == ("mine\n", 2, f"agent:{b.handle}")
    diff = await call(kernel, "aegis_canvas_diff", a.handle, name="doc", since=1)
    assert "-step 1" in diff["diff"] and "+mine" in diff["diff"]


@pytest.mark.trio
async def test_an_edit_made_outside_aegis_reaches_subscribers_as_written_by_user_and_own_writes_only_once(
        fake, kernel, aegis_project):
    a, b = await agent(kernel), await agent(kernel)
    await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="notes/doc.md")
    await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc")
    await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="data", content="one\ntwo")
    await wait_until(lambda: len(wakeups(a)) == 1)
    await kernel.service(CanvasRuntime).watching()
    path = aegis_project / "notes/doc.md"
    path.write_text(path.read_text().replace("two\n", "two\nthree\nfour\n") + "\n## extra\nby hand\n")
    await wait_until(lambda: len(wakeups(a)) == 2)
    user = wakeups(a)[1]
    assert summaries(user) == [
        {"section": "data", "writer": "user", "added": 2, "removed": 0},
        {"section": "extra", "writer": "user", "added": 1, "removed": 0}]
    # the watcher handles changes in order: had it reported Aegis's own write, that would have come first
    assert summaries(wakeups(a)[0])[0]["writer"] == f"agent:{b.handle}"
    rt = kernel.service(CanvasRuntime)
    assert rt.canvases["doc"].version == 2
    ops = [(r["op"], r["section"], r["writer"]) for r in ledger(kernel, "doc") if r["event"] == "write"]
    assert ops == [("write", "data", f"agent:{b.handle}"), ("external", "data", "user"), ("external", "extra", "user")]
    # an edit saved the way git and many editors save (a new file renamed over the old one)
    tmp = path.with_name(".doc.md.swp")
    tmp.write_text(path.read_text().replace("by hand\n", "by hand, then renamed over\n"))
    os.replace(tmp, path)
    await wait_until(lambda: len(wakeups(a)) == 3)
    assert summaries(wakeups(a)[2]) == [{"section": "extra", "writer": "user", "added": 1, "removed": 1}]


@pytest.mark.trio
async def test_an_edit_the_watcher_has_not_reported_yet_is_recorded_before_the_next_write(fake, kernel, aegis_project):
    a, b = await agent(kernel), await agent(kernel)
    await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
    await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc")
    rt = kernel.service(CanvasRuntime)

    async def watcher_too_slow(canvas):
        return False

    rt.check_file = watcher_too_slow  # the write alone must notice the edit
    (aegis_project / "doc.md").write_text("## by-hand\nx\n")
    out = await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="data", content="y")
    assert out["version"] == 2
    assert (aegis_project / "doc.md").read_text() == "## by-hand\nx\n\n## data\ny\n"  # the hand edit survived
    await wait_until(lambda: len(wakeups(a)) == 2)
    assert [summaries(e)[0]["writer"] for e in wakeups(a)] == ["user", f"agent:{b.handle}"]
    with pytest.raises(OperationError) as err:  # a caller that had read version 0 learns of both
        await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="data", content="z",
                   if_version=0)
    assert err.value.code == "conflict" and "+x" in err.value.data["diff"] and "+y" in err.value.data["diff"]


@pytest.mark.trio
async def test_subscriptions_to_some_sections_and_unsubscribe(fake, kernel):
    a, b = await agent(kernel), await agent(kernel)
    await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
    await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc", sections=["risks"])
    await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="data", content="d")
    await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="risks", content="r")
    await wait_until(lambda: len(wakeups(a)) == 1)
    assert summaries(wakeups(a)[0])[0]["section"] == "risks"
    out = await call(kernel, "aegis_canvas_unsubscribe", a.handle, name="doc")
    assert out["unsubscribed"] is True
    await call(kernel, "aegis_canvas_append_to_section", b.handle, name="doc", section="risks", content="r2")
    await trio.testing.wait_all_tasks_blocked()
    assert len(wakeups(a)) == 1
    log = await call(kernel, "aegis_canvas_log", None, name="doc", n=10)
    assert [(w["section"], w["op"], w["version"]) for w in log["writes"]] == [
        ("data", "write", 1), ("risks", "write", 2), ("risks", "append", 3)]


@pytest.mark.trio
async def test_a_closed_sessions_subscriptions_end(fake, kernel):
    a, b = await agent(kernel), await agent(kernel)
    await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
    await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc")
    await kernel.sessions.close(a.handle)
    listed = await call(kernel, "aegis_canvas_list")
    assert listed["canvases"][0]["subscribers"] == {}
    [rec] = [r for r in ledger(kernel, "doc") if r["event"] == "unsubscribed"]
    assert rec["handle"] == a.handle and "session closed" in rec["reason"]
    await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="data", content="d")


@pytest.mark.trio
async def test_bindings_subscriptions_and_the_ledger_survive_a_restart(fake, make_kernel, aegis_project):
    async with make_kernel() as kernel:
        a = await agent(kernel, handle="pm")
        await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
        await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc")
        await call(kernel, "aegis_canvas_write_section", None, name="doc", section="data", content="v1")
        await wait_until(lambda: len(wakeups(a)) == 1)
        earlier = {e.envelope_id for e in wakeups(a)}  # the restored session's history shows it again
    (aegis_project / "doc.md").write_text("## data\nedited while stopped\n")  # Aegis is not running
    async with make_kernel(restore=True) as kernel:
        await wait_until(lambda: kernel.sessions.get("pm") is not None and kernel.sessions.get("pm").state == "ready")
        pm = kernel.sessions.get("pm")

        def new_wakeups():
            return [e for e in wakeups(pm) if e.envelope_id not in earlier]
        b = await agent(kernel)
        rt = kernel.service(CanvasRuntime)
        canvas = rt.canvases["doc"]
        assert canvas.subscribers == {"pm": None} and canvas.version == 2  # v1, then the offline edit
        out = await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="data", content="v3")
        assert out["version"] == 3
        await wait_until(lambda: len(new_wakeups()) == 2)
        # the edit made while Aegis was stopped, diffed per section against the last content Aegis knew
        assert [summaries(e) for e in new_wakeups()] == [
            [{"section": "data", "writer": "user", "added": 1, "removed": 1}],
            [{"section": "data", "writer": f"agent:{b.handle}", "added": 1, "removed": 1}]]
        assert new_wakeups()[0].body.endswith("──\nedited while stopped")


@pytest.mark.trio
async def test_an_edit_while_stopped_without_a_snapshot_is_still_reported(fake, make_kernel, aegis_project):
    async with make_kernel() as kernel:
        a = await agent(kernel, handle="pm")
        await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
        await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc")
        await call(kernel, "aegis_canvas_write_section", None, name="doc", section="data", content="v1")
        await wait_until(lambda: len(wakeups(a)) == 1)
        earlier = {e.envelope_id for e in wakeups(a)}
    (aegis_project / ".aegis/state/canvases/doc/last.md").unlink()  # e.g. written by an older version
    (aegis_project / "doc.md").write_text("## data\nedited while stopped\n")
    async with make_kernel(restore=True) as kernel:

        def new_wakeups():
            pm = kernel.sessions.get("pm")
            return [e for e in wakeups(pm) if e.envelope_id not in earlier] if pm is not None else []

        await wait_until(lambda: len(new_wakeups()) == 1)
        [env] = new_wakeups()
        assert env.body.startswith("the file was changed while Aegis was not running · written by user\n──\n")
        assert kernel.service(CanvasRuntime).canvases["doc"].version == 2


@pytest.mark.trio
@pytest.mark.parametrize("file", ["../x.md", "/tmp/aegis-canvas-outside.md", "link/out.md", ".aegis/state/x.md"])
async def test_paths_outside_the_project_are_refused_and_nothing_is_written(fake, kernel, aegis_project, file, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (aegis_project / "link").symlink_to(outside)
    with pytest.raises(OperationError) as err:
        await call(kernel, "aegis_canvas_open", None, name="bad", file=file)
    assert err.value.param == "file"
    assert "outside the project root" in err.value.message or ".aegis/" in err.value.message
    assert not (tmp_path / "x.md").exists() and not (outside / "out.md").exists()
    assert not os.path.exists("/tmp/aegis-canvas-outside.md")
    assert (await call(kernel, "aegis_canvas_list"))["canvases"] == []


@pytest.mark.trio
async def test_bad_input_is_refused_clearly_and_nothing_is_written(fake, kernel, aegis_project, tmp_path):
    a = await agent(kernel)
    with pytest.raises(OperationError, match="no canvas 'nope'") as err:
        await call(kernel, "aegis_canvas_write_section", a.handle, name="nope", section="s", content="x")
    assert err.value.code == "unknown_canvas"
    await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
    with pytest.raises(OperationError, match="line break"):
        await call(kernel, "aegis_canvas_write_section", a.handle, name="doc", section="a\n## b", content="x")
    with pytest.raises(OperationError, match="may not contain a '## ' heading"):
        await call(kernel, "aegis_canvas_write_section", a.handle, name="doc", section="a", content="x\n## b\ny")
    await call(kernel, "aegis_canvas_write_section", a.handle, name="doc", section="later", content="kept")
    before = (aegis_project / "doc.md").read_bytes()
    with pytest.raises(OperationError, match="unclosed code fence"):
        await call(kernel, "aegis_canvas_write_section", a.handle, name="doc", section="a", content="```\ncode")
    assert (aegis_project / "doc.md").read_bytes() == before
    (aegis_project / "latin1.md").write_bytes("## données\ncafé\n".encode("latin-1"))
    with pytest.raises(OperationError, match="not UTF-8"):
        await call(kernel, "aegis_canvas_open", a.handle, name="latin", file="latin1.md")
    # a file that stops being UTF-8 after it was opened: the write is refused, the file left as it is
    (aegis_project / "doc.md").write_bytes(b"\xff\xfe broken")
    with pytest.raises(OperationError, match="not UTF-8"):
        await call(kernel, "aegis_canvas_write_section", a.handle, name="doc", section="s", content="x")
    assert (aegis_project / "doc.md").read_bytes() == b"\xff\xfe broken"
    # a symlink swapped in after the open is caught before the write
    outside = tmp_path / "outside.md"
    outside.write_text("")
    (aegis_project / "doc.md").unlink()
    (aegis_project / "doc.md").symlink_to(outside)
    with pytest.raises(OperationError, match="outside the project root"):
        await call(kernel, "aegis_canvas_write_section", a.handle, name="doc", section="s", content="x")
    assert outside.read_text() == ""
    assert [r["section"] for r in ledger(kernel, "doc") if r["event"] == "write"] == ["later"]
    json.dumps(await call(kernel, "aegis_canvas_list"))  # every answer is JSON


@pytest.mark.trio
async def test_a_failed_subscriber_resumed_keeps_its_subscription_and_gets_what_was_held(fake, kernel):
    a, b = await agent(kernel), await agent(kernel)
    await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
    await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc")
    [proc] = [p for p in fake.processes if p.session_id == f"fake-{a.handle}"]
    proc._send.close()  # the agent process dies
    await wait_until(lambda: a.state == "error")
    await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="data", content="while down")
    resumed = await kernel.sessions.spawn("agent", handle=a.handle, resume_id=a.driver_session_id)
    await wait_until(lambda: len(wakeups(resumed)) == 1 and resumed.state == "ready")
    assert kernel.service(CanvasRuntime).canvases["doc"].subscribers == {a.handle: None}
    await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="data", content="after")
    await wait_until(lambda: len(wakeups(resumed)) == 2)
    assert [summaries(e)[0]["writer"] for e in wakeups(resumed)] == [f"agent:{b.handle}"] * 2


@pytest.mark.trio
async def test_the_user_subscribes_an_agent_by_naming_it_and_may_end_a_gone_sessions_subscription(fake, kernel):
    a = await agent(kernel)
    await call(kernel, "aegis_canvas_open", None, name="doc", file="doc.md")
    with pytest.raises(OperationError, match="name it in from_handle"):
        await call(kernel, "aegis_canvas_subscribe", None, name="doc")
    with pytest.raises(OperationError, match="no session 'ghost'"):
        await call(kernel, "aegis_canvas_subscribe", None, name="doc", from_handle="ghost")
    await call(kernel, "aegis_canvas_subscribe", None, name="doc", from_handle=a.handle)
    await call(kernel, "aegis_canvas_write_section", None, name="doc", section="data", content="by the user")
    await wait_until(lambda: len(wakeups(a)) == 1)
    assert summaries(wakeups(a)[0]) == [{"section": "data", "writer": "user", "added": 1, "removed": 0}]
    rt = kernel.service(CanvasRuntime)
    rt.canvases["doc"].subscribers["gone-1"] = None  # a subscriber whose session no longer exists
    out = await call(kernel, "aegis_canvas_unsubscribe", None, name="doc", from_handle="gone-1")
    assert out["unsubscribed"] is True and "gone-1" not in rt.canvases["doc"].subscribers


@pytest.mark.trio
async def test_the_watcher_follows_a_folder_that_is_removed_and_made_again(fake, kernel, aegis_project):
    import shutil

    a, b = await agent(kernel), await agent(kernel)
    await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="notes/doc.md")
    await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc")
    rt = kernel.service(CanvasRuntime)
    await rt.watching()
    assert (await call(kernel, "aegis_canvas_list"))["canvases"][0]["watched"] is True
    shutil.rmtree(aegis_project / "notes")
    await wait_until(lambda: not rt._watching)  # the watcher noticed and watches what is left (nothing)
    assert (await call(kernel, "aegis_canvas_list"))["canvases"][0]["watched"] is False
    await call(kernel, "aegis_canvas_write_section", b.handle, name="doc", section="data", content="again")
    await rt.watching()  # the write made the folder again: it is watched again
    await wait_until(lambda: len(wakeups(a)) == 1)
    path = aegis_project / "notes/doc.md"
    path.write_text(path.read_text() + "by hand\n")
    await wait_until(lambda: len(wakeups(a)) == 2)
    assert summaries(wakeups(a)[1]) == [{"section": "data", "writer": "user", "added": 1, "removed": 0}]


@pytest.mark.trio
async def test_an_edit_while_stopped_right_after_the_open_is_diffed_too(fake, make_kernel, aegis_project):
    (aegis_project / "doc.md").write_text("## data\nas opened\n")
    async with make_kernel() as kernel:
        a = await agent(kernel, handle="pm")
        await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
        await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc")
    (aegis_project / "doc.md").write_text("## data\nas opened\nand more\n")
    async with make_kernel(restore=True) as kernel:
        await wait_until(lambda: kernel.sessions.get("pm") is not None and len(wakeups(kernel.sessions.get("pm"))) == 1)
        [env] = wakeups(kernel.sessions.get("pm"))
        assert summaries(env) == [{"section": "data", "writer": "user", "added": 1, "removed": 0}]


@pytest.mark.trio
async def test_every_change_is_published_on_the_event_bus(fake, kernel):
    sub = kernel.bus.subscribe(topics=["canvas"])
    a = await agent(kernel)
    await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
    await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc")
    await call(kernel, "aegis_canvas_write_section", None, name="doc", section="data", content="x")
    seen = [(e.payload["event"], e.payload["version"]) for e in sub.drain()]
    assert seen == [("opened", 0), ("subscribed", 0), ("written", 1)]


@pytest.mark.trio
async def test_a_long_ledger_is_archived_at_start_and_nothing_a_canvas_needs_is_lost(fake, make_kernel, aegis_project,
                                                                                      monkeypatch):
    from aegis_canvas import ledger as canvas_ledger

    monkeypatch.setattr(canvas_ledger, "ARCHIVE_AT", 10)
    monkeypatch.setattr(canvas_ledger, "KEEP_WRITES", 3)
    folder = aegis_project / ".aegis/state/canvases/doc"
    for round_ in range(2):  # two starts that archive: the second archive does not replace the first
        async with make_kernel(restore=True) as kernel:
            a = kernel.sessions.get("pm") or await agent(kernel, handle="pm")
            await call(kernel, "aegis_canvas_open", a.handle, name="doc", file="doc.md")
            await call(kernel, "aegis_canvas_subscribe", a.handle, name="doc")
            await call(kernel, "aegis_canvas_write_section", None, name="doc", section=f"once-{round_}", content="x")
            for n in range(12):
                await call(kernel, "aegis_canvas_write_section", None, name="doc", section="busy", content=str(n))
    async with make_kernel(restore=True) as kernel:
        canvas = kernel.service(CanvasRuntime).canvases["doc"]
        assert (canvas.version, canvas.writes) == (26, 26)
        assert set(canvas.last) == {"once-0", "once-1", "busy"} and canvas.subscribers == {"pm": None}
        archives = sorted(p.name for p in (folder / "archive").iterdir())
        assert archives == ["doc-11-23.jsonl", "doc-2-10.jsonl"]  # named by their first and last version
        archived = [r["version"] for name in archives for r in Ledger.replay(folder / "archive" / name).records]
        live = [r["version"] for r in ledger(kernel, "doc") if r["event"] == "write"]
        assert sorted(archived + live) == list(range(1, 27))  # every write is somewhere, once
        log = await call(kernel, "aegis_canvas_log", None, name="doc", n=3)
        assert [w["version"] for w in log["writes"]] == [24, 25, 26]
