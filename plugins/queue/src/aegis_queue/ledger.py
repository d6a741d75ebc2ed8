"""The queue ledger ``.aegis/state/queues/<q>.jsonl``: record shapes and the replay fold.

Every record is ``{"v": 1, "event": <kind>, "task_id": …, "at": <ISO UTC>, …}``. Lifecycle kinds:

- ``enqueued``  ``{queue, payload, producer, enqueued_by, callback, base?, worktree?}``
- ``dispatched`` ``{worker, transcript, worktree?: {path, branch, base}}`` (written *before*
  the worker is spawned; ``transcript`` names the shared worker transcript
  ``sessions/<transcript>.jsonl``; the worker's records there carry ``session`` =
  :func:`worker_log_id`, since handles are reused over a day)
- terminal: ``completed`` ``{result, usage?, cost?}`` · ``failed`` ``{error, result?}`` ·
  ``cancelled`` ``{result?}`` — each carries ``callback_envelope`` (the id of the envelope that goes
  to the producer, written before it is sent) when there is a callback.

Resume (tasks enqueued with ``resume``): ``worker_session`` ``{resume_id}`` (the worker's agent session
id, as soon as it is known) · ``resumed`` ``{resume_id}`` (at a restart: the in-flight task goes back to
pending, ahead of the queue, to be resumed in that session; its next ``dispatched`` follows).

Diagnostics: ``callback_on`` (a timed-out ``aegis_delegate`` asks for the result later),
``callback`` ``{envelope_id, outcome: delivered|held|undeliverable}`` (only when not delivered live),
``worktree_kept`` / ``worktree_removed``.

Exactly one terminal record per task: the fold keeps the first and ignores later ones.

The ledger is a kernel :class:`~aegis_kernel.journal.Journal` (keyed by ``task_id``): replay tolerates a
torn last line, and :func:`fold` is the journal's fold with the queue's :func:`apply`.

Archiving (:func:`plan_archive`, at start, by the journal): once the ledger holds :data:`ARCHIVE_AT`
finished tasks, every record of all but the newest :data:`KEEP_FINISHED` of them moves, whole, to
``queues/archive/<q>-<first task>-<last task>.jsonl``, and the live ledger keeps an ``archived``
record ``{archive, tasks, counts}`` in their place, so totals survive and start-up stays fast.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aegis_kernel import (
    ArchivePlan,
    Journal,
    Problem,
    ReplayResult,
    fold as journal_fold,
    plan_archive as journal_plan_archive,
)

TERMINAL = ("completed", "failed", "cancelled")
LIFECYCLE = ("enqueued", "dispatched", *TERMINAL)
ARCHIVE_AT = 2000  # finished tasks in the live ledger that make the next start archive the older ones
KEEP_FINISHED = 200  # the newest finished tasks stay (recent results, aegis queue status)


_NONE = type(None)
_TEXT = (str, _NONE)
_FIELDS: dict[str, dict[str, tuple[type, ...]]] = {  # per record kind: the fields replay reads, their types
    "enqueued": {"payload": (str,), "queue": _TEXT, "producer": _TEXT, "enqueued_by": _TEXT, "callback": (bool, _NONE),
                 "base": _TEXT, "worktree": (dict, bool, _NONE), "resume": (bool, _NONE)},
    "dispatched": {"worker": _TEXT, "transcript": _TEXT, "worktree": (dict, _NONE)},
    **{kind: {"result": _TEXT, "error": _TEXT, "usage": (dict, _NONE), "cost": (dict, _NONE),
              "callback_envelope": _TEXT, "worktree": (dict, _NONE)} for kind in TERMINAL},
    "worker_session": {"resume_id": _TEXT},
    "resumed": {"resume_id": _TEXT},
    "callback_on": {"producer": _TEXT},
    "callback": {"outcome": _TEXT, "envelope_id": _TEXT, "producer": _TEXT},
}


def check_record(rec: dict[str, Any]) -> str | None:
    """Why replay must skip ``rec`` (a field of the wrong type), or None. Kinds and fields this version
    does not know pass (a newer writer's); ``archived`` summaries carry no task."""
    kind = rec.get("event")
    if not isinstance(kind, str):
        return f"'event' must be a string, got {type(kind).__name__}"
    fields = _FIELDS.get(kind)
    if fields is None:
        return None
    if not isinstance(rec.get("task_id"), str) or not rec["task_id"]:
        return f"{kind} record: 'task_id' must be a non-empty string, got {rec.get('task_id')!r}"
    for name, types in fields.items():
        if name in rec and not isinstance(rec[name], types):
            return f"{kind} record of task {rec['task_id']}: '{name}' has the wrong type ({type(rec[name]).__name__})"
    return None


def screen(result: ReplayResult) -> ReplayResult:
    """``result`` without the records :func:`check_record` refuses, each reported as a problem with its
    line (so one bad record costs only itself, and says where it is)."""
    records, line_nos, problems = [], [], list(result.problems)
    for i, rec in enumerate(result.records):
        line = result.line_nos[i] if i < len(result.line_nos) else i + 1  # archive rewrote it: one per line
        why = check_record(rec)
        if why is None:
            records.append(rec)
            line_nos.append(line)
        else:
            problems.append(Problem(line, why, str(rec)[:80]))
    problems.sort(key=lambda p: p.line_no)
    return ReplayResult(records=records, problems=problems, line_nos=line_nos)


def fold(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Fold ledger records into one dict per task (insertion order = enqueue order).

    Each task dict has ``status`` (pending | dispatched | completed | failed | cancelled) and the
    fields of its records; ``terminal_records`` counts terminal records seen (1 when healthy).
    """
    return journal_fold(records, apply, key="task_id")


def apply(task: dict[str, Any] | None, rec: dict[str, Any]) -> dict[str, Any] | None:
    """One record's effect on its task (None before ``enqueued``: a record about no task is ignored)."""
    kind = rec.get("event")
    if not isinstance(kind, str):
        return task
    if kind == "enqueued":
        if task is not None:
            return task
        return {
            "task_id": rec["task_id"], "queue": rec.get("queue"), "payload": rec.get("payload", ""),
            "producer": rec.get("producer"), "enqueued_by": rec.get("enqueued_by", "user"),
            "callback": bool(rec.get("callback")), "enqueued_at": rec.get("at"), "base": rec.get("base"),
            "worktree": rec.get("worktree"), "status": "pending", "terminal_records": 0,
            "resume": bool(rec.get("resume")), "resume_id": None, "resumed": 0,
        }
    if task is None:
        return None
    if kind == "dispatched":
        if task["status"] == "pending":
            task["status"] = "dispatched"
            task["worker"] = rec.get("worker")
            task["transcript"] = rec.get("transcript")
            task["dispatched_at"] = rec.get("at")
            if rec.get("worktree"):
                task["worktree"] = rec["worktree"]
    elif kind in TERMINAL:
        task["terminal_records"] += 1
        if task["status"] in TERMINAL:
            return task
        task["status"] = kind
        task["finished_at"] = rec.get("at")
        for key in ("result", "error", "usage", "cost", "callback_envelope"):
            if key in rec:
                task[key] = rec[key]
    elif kind == "worker_session":
        if isinstance(rec.get("resume_id"), str):
            task["resume_id"] = rec["resume_id"]
    elif kind == "resumed":
        if task["status"] == "dispatched":
            task["status"] = "pending"
            task["resumed"] += 1
    elif kind == "callback_on":
        task["callback"] = True
        if rec.get("producer"):
            task["producer"] = rec["producer"]
    elif kind == "callback":
        task["callback_outcome"] = rec.get("outcome")
    elif kind in ("worktree_kept", "worktree_removed"):
        wt = dict(task.get("worktree") or {}) if isinstance(task.get("worktree"), dict) else {}
        wt["state"] = "kept" if kind == "worktree_kept" else "removed"
        if rec.get("reason"):
            wt["reason"] = rec["reason"]
        task["worktree"] = wt
    return task


def summarize(tasks: dict[str, dict[str, Any]]) -> dict[str, int]:
    counts = {"pending": 0, "dispatched": 0, "completed": 0, "failed": 0, "cancelled": 0}
    for task in tasks.values():
        counts[task["status"]] = counts.get(task["status"], 0) + 1
    return counts


def worker_log_id(task_id: str, worker: str) -> str:
    """The log id of the worker session that ran ``task_id`` as ``worker``: unique, where handles are not."""
    return f"{task_id}-{worker}"


def transcript_path(name: str) -> str:
    """Where a ``transcript`` name of a ``dispatched`` record lives, relative to ``.aegis/state``."""
    return f"sessions/{name}.jsonl"


def archived_counts(records: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Totals per terminal status of the tasks earlier starts archived (from ``archived`` records)."""
    counts: dict[str, int] = {}
    for rec in Journal.archived_summaries(records):
        if isinstance(rec.get("counts"), dict):
            for status, n in rec["counts"].items():
                if status in TERMINAL and isinstance(n, int):
                    counts[status] = counts.get(status, 0) + n
    return counts


def plan_archive(records: list[dict[str, Any]], *, archive_at: int | None = None,
                 keep: int | None = None) -> ArchivePlan | None:
    """The archive plan for :meth:`Journal.archive <aegis_kernel.journal.Journal.archive>`: None when
    fewer than ``archive_at`` tasks are finished. Tasks move whole, in ledger order; the task of the
    ledger's last record always stays (a crash may have cut its callback, which the replay resends);
    the summary is ``{tasks, counts}``."""
    return journal_plan_archive(
        records, lambda recs: {tid: t["status"] for tid, t in fold(recs).items()}, finished=TERMINAL,
        archive_at=ARCHIVE_AT if archive_at is None else archive_at, keep=KEEP_FINISHED if keep is None else keep)
