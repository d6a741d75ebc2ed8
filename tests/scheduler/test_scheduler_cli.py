"""``aegis schedule`` without a running Aegis: enable/disable edit the schedule's own file through the
comment-preserving edit path, list reads the last snapshot, logs read the journal; and the band text."""

from __future__ import annotations

import json

from skit import BASE

from aegis_kernel.cli import main
from aegis_scheduler.panels import band_text

TEXT = BASE + """\
schedules:
  # the nightly build
  nightly:   # keep me
    workflow: tick   # test workflow
    cron: "0 3 * * *"
"""


def test_disable_without_a_running_aegis_edits_the_file_keeping_its_comments(aegis_project, capsys):
    path = aegis_project / ".aegis.yaml"
    path.write_text(TEXT)
    assert main(["-C", str(aegis_project), "schedule", "disable", "nightly", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] is True and out["after"] is False
    assert path.read_text() == TEXT + "    enabled: false\n"
    assert main(["-C", str(aegis_project), "schedule", "enable", "nightly"]) == 0
    assert "enabled: true" in path.read_text() and "# keep me" in path.read_text()
    assert main(["-C", str(aegis_project), "schedule", "disable", "ghost"]) == 1
    assert "unknown schedule 'ghost'" in capsys.readouterr().err


def test_an_overlay_is_disabled_in_its_own_file(aegis_project, capsys):
    (aegis_project / ".aegis.yaml").write_text(BASE)
    overlay = aegis_project / ".aegis" / "schedules" / "later.yaml"
    overlay.parent.mkdir(parents=True)
    overlay.write_text("# added by hand\nworkflow: tick\nevery: 10m\n")
    assert main(["-C", str(aegis_project), "schedule", "disable", "later"]) == 0
    assert overlay.read_text() == "# added by hand\nworkflow: tick\nevery: 10m\nenabled: false\n"
    assert (aegis_project / ".aegis.yaml").read_text() == BASE


def test_list_and_logs_without_a_running_aegis_read_the_files(aegis_project, capsys):
    (aegis_project / ".aegis.yaml").write_text(TEXT)
    state = aegis_project / ".aegis" / "state"
    (state / "schedules").mkdir(parents=True)
    (state / "schedules.snapshot.json").write_text(json.dumps({"v": 1, "at": "2026-01-01T00:00:00Z", "schedules": [
        {"name": "nightly", "enabled": True, "workflow": "tick", "trigger": "cron 0 3 * * * (UTC)",
         "next_fire": "2026-01-02T03:00:00Z", "fires": 4, "last_status": "ok"}]}))
    (state / "schedules" / "nightly.jsonl").write_text(
        '{"v": 1, "event": "created", "anchor": 0}\n'
        '{"v": 1, "event": "fire_requested", "fire_id": "f1", "due": "2026-01-01T03:00:00Z", "manual": false}\n'
        '{"v": 1, "event": "fire_completed", "fire_id": "f1", "status": "ok", "result": "done"}\n')
    assert main(["-C", str(aegis_project), "schedule", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert listed["offline"] is True and listed["schedules"][0]["fires"] == 4
    assert main(["-C", str(aegis_project), "schedule", "logs", "nightly", "-n", "1", "--json"]) == 0
    assert [r["event"] for r in json.loads(capsys.readouterr().out)["records"]] == ["fire_completed"]


def test_the_band_names_each_schedule_with_its_state():
    assert band_text([]).startswith("no schedules")
    text = band_text([{"name": "nightly", "enabled": False, "workflow": "tick", "trigger": "every 1h",
                       "next_fire_ts": None, "fires": 2, "in_flight": 1, "last_status": "failed:killed",
                       "problem": "unknown workflow 'x'"}])
    assert text.splitlines()[0] == "SCHEDULES"
    line = text.splitlines()[1]
    assert line.startswith("○ nightly") and "×2 ◐1 ⊘" in line and "! unknown workflow 'x'" in line
