"""aegis_kernel.state: state layout, JSONL ledger, atomic JSON files."""

from __future__ import annotations

import json
import os
import stat

import pytest

from aegis_kernel import state
from aegis_kernel.state import Ledger, StateDir, StateError, read_json, write_bytes_atomic, write_json_atomic


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


# --- StateDir ----------------------------------------------------------------------------------------


def test_state_dir_creates_folders_lazily(tmp_path):
    sd = StateDir.for_project(tmp_path)
    assert sd.root == tmp_path / ".aegis" / "state"
    assert not sd.root.exists()
    p = sd.path("inboxes", "a.jsonl")
    assert p == sd.root / "inboxes" / "a.jsonl"
    assert p.parent.is_dir() and not p.exists()
    assert sd.ensure() == sd.root


@pytest.mark.parametrize("part", ["../x", "/etc/passwd"])
def test_state_dir_refuses_escaping_parts(tmp_path, part):
    with pytest.raises(ValueError):
        StateDir(tmp_path).path(part)


# --- Ledger ------------------------------------------------------------------------------------------


def test_ledger_append_and_replay(tmp_path):
    path = tmp_path / "l.jsonl"
    with Ledger(path) as ledger:
        ledger.append({"op": "queued", "id": "1"})
        ledger.append({"op": "delivered", "id": "1", "text": "é\nnext"})
    lines = path.read_text("utf-8").splitlines()
    assert len(lines) == 2 and all(json.loads(line)["v"] == 1 for line in lines)
    result = Ledger.replay(path)
    assert result.problems == []
    assert result.records == [{"v": 1, "op": "queued", "id": "1"},
                              {"v": 1, "op": "delivered", "id": "1", "text": "é\nnext"}]
    assert list(Ledger.records(path)) == result.records


def test_ledger_append_is_one_write(tmp_path, monkeypatch):
    writes = []
    real_write = os.write
    monkeypatch.setattr(state.os, "write", lambda fd, data: writes.append(bytes(data)) or real_write(fd, data))
    ledger = Ledger(tmp_path / "l.jsonl")
    ledger.append({"a": 1})
    ledger.append({"b": 2})
    ledger.close()
    assert writes == [b'{"v":1,"a":1}\n', b'{"v":1,"b":2}\n']


def test_ledger_reopens_after_close_and_appends(tmp_path):
    path = tmp_path / "l.jsonl"
    ledger = Ledger(path)
    ledger.append({"n": 1})
    ledger.close()
    ledger.close()  # idempotent
    ledger.append({"n": 2})
    ledger.close()
    assert [r["n"] for r in Ledger.replay(path).records] == [1, 2]


def test_replay_missing_file_is_empty(tmp_path):
    result = Ledger.replay(tmp_path / "nope.jsonl")
    assert result.records == [] and result.problems == []


def test_replay_skips_and_reports_torn_last_line(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"v":1,"n":1}\n{"v":1,"n":2}\n{"v":1,"n"')
    result = Ledger.replay(path)
    assert [r["n"] for r in result.records] == [1, 2]
    [problem] = result.problems
    assert problem.line_no == 3
    assert "torn last line" in problem.reason
    assert problem.text_excerpt == '{"v":1,"n"'


def test_replay_accepts_complete_last_line_without_newline(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"v":1,"n":1}\n{"v":1,"n":2}')
    result = Ledger.replay(path)
    assert [r["n"] for r in result.records] == [1, 2] and result.problems == []


def test_replay_skips_corrupt_middle_lines(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"v":1,"n":1}\n'
                     b'garbage{\n'
                     b'[1, 2]\n'
                     b'{"n":3}\n'
                     b'{"v":2,"n":4}\n'
                     b'{"v":true,"n":5}\n'
                     b'\xff\xfe\n'
                     b'\n'
                     b'{"v":1,"n":6}\n')
    result = Ledger.replay(path)
    assert [r["n"] for r in result.records] == [1, 6]
    reasons = {p.line_no: p.reason for p in result.problems}
    assert sorted(reasons) == [2, 3, 4, 5, 6, 7]
    assert reasons[2].startswith("bad JSON")
    assert reasons[3].startswith("not a JSON object")
    assert reasons[4] == 'missing "v"'
    assert reasons[5] == 'unsupported "v": 2'
    assert reasons[6] == 'unsupported "v": True'
    assert reasons[7] == "not UTF-8"


