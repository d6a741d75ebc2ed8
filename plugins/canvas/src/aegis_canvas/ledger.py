"""A canvas's ledger ``.aegis/state/canvases/<name>/ledger.jsonl``: record shapes and the replay fold.

Every record is ``{"v": 1, "event": <kind>, "canvas": <name>, "at": <ISO UTC>, …}`` (a kernel
:class:`~aegis_kernel.Journal` keyed by ``canvas``; replay tolerates a torn last line):

- ``opened``       ``{file, by, sha}`` — the binding (the file relative to the project root; ``sha``: the
  SHA-256 of its content then);
- ``write``        ``{writer, section, op: write|append|external, added, removed, version, sha}`` — one per
  changed section (an external edit of several sections writes one per section, same ``version``);
  ``sha`` is the SHA-256 of the whole file after the write, so a start can tell whether the file changed
  while Aegis was not running;
- ``subscribed``   ``{handle, sections}`` (``sections`` null: every section) · ``unsubscribed`` ``{handle, reason}``.

:func:`fold` gives the canvas's state: ``file``, ``version``, ``sha``, ``subscribers``
(handle → sections or None), ``last`` (section → its latest write record) and ``writes`` (count).

Archiving (:func:`plan_archive`, at start): a long ledger keeps its bindings, subscriptions, newest
writes and each section's latest write; the older writes move, whole, to
``canvases/<name>/archive/<name>-<first version>-<last version>.jsonl`` behind an ``archived``
``{archive, writes}`` record.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aegis_kernel import ArchivePlan, Journal
from aegis_kernel import fold as journal_fold

KEY = "canvas"
ARCHIVE_AT = 5000  # write records in the live ledger that make the next start archive the older ones
KEEP_WRITES = 500  # the newest writes stay (aegis_canvas_log), and every section's latest one


def apply(state: dict[str, Any] | None, rec: dict[str, Any]) -> dict[str, Any] | None:
    """One record's effect on the canvas state (None before ``opened``: nothing to change)."""
    kind = rec.get("event")
    if kind == "opened":
        if state is not None or not isinstance(rec.get("file"), str):
            return state
        sha = rec.get("sha") if isinstance(rec.get("sha"), str) else None
        return {"canvas": rec[KEY], "file": rec["file"], "opened_by": rec.get("by"), "opened_at": rec.get("at"),
                "version": 0, "sha": sha, "subscribers": {}, "last": {}, "writes": 0}
    if state is None:
        return None
    if kind == "write" and isinstance(rec.get("version"), int):
        state["version"] = max(state["version"], rec["version"])
        state["writes"] += 1
        if isinstance(rec.get("sha"), str):
            state["sha"] = rec["sha"]
        if isinstance(rec.get("section"), str):
            state["last"][rec["section"]] = rec
    elif kind == "subscribed" and isinstance(rec.get("handle"), str):
        sections = rec.get("sections")
        state["subscribers"][rec["handle"]] = tuple(sections) if isinstance(sections, list) else None
    elif kind == "unsubscribed" and isinstance(rec.get("handle"), str):
        state["subscribers"].pop(rec["handle"], None)
    return state


def fold(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The state of each canvas the records name (one per ledger in practice); ``writes`` counts the
    archived writes too (from the ``archived`` summaries)."""
    records = list(records)
    states = journal_fold(records, apply, key=KEY)
    archived = sum(r["writes"] for r in Journal.archived_summaries(records) if isinstance(r.get("writes"), int))
    for state in states.values():
        state["writes"] += archived
    return states


def plan_archive(records: list[dict[str, Any]], *, archive_at: int | None = None,
                 keep: int | None = None) -> ArchivePlan | None:
    """What a start moves to ``canvases/<name>/archive/`` (through :meth:`Journal.archive
    <aegis_kernel.Journal.archive>`, with the journal keyed by ``version`` so that each archive is named
    by its first and last version): once the live ledger holds ``archive_at`` writes, every write but
    the newest ``keep`` and each section's latest one. Bindings and subscriptions always stay."""
    archive_at = ARCHIVE_AT if archive_at is None else archive_at
    keep = KEEP_WRITES if keep is None else keep
    write_at = [i for i, r in enumerate(records) if r.get("event") == "write" and isinstance(r.get("version"), int)]
    if len(write_at) < archive_at:
        return None
    latest = {records[i].get("section"): i for i in write_at}
    staying = set(write_at[len(write_at) - keep:] if keep else ()) | set(latest.values())
    moving = {i for i in write_at if i not in staying}
    if not moving:
        return None
    return ArchivePlan(archived=[r for i, r in enumerate(records) if i in moving],
                       kept=[r for i, r in enumerate(records) if i not in moving], summary={"writes": len(moving)})


def writes(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``write`` records, in ledger order."""
    return [r for r in records if r.get("event") == "write"]
