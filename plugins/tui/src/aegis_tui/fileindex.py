"""The project file index (built in a background thread) and fuzzy matching for the Ctrl+O picker."""

from __future__ import annotations

import os
from pathlib import Path

SKIP_DIRS = frozenset({".git", ".hg", ".svn", ".aegis", ".venv", "venv", "node_modules", "__pycache__",
                       ".mypy_cache", ".pytest_cache", ".ruff_cache", ".tox", "dist", "build", ".idea",
                       ".aegis-scripted"})
MAX_FILES = 100_000


def scan(root: Path, limit: int = MAX_FILES) -> list[str]:
    """Relative paths of the files under ``root`` (skipping VCS, venvs, caches), sorted."""
    out: list[str] = []
    root = Path(root)
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        rel = os.path.relpath(folder, root)
        prefix = "" if rel == "." else rel + "/"
        for name in files:
            out.append(prefix + name)
            if len(out) >= limit:
                return sorted(out)
    return sorted(out)


def score(query: str, path: str) -> int | None:
    """A fuzzy score (higher is better) if every query character appears in order, else None.

    Bonuses: consecutive runs, a match at a segment start (after ``/ _ - .``), matches in the file
    name; a small penalty for long paths. Case-insensitive.
    """
    if not query:
        return 0
    q = query.lower()
    p = path.lower()
    name_start = p.rfind("/") + 1
    # fast reject
    pos = 0
    for ch in q:
        pos = p.find(ch, pos)
        if pos < 0:
            return None
        pos += 1
    # greedy-from-the-right on the file name first: prefer matches in the name
    total = 0
    pi = 0
    prev = -2
    for ch in q:
        idx = p.find(ch, pi)
        # prefer a later occurrence at a segment start or in the file name when one exists nearby
        best = idx
        j = idx
        while j >= 0:
            if j >= name_start or j == 0 or p[j - 1] in "/_-. ":
                best = j
                break
            j = p.find(ch, j + 1)
        if best != idx and prev == idx - 1:
            best = idx  # keep a consecutive run
        idx = best
        bonus = 1
        if idx == prev + 1:
            bonus += 5
        if idx == 0 or p[idx - 1] in "/_-. ":
            bonus += 4
        if idx >= name_start:
            bonus += 2
        total += bonus
        prev = idx
        pi = idx + 1
    if q in p[name_start:]:
        total += 10 + (10 if p[name_start:].startswith(q) else 0)
    return total * 10 - len(path) // 4


def rank(query: str, paths: list[str], limit: int = 50) -> list[str]:
    """The best ``limit`` matches for ``query`` (all paths in order when the query is empty)."""
    if not query.strip():
        return paths[:limit]
    q = query.strip().replace(" ", "")
    scored = []
    for path in paths:
        s = score(q, path)
        if s is not None:
            scored.append((-s, len(path), path))
    scored.sort()
    return [p for _, _, p in scored[:limit]]
