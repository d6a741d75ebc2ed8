"""Journals: the durable record of a primitive's items (queue tasks, schedules, workflow runs…).

A :class:`Journal` is one JSONL file of records about items, each record naming its item by a key
field (``task_id`` by default) and its kind by ``"event"``; it is written through
:class:`~aegis_kernel.state.Ledger` (one whole line per record, ``"v": 1``, the ledger's fsync policy)
and read back with the ledger's torn-line-tolerant replay. On top of that it gives every primitive:

- **fold** (:func:`fold`): records → one state per item, in first-seen order, by a pure ``apply``;
- **archive** (:meth:`Journal.archive`): once enough items are finished, every record of all but the
  newest finished ones moves, whole, to ``<folder>/archive/<name>-<first item>-<last item>.jsonl`` and
  the live journal keeps one ``{"event": "archived", "archive": …, **summary}`` record in their place
  (earlier ``archived`` records stay first), so totals survive and start-up stays fast.

The archive is written (and synced) before the live journal is replaced, and its name is fixed by its
first and last item, so a crash in between leaves a journal the next start archives identically. A
journal with unreadable lines is never archived (nothing is rewritten that replay could not read),
except for *torn* records — what a kill in the middle of an append leaves (a line that starts like a
record but does not parse, or the torn part of a line a whole record was glued to): they hold nothing
replay could read, so archiving drops them and counts them in the ``archived`` record (``"torn"``);
otherwise a single kill would stop archiving for good and start-up would grow without bound.
:meth:`Journal.archive` and :meth:`Journal.replay` do file work only: run them in a worker thread
(``trio.to_thread.run_sync``) when the file may be long. Appends are the ledger's (non-blocking
policies are the ledger's business).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

from attrs import field, frozen

from .state import FsyncPolicy, Ledger, Problem, ReplayResult, write_text_atomic

_RECORD_START = '{"v":1,'  # how every record Ledger.append writes begins

__all__ = ["ArchivePlan", "Journal", "fold", "plan_archive"]

log = logging.getLogger("aegis.journal")

S = TypeVar("S")
ARCHIVED = "archived"


@frozen
class ArchivePlan:
    """What :meth:`Journal.archive` moves: ``archived`` records (whole items, journal order), the
    ``kept`` ones, and ``summary`` fields for the ``archived`` record left in their place."""

    archived: list[dict[str, Any]]
    kept: list[dict[str, Any]]
    summary: dict[str, Any] = field(factory=dict)


def fold(records: Iterable[dict[str, Any]], apply: Callable[[S | None, dict[str, Any]], S | None], *,
         key: str = "task_id") -> dict[str, S]:
    """Fold records into one state per item, in the order items were first created.

    For each record whose ``key`` is a string, ``apply(state, record)`` gets the item's state so far
    (None before its first state) and returns the new state, or None to leave the item as it was (an
    item with no state yet stays absent: a record about an unknown item is ignored). Records without
    the key are skipped (``archived`` summaries, diagnostics).
    """
    items: dict[str, S] = {}
    for rec in records:
        item = rec.get(key)
        if not isinstance(item, str):
            continue
        new = apply(items.get(item), rec)
        if new is not None:
            items[item] = new
    return items


def plan_archive(records: list[dict[str, Any]], status: Callable[[list[dict[str, Any]]], dict[str, str]], *,
                 finished: Iterable[str], archive_at: int, keep: int, key: str = "task_id") -> ArchivePlan | None:
    """The usual plan: ``status(records)`` gives each item's status (in item order); once at least
    ``archive_at`` items have a ``finished`` status, all but the newest ``keep`` of them move, whole.
    The item of the journal's last record always stays (a crash may have cut what followed it).
    The summary is ``{"tasks": moved items, "counts": {status: n}}``. None: nothing to move."""
    done = set(finished)
    statuses = status(records)
    finished_items = [item for item, st in statuses.items() if st in done]
    if len(finished_items) < archive_at:
        return None
    last_item = records[-1].get(key) if records else None
    moving = {item for item in finished_items[: max(0, len(finished_items) - keep)] if item != last_item}
    if not moving:
        return None
    counts: dict[str, int] = {}
    for item in moving:
        counts[statuses[item]] = counts.get(statuses[item], 0) + 1
    return ArchivePlan(archived=[r for r in records if r.get(key) in moving],
                       kept=[r for r in records if r.get(key) not in moving],
                       summary={"tasks": len(moving), "counts": counts})


class Journal:
    """One journal file: ``Journal(path, key="task_id", fsync="always")``.

    :attr:`ledger` is the :class:`~aegis_kernel.state.Ledger` appends go through (opened on the first
    append, closed by :meth:`close`; with ``writer`` — the kernel's ``kernel.state.writer`` — its fsyncs
    run on the state writer thread, never on the event loop). Records are ``{"event": kind, key: item, "at": …, …}``; the
    journal adds ``"v": 1``.
    """

    def __init__(self, path: Path | str, *, key: str = "task_id", fsync: FsyncPolicy = "always",
                 name: str | None = None, writer: Any = None) -> None:
        self.path = Path(path)
        self.key = key
        self.name = name or self.path.stem
        self.ledger = Ledger(self.path, fsync=fsync, writer=writer)

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, key={self.key!r})"

    @property
    def archive_dir(self) -> Path:
        return self.path.parent / "archive"

    # --- writing -------------------------------------------------------------------------------------

    def append(self, record: dict[str, Any]) -> None:
        """Append one record (see :meth:`Ledger.append <aegis_kernel.state.Ledger.append>`)."""
        self.ledger.append(record)

    def sync(self) -> None:
        self.ledger.sync()

    def close(self) -> None:
        self.ledger.close()

    # --- reading -------------------------------------------------------------------------------------

    def replay(self) -> ReplayResult:
        """Every readable record, and a :class:`~aegis_kernel.state.Problem` per skipped line (a torn last
        line, bad JSON…); never raises on content."""
        return Ledger.replay(self.path)

    def fold(self, apply: Callable[[S | None, dict[str, Any]], S | None],
             records: Iterable[dict[str, Any]] | None = None) -> dict[str, S]:
        """:func:`fold` of ``records`` (default: this journal's, replayed) by this journal's key."""
        return fold(self.replay().records if records is None else records, apply, key=self.key)

    @staticmethod
    def archived_summaries(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
        """The ``archived`` records (one per earlier archive run), in journal order."""
        return [r for r in records if r.get("event") == ARCHIVED]

    # --- archiving -----------------------------------------------------------------------------------

    def archive(self, plan: Callable[[list[dict[str, Any]]], ArchivePlan | None], *, at: str) -> ReplayResult:
        """Replay, and when ``plan(records)`` says so, move records to :attr:`archive_dir` (see the module
        docstring); ``at`` stamps the ``archived`` record. Returns the live records as they now stand.

        A journal with unreadable lines (other than torn records, see the module docstring) is returned
        as replayed, unarchived. A failed write is logged,
        leaves the journal unchanged (and no second copy in the archive) and returns it as replayed.
        Must not run while records are being appended (call it before the journal is used).
        """
        result = self.replay()
        if not result.records or not all(_torn(p) for p in result.problems):
            return result
        moved = plan(result.records)
        if moved is None or not moved.archived:
            return result
        archived, kept = moved.archived, moved.kept
        name = f"{self.name}-{_file_part(archived[0].get(self.key))}-{_file_part(archived[-1].get(self.key))}.jsonl"
        summary = {"v": 1, "event": ARCHIVED, "at": at, "archive": f"archive/{name}", **moved.summary}
        if result.problems:
            summary["torn"] = len(result.problems)
        earlier = [r for r in kept if r.get("event") == ARCHIVED]
        live = [*earlier, summary, *(r for r in kept if r.get("event") != ARCHIVED)]
        target = self.archive_dir / name
        self.ledger.close()  # the live file is replaced: no fd may keep appending to the old one
        try:
            write_text_atomic(target, _jsonl(archived))
            write_text_atomic(self.path, _jsonl(live))
        except OSError as exc:
            log.error("journal %s: could not archive (the journal is unchanged): %s", self.path, exc)
            target.unlink(missing_ok=True)  # the records are still in the journal: no second copy
            return result
        log.info("journal %s: archived %s records to %s", self.path, len(archived), name)
        return ReplayResult(records=live)


def _file_part(item: Any) -> str:
    """An item id as part of a file name: characters other than letters, digits, ``.``, ``_`` and ``-``
    become ``_`` (an id holding ``/`` never names a file outside the archive folder)."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", str(item))


def _torn(problem: Problem) -> bool:
    """Whether a skipped line is what an interrupted append leaves (see the module docstring)."""
    return (problem.reason.startswith(("torn record", "torn last line"))
            or (problem.reason.startswith("bad JSON") and problem.text_excerpt.startswith(_RECORD_START)))


def _jsonl(records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False, separators=(",", ":")) + "\n" for r in records)
