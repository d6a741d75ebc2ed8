"""Worktree isolation: own worktree + branch per task from the resolved base; removed unless it has work."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import trio
from queue_testkit import CONFIG, QDriver, call, callbacks, wait_until

from aegis_kernel.testing import DriverPlugin
from aegis_queue import worktree as wt
from aegis_queue.runtime import QueueRuntime

WT_CONFIG = CONFIG + """\
  isolated:
    agent: worker
    max_parallel: 2
    worktree: true
"""


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(aegis_project, write_config, register_plugin, monkeypatch):
    for key, value in {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t",
                       "GIT_COMMITTER_EMAIL": "t@x"}.items():
        monkeypatch.setenv(key, value)
    write_config(WT_CONFIG)
    git(aegis_project, "init", "-q", "-b", "main")
    (aegis_project / "README").write_text("hello\n")
    (aegis_project / ".gitignore").write_text(".aegis/state/\n")
    git(aegis_project, "add", "README", ".gitignore")
    git(aegis_project, "commit", "-q", "-m", "init")
    driver = QDriver()
    register_plugin(DriverPlugin(driver))
    return driver


@pytest.mark.trio
async def test_each_worker_gets_a_worktree_removed_when_clean_kept_with_commits(repo, aegis_project, kernel):
    base = git(aegis_project, "rev-parse", "HEAD")
    prod = await kernel.sessions.spawn("producer")
    await prod.wait_for(lambda s: s.state == "ready")
    rt = kernel.service(QueueRuntime)
    clean = await call(kernel, "aegis_enqueue", prod.handle, queue="isolated", payload="sleep 0.05 clean done")
    busy = await call(kernel, "aegis_enqueue", prod.handle, queue="isolated", payload="sleep 0.6 committed")
    t_clean, t_busy = rt.tasks[clean["task_id"]], rt.tasks[busy["task_id"]]
    assert t_clean.base == base
    await wait_until(lambda: t_busy.worktree.get("created"))
    path = Path(t_busy.worktree["path"])
    assert path == aegis_project / ".aegis" / "worktrees" / f"isolated-{t_busy.id}"
    assert git(path, "rev-parse", "--abbrev-ref", "HEAD") == f"aegis/isolated/{t_busy.id}"
    (path / "new.txt").write_text("work\n")
    git(path, "add", "new.txt")
    git(path, "commit", "-q", "-m", "worker commit")
    with trio.fail_after(5):
        await t_busy.finished.wait()
        await t_clean.finished.wait()
    await wait_until(lambda: t_clean.worktree.get("state") == "removed" and t_busy.worktree.get("state") == "kept")
    assert not Path(t_clean.worktree["path"]).exists()
    assert f"aegis/isolated/{t_clean.id}" not in git(aegis_project, "branch", "--list")
    assert path.exists() and f"aegis/isolated/{t_busy.id}" in git(aegis_project, "branch", "--list")
    assert t_busy.worktree["reason"] == f"1 commit not in base {base[:12]}"
    # the worker ran inside its worktree (process cwd; the session cwd once the kernel takes one)
    cwds = {spec.handle: (spec.cwd, launch.cwd) for spec, launch in repo.launches}
    assert path in cwds[t_busy.worker]
    status = await call(kernel, "aegis_task_status", task_id=t_busy.id)
    assert status["worktree"]["state"] == "kept" and status["worktree"]["branch"] == f"aegis/isolated/{t_busy.id}"
    assert "?? .aegis/worktrees" not in git(aegis_project, "status", "--porcelain")  # ignored, not untracked


@pytest.mark.trio
async def test_a_kept_worktree_is_reported_in_the_callback(repo, aegis_project, kernel):
    prod = await kernel.sessions.spawn("producer")
    await prod.wait_for(lambda s: s.state == "ready")
    rt = kernel.service(QueueRuntime)
    out = await call(kernel, "aegis_enqueue", prod.handle, queue="isolated", payload="sleep 0.4 edited")
    task = rt.tasks[out["task_id"]]
    await wait_until(lambda: task.worktree.get("created"))
    (Path(task.worktree["path"]) / "README").write_text("changed\n")  # uncommitted change
    await wait_until(lambda: len(callbacks(prod)) == 1, timeout=5)
    [cb] = callbacks(prod)
    assert cb.body.startswith("edited\n\n[worktree kept: ") and "uncommitted changes" in cb.body


@pytest.mark.trio
async def test_worktree_queue_outside_a_git_repo_is_refused(write_config, register_plugin, kernel):
    from aegis_kernel.operations import OperationError

    with pytest.raises(OperationError) as err:
        await call(kernel, "aegis_enqueue", queue="isolated", payload="x")
    assert err.value.code == "bad_config" and "does not name a commit" in err.value.message


@pytest.fixture
def _cfg(write_config, register_plugin):
    write_config(WT_CONFIG)
    register_plugin(DriverPlugin(QDriver()))


test_worktree_queue_outside_a_git_repo_is_refused = pytest.mark.usefixtures("_cfg")(
    test_worktree_queue_outside_a_git_repo_is_refused)


@pytest.mark.trio
async def test_create_never_touches_an_existing_path(tmp_path):
    existing = tmp_path / "wt"
    existing.mkdir()
    (existing / "keep").write_text("mine")
    with pytest.raises(wt.WorktreeError, match="already exists"):
        await wt.create(tmp_path, existing, "aegis/q/t", "HEAD")
    assert (existing / "keep").read_text() == "mine"
