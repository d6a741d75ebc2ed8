"""The kernel journal: fold, torn-line tolerant replay and archive, for any primitive's items."""

from __future__ import annotations

import json
from typing import Any

from aegis_kernel import ArchivePlan, Journal
from aegis_kernel.journal import fold, plan_archive
from aegis_kernel.state import Ledger


def apply(run: dict[str, Any] | None, rec: dict[str, Any]) -> dict[str, Any] | None:
    """A tiny primitive (workflow runs): ``started`` creates, ``ok``/``failed`` finish."""
    if rec["event"] == "started":
        return run or {"id": rec["run_id"], "status": "running"}
    if run is not None and rec["event"] in ("ok", "failed"):
        run["status"] = rec["event"]
    return run


def status(records: list[dict[str, Any]]) -> dict[str, str]:
    return {rid: run["status"] for rid, run in fold(records, apply, key="run_id").items()}


def runs(journal: Journal, n: int, *, first: int = 0) -> None:
    for i in range(first, first + n):
        journal.append({"event": "started", "run_id": f"r{i:02}", "at": "2026-01-01T00:00:00Z"})
        journal.append({"event": "ok" if i % 3 else "failed", "run_id": f"r{i:02}", "at": "2026-01-01T00:00:01Z"})


def plan(records: list[dict[str, Any]]) -> ArchivePlan | None:
    return plan_archive(records, status, finished=("ok", "failed"), archive_at=10, keep=3, key="run_id")


def test_fold_keeps_first_seen_order_and_ignores_records_about_unknown_items(tmp_path):
    journal = Journal(tmp_path / "runs.jsonl", key="run_id")
    journal.append({"event": "ok", "run_id": "ghost"})
    runs(journal, 3)
    journal.append({"event": "note"})  # no key: skipped
    journal.close()
    assert journal.fold(apply) == {"r00": {"id": "r00", "status": "failed"}, "r01": {"id": "r01", "status": "ok"},
                                   "r02": {"id": "r02", "status": "ok"}}


def test_a_torn_last_line_is_skipped_and_reported_and_the_next_append_is_whole(tmp_path):
    path = tmp_path / "runs.jsonl"
    journal = Journal(path, key="run_id")
    runs(journal, 1)
    journal.close()
    with path.open("a") as f:
        f.write('{"v":1,"event":"started","run_')  # a crash mid-write
    result = journal.replay()
    assert [p.reason.startswith("torn last line") for p in result.problems] == [True]
    assert len(result.records) == 2
    runs(journal, 1, first=1)
    journal.close()
    assert list(journal.fold(apply)) == ["r00", "r01"]


def test_archive_moves_whole_old_finished_items_and_keeps_totals(tmp_path):
    path = tmp_path / "runs.jsonl"
    journal = Journal(path, key="run_id")
    runs(journal, 12)
    journal.append({"event": "started", "run_id": "live", "at": "2026-01-01T00:00:02Z"})
    journal.close()
    before = Ledger.replay(path).records

    result = journal.archive(plan, at="2026-01-02T00:00:00Z")

    archive = tmp_path / "archive" / "runs-r00-r08.jsonl"
    moved = Ledger.replay(archive).records
    live = Ledger.replay(path).records
    assert result.records == live
    assert {r["run_id"] for r in moved} == {f"r{i:02}" for i in range(9)}  # all but the newest 3 finished
    assert live[0] == {"v": 1, "event": "archived", "at": "2026-01-02T00:00:00Z", "archive": "archive/runs-r00-r08.jsonl",
                       "tasks": 9, "counts": {"ok": 6, "failed": 3}}
    assert list(journal.fold(apply)) == ["r09", "r10", "r11", "live"]
    dump = lambda recs: [json.dumps(r, sort_keys=True) for r in recs]  # noqa: E731
    assert sorted(dump(moved) + dump(live[1:])) == sorted(dump(before))  # nothing lost, nothing doubled

    journal.append({"event": "ok", "run_id": "live"})  # the journal keeps working after the archive
    runs(journal, 10, first=20)
    journal.close()
    journal.archive(plan, at="2026-01-03T00:00:00Z")
    live = Ledger.replay(path).records
    assert [r["archive"] for r in Journal.archived_summaries(live)] == [
        "archive/runs-r00-r08.jsonl", "archive/runs-r09-r26.jsonl"]
    assert [r["event"] for r in live[:2]] == ["archived", "archived"]


