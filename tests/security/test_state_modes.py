"""Issue 12 finding 3: ``.aegis/state`` is the owner's only — folders 0700, files 0600 — for what the
kernel writes now and for what an older version left readable (fixed at start)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from aegis_kernel.state import secure_tree

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted) is not installed")


def modes(root: Path) -> dict[str, int]:
    """Relative path → permission bits of every folder and file under ``root`` (symlinks excluded)."""
    out = {".": stat.S_IMODE(root.stat().st_mode)}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder, name)
            if not path.is_symlink():
                out[str(path.relative_to(root))] = stat.S_IMODE(path.lstat().st_mode)
    return out


def wrong(root: Path) -> dict[str, str]:
    return {rel: oct(mode) for rel, mode in modes(root).items()
            if mode != (0o700 if (root / rel).is_dir() else 0o600)}


def test_secure_tree_fixes_folders_and_files_and_leaves_symlinks_alone(tmp_path):
    root = tmp_path / "state"
    (root / "sessions").mkdir(parents=True)
    root.chmod(0o755)
    (root / "sessions").chmod(0o755)
    (root / "sessions" / "x.jsonl").write_text("{}\n")
    (root / "sessions" / "x.jsonl").chmod(0o644)
    outside = tmp_path / "outside.txt"
    outside.write_text("not ours to change")
    outside.chmod(0o644)
    (root / "link").symlink_to(outside)
    assert secure_tree(root) == 3
    assert wrong(root) == {}
    assert stat.S_IMODE(outside.stat().st_mode) == 0o644  # a symlink is never followed
    assert secure_tree(root) == 0  # nothing left to fix


@pytest.mark.trio
async def test_state_is_owner_only_after_start_and_for_everything_written(aegis_project, make_kernel):
    state = aegis_project / ".aegis" / "state"
    # what an older Aegis left behind: world-readable
    (state / "sessions").mkdir(parents=True)
    (state / "inboxes").mkdir()
    for path in (state / "sessions" / "old.jsonl", state / "inboxes" / "old.jsonl", state / "aegis.log",
                 state / "sessions.json"):
        path.write_text('{"v": 1}\n' if path.suffix == ".jsonl" else "")
        path.chmod(0o644)
    for folder in (state, state / "sessions", state / "inboxes"):
        folder.chmod(0o755)
    (state / "sessions.json").write_text('{"v": 1, "sessions": [], "ended": []}')

    async with make_kernel() as kernel:
        assert wrong(state) == {}  # fixed at start
        a = await kernel.sessions.spawn("helper", prompt="@reply hello")
        b = await kernel.sessions.spawn("other", prompt="@call aegis_list_sessions")
        for s in (a, b):
            await s.wait_for(lambda s: s.metrics.turns == 1, timeout=30)
        await kernel.sessions.close(a.handle)
        await kernel.sessions.close(b.handle)
    written = modes(state)
    assert any(rel.startswith("sessions/") and rel != "sessions/old.jsonl" for rel in written)  # new transcripts
    assert "sessions.json" in written and "aegis.log" in written
    assert wrong(state) == {}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as a second local user (nobody)")
@pytest.mark.trio
async def test_another_local_user_reads_nothing_of_the_state(make_kernel):
    import pwd
    import shutil
    import subprocess
    import tempfile

    try:
        other = pwd.getpwnam("nobody")
    except KeyError:
        pytest.skip("no 'nobody' user on this machine to play the other local user")
    shared = Path(tempfile.mkdtemp(prefix="aegis-test-project-", dir="/tmp"))  # a project others can reach
    try:
        shared.chmod(0o755)
        (shared / ".aegis.yaml").write_text("default_agent: helper\nagents:\n  helper:\n    provider: scripted\n")
        async with make_kernel(shared) as kernel:
            session = await kernel.sessions.spawn("helper", prompt="@reply the secret plan")
            await session.wait_for(lambda s: s.metrics.turns == 1, timeout=30)
            transcript = Path(session.info()["transcript"])
            await kernel.sessions.close(session.handle)
        assert "the secret plan" in transcript.read_text()
        for target in (["cat", str(transcript)], ["ls", str(shared / ".aegis" / "state")]):
            done = subprocess.run(target, user=other.pw_uid, group=other.pw_gid, capture_output=True, text=True,
                                  timeout=30)
            assert done.returncode != 0 and "Permission denied" in done.stderr, (target, done)
    finally:
        shutil.rmtree(shared, ignore_errors=True)
