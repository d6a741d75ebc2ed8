"""Git worktree isolation for queue workers (opt-in: ``worktree: true`` on the queue or agent profile).

Each task gets ``.aegis/worktrees/<queue>-<task>`` on a new branch ``aegis/<queue>/<task>`` started
from an explicit base commit (the queue's ``base`` ref, resolved at enqueue). After the task the
worktree is removed when it holds nothing new (no commits beyond the base, no uncommitted changes);
otherwise it is kept and reported. Aegis only ever removes a worktree it created itself, with
``git worktree remove`` (never ``--force``), and never deletes any other path.
"""

from __future__ import annotations

from pathlib import Path

import trio


class WorktreeError(Exception):
    pass


async def git(cwd: Path, *args: str, check: bool = True) -> str:
    try:
        proc = await trio.run_process(["git", *args], cwd=str(cwd), capture_stdout=True, capture_stderr=True,
                                      check=False)
    except OSError as exc:
        raise WorktreeError(f"cannot run git: {exc}") from None
    if check and proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip() or proc.stdout.decode(errors="replace").strip()
        raise WorktreeError(f"git {' '.join(args)} failed: {err}")
    return proc.stdout.decode(errors="replace").strip()


async def resolve_base(project_dir: Path, ref: str) -> str:
    """The commit ``ref`` names now (``HEAD``, a branch, a tag, a sha)."""
    if ref.startswith("-"):
        raise WorktreeError(f"bad base ref {ref!r}")
    try:
        return await git(project_dir, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
    except WorktreeError:
        raise WorktreeError(f"base ref {ref!r} does not name a commit in {project_dir} "
                            "(is it a git repository with at least one commit?)") from None


def location(project_dir: Path, queue: str, task_id: str) -> tuple[Path, str]:
    return project_dir / ".aegis" / "worktrees" / f"{queue}-{task_id}", f"aegis/{queue}/{task_id}"


async def create(project_dir: Path, path: Path, branch: str, base: str) -> None:
    """``git worktree add -b <branch> <path> <base>``; refuses when ``path`` already exists."""
    if path.exists() or path.is_symlink():
        raise WorktreeError(f"{path} already exists; Aegis does not reuse or touch paths it did not create")
    path.parent.mkdir(parents=True, exist_ok=True)
    ignore = path.parent / ".gitignore"
    if not ignore.exists():
        ignore.write_text("# created by aegis-queue: worker worktrees live here\n*\n")
    await git(project_dir, "worktree", "add", "--quiet", "-b", branch, str(path), base)


async def inspect(path: Path, base: str) -> tuple[int, bool]:
    """(commits on the worktree's HEAD not in ``base``, has uncommitted changes)."""
    ahead = int(await git(path, "rev-list", "--count", f"{base}..HEAD") or "0")
    dirty = bool(await git(path, "status", "--porcelain", "--untracked-files=normal"))
    return ahead, dirty


async def remove(project_dir: Path, path: Path, branch: str) -> None:
    """Remove a clean worktree we created and its branch (which has no commits beyond base)."""
    await git(project_dir, "worktree", "remove", str(path))
    await git(project_dir, "branch", "-D", branch, check=False)