def test_below_the_threshold_or_with_unreadable_lines_nothing_is_rewritten(tmp_path):
    path = tmp_path / "runs.jsonl"
    journal = Journal(path, key="run_id")
    runs(journal, 5)
    journal.close()
    text = path.read_text()
    assert journal.archive(plan, at="x").records == Ledger.replay(path).records
    assert path.read_text() == text
    runs(journal, 10, first=5)
    journal.close()
    with path.open("a") as f:
        f.write("{not json\n")
    text = path.read_text()
    result = journal.archive(plan, at="x")
    assert result.problems and path.read_text() == text and not (tmp_path / "archive").exists()


def test_the_items_of_the_last_record_always_stays(tmp_path):
    journal = Journal(tmp_path / "runs.jsonl", key="run_id")
    runs(journal, 12)
    journal.append({"event": "failed", "run_id": "r00"})  # a late record about the oldest item
    journal.close()
    journal.archive(plan, at="x")
    assert "r00" in journal.fold(apply)


def test_a_record_torn_by_a_kill_does_not_stop_archiving_for_good(tmp_path):
    path = tmp_path / "runs.jsonl"
    journal = Journal(path, key="run_id")
    runs(journal, 12)
    journal.close()
    with path.open("ab") as f:
        f.write(b'{"v":1,"event":"started","run_id":"r1')  # the kernel was killed mid-append
    journal = Journal(path, key="run_id")  # the next start appends whole lines after it
    runs(journal, 3, first=12)
    journal.close()
    assert [p.reason.startswith("bad JSON") for p in Ledger.replay(path).problems] == [True]
    result = journal.archive(plan, at="2026-01-03T00:00:00Z")
    [summary] = Journal.archived_summaries(result.records)
    assert (summary["tasks"], summary["torn"]) == (12, 1)  # the torn line is counted, not kept
    assert Ledger.replay(path).records == result.records and not Ledger.replay(path).problems
    assert [r["run_id"] for r in Ledger.replay(tmp_path / summary["archive"]).records][-1] == "r11"


def test_a_foreign_line_still_keeps_a_journal_from_being_rewritten(tmp_path):
    path = tmp_path / "runs.jsonl"
    journal = Journal(path, key="run_id")
    runs(journal, 12)
    journal.close()
    with path.open("a") as f:
        f.write('{"v":1,"event":"ok","run_id":"r20"}\n{"v":2,"event":"note"}\n')  # readable to a newer Aegis
    text = path.read_text()
    assert journal.archive(plan, at="x").problems and path.read_text() == text


def test_an_archive_is_named_inside_the_archive_folder_whatever_the_item_ids(tmp_path):
    path = tmp_path / "deep" / "runs.jsonl"
    path.parent.mkdir()
    journal = Journal(path, key="run_id")
    for i in range(12):
        rid = f"../../x{i:02}" if i in (0, 8) else f"r{i:02}"  # ids a person or an agent chose
        journal.append({"event": "started", "run_id": rid})
        journal.append({"event": "ok", "run_id": rid})
    journal.close()
    [summary] = Journal.archived_summaries(journal.archive(plan, at="x").records)
    [archived] = (tmp_path / "deep" / "archive").iterdir()
    assert summary["archive"] == f"archive/{archived.name}" and len(Ledger.replay(archived).records) == 18
    assert sorted(p.name for p in tmp_path.iterdir()) == ["deep"]