def test_append_after_torn_line_starts_a_fresh_line(tmp_path):
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"v":1,"n":1}\n{"v":1,"n"')
    with Ledger(path) as ledger:
        ledger.append({"n": 3})
        ledger.append({"n": 4})
    assert path.read_bytes().endswith(b'{"v":1,"n"\n{"v":1,"n":3}\n{"v":1,"n":4}\n')
    result = Ledger.replay(path)
    assert [r["n"] for r in result.records] == [1, 3, 4]
    assert [p.line_no for p in result.problems] == [2]


@pytest.mark.parametrize(("policy", "expected"), [("always", 3), ("batch", 1), ("never", 0)])
def test_fsync_policies(tmp_path, monkeypatch, policy, expected):
    calls = []
    monkeypatch.setattr(state.os, "fsync", lambda fd: calls.append(fd))
    monkeypatch.setattr(state, "BATCH_INTERVAL", 3600.0)
    ledger = Ledger(tmp_path / "l.jsonl", fsync=policy)
    ledger._last_sync = state.time.monotonic()  # the batch window has just started
    for n in range(3):
        ledger.append({"n": n})
    ledger.close()  # batch: one fsync for the whole batch
    assert len(calls) == expected
    assert len(Ledger.replay(tmp_path / "l.jsonl").records) == 3


def test_fsync_policy_is_validated(tmp_path):
    with pytest.raises(ValueError, match="fsync policy"):
        Ledger(tmp_path / "l.jsonl", fsync="sometimes")  # type: ignore[arg-type]


def test_append_refuses_bad_records_without_writing(tmp_path):
    path = tmp_path / "l.jsonl"
    ledger = Ledger(path)
    with pytest.raises(ValueError, match="version"):
        ledger.append({"v": 2})
    with pytest.raises(TypeError):
        ledger.append({"x": object()})
    ledger.append({"v": 1, "ok": True})
    ledger.close()
    assert path.read_bytes() == b'{"v":1,"ok":true}\n'


# --- atomic JSON -------------------------------------------------------------------------------------


def test_write_json_atomic_roundtrip_and_no_temp_left(tmp_path):
    path = tmp_path / "sub" / "snap.json"
    write_json_atomic(path, {"v": 1, "sessions": ["a"]})
    assert read_json(path, None) == {"v": 1, "sessions": ["a"]}
    write_json_atomic(path, {"v": 1, "sessions": []})
    assert read_json(path) == {"v": 1, "sessions": []}
    assert [p.name for p in path.parent.iterdir()] == ["snap.json"]


def test_write_json_atomic_keeps_mode(tmp_path):
    path = tmp_path / "snap.json"
    path.write_text("{}")
    path.chmod(0o600)
    write_json_atomic(path, {"secret": 1})
    assert mode_of(path) == 0o600
    assert read_json(path) == {"secret": 1}


def test_write_json_atomic_new_file_respects_umask(tmp_path):
    shared = tmp_path / "shared"  # a folder others may enter (pytest's tmp_path is owner-only)
    shared.mkdir()
    shared.chmod(0o755)
    old = os.umask(0o027)
    try:
        write_json_atomic(shared / "new.json", [])
    finally:
        os.umask(old)
    assert mode_of(shared / "new.json") == 0o640


def test_write_json_atomic_new_file_in_an_owner_only_folder_is_owner_only(tmp_path):
    private = tmp_path / "private"
    private.mkdir(mode=0o700)
    old = os.umask(0o022)
    try:
        write_json_atomic(private / "new.json", [])
    finally:
        os.umask(old)
    assert mode_of(private / "new.json") == 0o600


def test_failed_before_replace_leaves_file_untouched(tmp_path):
    path = tmp_path / "f.txt"
    path.write_bytes(b"old")
    seen = []

    def refuse(candidate):
        seen.append(candidate.read_bytes())
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        write_bytes_atomic(path, b"new", before_replace=refuse)
    assert seen == [b"new"]
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_read_json_missing_gives_default(tmp_path):
    assert read_json(tmp_path / "nope.json", {"d": 1}) == {"d": 1}


def test_read_json_corrupt_names_the_file(tmp_path):
    path = tmp_path / "workspace.json"
    path.write_text('{"tabs": [')
    with pytest.raises(StateError, match="workspace.json") as info:
        read_json(path, {})
    assert "corrupt JSON" in str(info.value)


# --- a failed append (disk full) ---------------------------------------------------------------------


def test_failed_append_is_cut_off_raised_and_the_ledger_stays_appendable(tmp_path, monkeypatch):
    """A short write followed by ENOSPC (what a full disk does): the caller gets a clear error naming
    the file, nothing of the record stays, and the next append is a whole line that replay keeps."""
    import errno

    path = tmp_path / "l.jsonl"
    ledger = Ledger(path)
    ledger.append({"n": 1})
    real_write = os.write
    calls = []

    def full_disk(fd, data):
        calls.append(len(data))
        if len(calls) == 1:
            return real_write(fd, bytes(data[:5]))  # part of the line reaches the disk
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(state.os, "write", full_disk)
    with pytest.raises(state.LedgerWriteError, match=r"disk full writing .*l\.jsonl") as info:
        ledger.append({"n": 2})
    assert isinstance(info.value, OSError) and info.value.errno == errno.ENOSPC
    assert path.read_bytes() == b'{"v":1,"n":1}\n'  # the torn bytes are gone
    monkeypatch.setattr(state.os, "write", real_write)
    ledger.append({"n": 3})
    ledger.close()
    result = Ledger.replay(path)
    assert [r["n"] for r in result.records] == [1, 3] and result.problems == []


def test_failed_append_that_cannot_be_cut_off_starts_the_next_record_on_a_fresh_line(tmp_path, monkeypatch):
    path = tmp_path / "l.jsonl"
    ledger = Ledger(path)
    ledger.append({"n": 1})
    real_write = os.write

    def full_disk(fd, data):
        if len(data) > 5:
            return real_write(fd, bytes(data[:5]))
        raise OSError(28, "No space left on device")

    def no_truncate(fd, size):
        raise OSError(5, "I/O error")

    monkeypatch.setattr(state.os, "write", full_disk)
    monkeypatch.setattr(state.os, "ftruncate", no_truncate)
    with pytest.raises(state.LedgerWriteError):
        ledger.append({"n": 2})
    monkeypatch.setattr(state.os, "write", real_write)
    ledger.append({"n": 3})
    ledger.close()
    result = Ledger.replay(path)
    assert [r["n"] for r in result.records] == [1, 3]
    assert [p.line_no for p in result.problems] == [2]


def test_replay_keeps_a_record_glued_to_a_torn_one(tmp_path):
    """Ledgers written before appends cut off their failures: a torn record with the next record glued
    to it on one line costs only the torn record."""
    path = tmp_path / "l.jsonl"
    path.write_bytes(b'{"v":1,"n":1}\n{"v":1,"n":2,"te{"v":1,"n":3}\n{"v":1,"n":4}\n{"v":1,"n"{"v":1,"n":5}')
    result = Ledger.replay(path)
    assert [r["n"] for r in result.records] == [1, 3, 4, 5]
    assert [(p.line_no, p.reason.split(" (")[0]) for p in result.problems] == [(2, "torn record"),
                                                                               (4, "torn record")]
