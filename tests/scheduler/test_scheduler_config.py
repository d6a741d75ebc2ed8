"""The ``schedules:`` section: file:line errors at load, live reload that keeps unchanged entries'
state and refuses an invalid edit (the old table stays), and the operations that edit schedules
through the comment-preserving edit path (overlays recording who added them)."""

from __future__ import annotations

import pytest
from skit import BASE, scheduler, until

from aegis_kernel import Caller, OperationError
from aegis_kernel.cli import main


def validate(project, text, capsys):
    (project / ".aegis.yaml").write_text(text)
    code = main(["-C", str(project), "config", "validate"])
    return code, capsys.readouterr().err


@pytest.mark.parametrize("body, line, message", [
    ("    workflow: tick\n    cron: '0 6 * * *'\n    every: 10m\n", 6,
     "a schedule has exactly one trigger: cron, every, fire_at or trigger (got cron, every)"),
    ("    workflow: tick\n    cron: '61 6 * * *'\n", 6, "minute: 61 is out of range 0-59"),
    ("    workflow: tick\n    cron: '0 6 * *'\n", 8, "a cron expression has five fields"),
    ("    workflow: tick\n    cron: '0 6 * * *'\n    timezone: Mars/Olympus\n", 9, "unknown timezone 'Mars/Olympus'"),
    ("    workflow: tick\n    every: soon\n", 8, "every must be an interval like 90s, 10m or 2h"),
    ("    workflow: tick\n    fire_at: tomorrow\n", 8, "fire_at must be an ISO 8601 instant"),
    ("    workflow: tick\n    every: 1h\n    on_overlap: sometimes\n", 9, "on_overlap must be one of skip, queue, kill"),
])
def test_a_bad_schedule_is_a_config_error_naming_file_and_line(tmp_path, capsys, body, line, message):
    code, err = validate(tmp_path, BASE + "schedules:\n  daily:\n" + body, capsys)
    assert code == 2
    assert f".aegis.yaml:{line}:" in err and message in err and "schedules.daily" in err


def test_a_bad_overlay_names_the_overlay(tmp_path, capsys):
    overlay = tmp_path / ".aegis" / "schedules" / "nightly.yaml"
    overlay.parent.mkdir(parents=True)
    overlay.write_text("workflow: tick\ncron: '0 25 * * *'\n")
    code, err = validate(tmp_path, BASE, capsys)
    assert code == 2 and ".aegis/schedules/nightly.yaml:1:" in err and "hour: 25 is out of range 0-23" in err


@pytest.mark.trio
async def test_live_edit_swaps_the_table_and_unchanged_entries_keep_their_state(write_config, flows, make_kernel,
                                                                                aegis_project):
    write_config(BASE + """
schedules:
  keep:
    workflow: tick
    every: 1h
  change:
    workflow: tick
    every: 1h
""")
    async with make_kernel() as kernel:
        rt = scheduler(kernel)
        await until(lambda: rt.get("keep").next_due is not None)
        kept = rt.get("keep")
        kept_next = kept.next_due
        rt.fire(kept, due=None, manual=True)
        await until(lambda: kept.last_status == "ok")
        write_config(BASE + """
schedules:
  keep:
    workflow: tick
    every: 1h
  change:
    workflow: tick
    every: 2h
  new:
    workflow: tick
    cron: "0 6 * * *"
""")
        kernel.reload_config()
        assert rt.get("keep") is kept and kept.next_due == kept_next and kept.manual_fires == 1
        await until(lambda: rt.get("change").trigger.describe() == "every 2h")
        await until(lambda: rt.get("new").next_due is not None)
        # an invalid edit (an unknown workflow) is refused with file:line, and the table stays
        write_config(BASE + "schedules:\n  keep:\n    workflow: nope\n    every: 1h\n")
        from aegis_kernel import ConfigError

        with pytest.raises(ConfigError, match=r"\.aegis\.yaml:7: unknown workflow 'nope'"):
            kernel.reload_config()
        assert sorted(rt.entries) == ["change", "keep", "new"] and rt.get("keep") is kept


COMMENTED = BASE + """\
# our schedules
schedules:
  # every morning
  briefing:   # the team's briefing
    workflow: tick     # a test workflow
    cron: "0 6 * * *"  # six o'clock
    timezone: Europe/Berlin
"""


@pytest.mark.trio
async def test_disable_keeps_every_comment_byte_for_byte(write_config, flows, make_kernel, aegis_project):
    path = write_config(COMMENTED)
    async with make_kernel() as kernel:
        rt = scheduler(kernel)
        out = await kernel.operations.call(kernel, "aegis_schedule_disable", {"name": "briefing"}, Caller())
        assert out["changed"] is True
        assert path.read_text() == COMMENTED.replace("    timezone: Europe/Berlin\n",
                                                     "    timezone: Europe/Berlin\n    enabled: false\n")
        await until(lambda: not rt.get("briefing").spec.enabled and rt.get("briefing").next_due is None)
        await kernel.operations.call(kernel, "aegis_schedule_enable", {"name": "briefing"}, Caller())
        await until(lambda: rt.get("briefing").next_due is not None)
        assert "# every morning\n  briefing:   # the team's briefing\n" in path.read_text()


@pytest.mark.trio
async def test_an_agent_adds_a_schedule_as_an_overlay_that_records_it(write_config, flows, make_kernel, aegis_project):
    write_config(BASE)
    async with make_kernel() as kernel:
        rt = scheduler(kernel)
        agent = Caller("brisk-curie", via="mcp")
        out = await kernel.operations.call(kernel, "aegis_schedule_add", {
            "name": "later", "workflow": "tick", "every": "10m", "args": {"label": "x"}}, agent)
        overlay = aegis_project / ".aegis" / "schedules" / "later.yaml"
        assert out["file"] == str(overlay) and overlay.exists()
        text = overlay.read_text()
        assert "added_by: agent:brisk-curie" in text and "every: 10m" in text
        assert rt.get("later").spec.args == {"label": "x"}
        listed = await kernel.operations.call(kernel, "aegis_schedule_list", {}, agent)
        row = next(s for s in listed["schedules"] if s["name"] == "later")
        assert row["added_by"] == "agent:brisk-curie" and row["file"].endswith("later.yaml")
        with pytest.raises(OperationError, match="already exists"):
            await kernel.operations.call(kernel, "aegis_schedule_add", {
                "name": "later", "workflow": "tick", "every": "1h"}, agent)
        with pytest.raises(OperationError, match="unknown workflow 'ghost'"):
            await kernel.operations.call(kernel, "aegis_schedule_add", {
                "name": "ghostly", "workflow": "ghost", "every": "1h"}, agent)
        assert not (aegis_project / ".aegis" / "schedules" / "ghostly.yaml").exists()
        # an overlay schedule is disabled in its own file
        await kernel.operations.call(kernel, "aegis_schedule_disable", {"name": "later"}, agent)
        assert "enabled: false" in overlay.read_text() and "added_by: agent:brisk-curie" in overlay.read_text()
        await kernel.operations.call(kernel, "aegis_schedule_remove", {"name": "later"}, agent)
        assert not overlay.exists() and "later" not in rt.entries


@pytest.mark.trio
async def test_run_fires_now_and_logs_show_the_audit_trail(write_config, flows, make_kernel):
    write_config(BASE + "schedules:\n  weekly:\n    workflow: tick\n    cron: '0 9 * * 1'\n")
    async with make_kernel() as kernel:
        out = await kernel.operations.call(kernel, "aegis_schedule_run", {"name": "weekly"}, Caller())
        assert out["run_id"]
        rt = scheduler(kernel)
        await until(lambda: rt.get("weekly").last_status == "ok")
        logs = await kernel.operations.call(kernel, "aegis_schedule_logs", {"name": "weekly"}, Caller())
        assert [r["event"] for r in logs["records"]] == ["fire_requested", "fire_completed"]
        assert logs["records"][0]["manual"] is True and logs["records"][1]["result"] == "tick "
        shown = await kernel.operations.call(kernel, "aegis_schedule_show", {"name": "weekly"}, Caller())
        assert shown["fires"] == 0 and shown["manual_fires"] == 1 and shown["trigger"] == "cron 0 9 * * 1 (UTC)"
        with pytest.raises(OperationError, match="unknown schedule 'nope'"):
            await kernel.operations.call(kernel, "aegis_schedule_run", {"name": "nope"}, Caller())


@pytest.mark.trio
async def test_agents_schedule_edits_follow_the_config_edits_policy(write_config, flows, make_kernel, aegis_project):
    write_config(BASE + "config_edits:\n  schedules: deny\nschedules:\n  weekly:\n    workflow: tick\n    every: 1h\n")
    async with make_kernel() as kernel:
        agent = Caller("brisk-curie", via="mcp")
        with pytest.raises(OperationError, match="denied by 'config_edits'"):
            await kernel.operations.call(kernel, "aegis_schedule_add", {
                "name": "mine", "workflow": "tick", "every": "1h"}, agent)
        with pytest.raises(OperationError, match="denied by 'config_edits'"):
            await kernel.operations.call(kernel, "aegis_schedule_disable", {"name": "weekly"}, agent)
        assert not (aegis_project / ".aegis" / "schedules").exists()
        out = await kernel.operations.call(kernel, "aegis_schedule_disable", {"name": "weekly"}, Caller())
        assert out["changed"] is True  # a person's own edit needs no approval


@pytest.mark.trio
async def test_a_schedule_may_name_a_workflow_file_written_a_moment_ago(write_config, flows, make_kernel,
                                                                        aegis_project):
    write_config(BASE)
    async with make_kernel() as kernel:
        write_config('from aegis_workflow import workflow\n\n\n@workflow("fresh")\nasync def fresh(engine):\n'
                     '    return "fresh"\n', ".aegis/workflows/fresh.py")
        write_config(BASE + "schedules:\n  new:\n    workflow: fresh\n    every: 1h\n")
        kernel.reload_config()  # judged in this thread as the watcher's worker would: the file is read, not run
        rt = scheduler(kernel)
        assert rt.get("new").problem is None and rt.get("new").spec.workflow == "fresh"
