"""``aegis queue list | show <q> | enqueue <q> PAYLOAD [--wait] | cancel <task> | status <task> | log <task>``.

Verbs talk to the running ``aegis serve`` over its control socket (caller = the user). ``list``,
``show`` and ``status`` fall back to reading the ledgers when no serve is running; ``log`` always
reads the files (the ledger, then the worker's records in the queue's shared transcript).
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def setup(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="queue_cmd", metavar="VERB", required=True)
    p = sub.add_parser("list", help="every queue: agent, running/max, pending, done, failed")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("show", help="one queue: in flight (worker, elapsed), pending, recent results")
    p.add_argument("queue")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("enqueue", help="put a task on a queue (PAYLOAD '-' reads stdin)")
    p.add_argument("queue")
    p.add_argument("payload")
    p.add_argument("--wait", action="store_true", help="wait for the result and print it")
    p.add_argument("--timeout", type=float, default=600.0, help="seconds to wait with --wait (default 600)")
    p.add_argument("--resume", action="store_true",
                   help="if a restart of Aegis interrupts the task, resume it in its worker's agent session "
                        "(when the agent can resume) instead of failing it as interrupted")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("cancel", help="cancel a pending or in-flight task")
    p.add_argument("task")
    p = sub.add_parser("status", help="one task's state and result")
    p.add_argument("task")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("log", help="what a task's worker did: its records from the queue's shared transcript")
    p.add_argument("task")
    p.add_argument("--json", action="store_true", help="the raw transcript records, one JSON object per line")


def run(args: argparse.Namespace) -> int:
    from aegis_kernel import ControlError
    from aegis_kernel.client import NotRunning, call_from_cli

    verb = args.queue_cmd
    if verb == "log":
        return _log(args)
    try:
        if verb == "list":
            return _print_list(args, call_from_cli(args, "aegis_queue_status"))
        if verb == "show":
            return _print_show(args, call_from_cli(args, "aegis_queue_status", queue=args.queue))
        if verb == "status":
            return _print_status(args, call_from_cli(args, "aegis_task_status", task_id=args.task))
        if verb == "enqueue":
            return _enqueue(args)
        if verb == "cancel":
            out = call_from_cli(args, "aegis_cancel", task_id=args.task)
            if out["status"] == "cancelled":
                print(f"task#{out['task_id']} cancelled (was {out['was']})")
                return 0
            print(f"task#{out['task_id']} finished ({out['status']}) before the cancel took effect", file=sys.stderr)
            return 1
    except NotRunning as exc:
        if verb in ("list", "show", "status"):
            return _offline(args)
        print(f"aegis queue {verb}: {exc}", file=sys.stderr)
        return 1
    except ControlError as exc:
        print(f"aegis queue {verb}: {exc}", file=sys.stderr)
        return 1
    return 2


def _enqueue(args: argparse.Namespace) -> int:
    from aegis_kernel.client import call_from_cli

    payload = sys.stdin.read() if args.payload == "-" else args.payload
    if args.wait:
        out = call_from_cli(args, "aegis_delegate", _timeout=args.timeout + 30, queue=args.queue, payload=payload,
                            timeout_s=args.timeout, resume=args.resume)
        if args.json:
            print(json.dumps(out, indent=2))
        elif out["status"] == "timeout":
            print(f"task#{out['task_id']}: {out['message']}", file=sys.stderr)
        else:
            if out["status"] != "completed":
                print(f"task#{out['task_id']} {out['status']}: {out.get('error', '')}", file=sys.stderr)
            print(out.get("result") or "")
        return 0 if out["status"] == "completed" else 1
    out = call_from_cli(args, "aegis_enqueue", queue=args.queue, payload=payload, callback=False, resume=args.resume)
    if args.json:
        print(json.dumps(out, indent=2))
    elif out["status"] == "dispatched":
        print(f"task#{out['task_id']} dispatched to {out.get('worker', '?')}")
    else:
        print(f"task#{out['task_id']} queued (position {out['queued_position']})")
    return 0


# --- printing ---------------------------------------------------------------------------------------


def _print_list(args: argparse.Namespace, data: dict[str, Any], note: str = "") -> int:
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    queues = data.get("queues", [])
    if not queues:
        print("no queues configured (add one: aegis config queue add NAME --agent AGENT)")
    else:
        rows = [("QUEUE", "AGENT", "RUNNING", "PENDING", "DONE", "FAILED", "CANCELLED", "LAST WORKER")]
        for q in queues:
            name = q["queue"] + (" (removed)" if q.get("removed") else "")  # finishing what it admitted
            rows.append((name, q["agent"], f"{q['in_flight']}/{q['max_parallel']}", str(q["pending"]),
                         str(q["completed"]), str(q["failed"]), str(q["cancelled"]), q.get("last_worker") or "-"))
        from aegis_kernel import print_table

        print_table(rows)
    for name, why in (data.get("misconfigured") or {}).items():
        print(f"✗ {name}: {why}")
    if note:
        print(note)
    return 0


def _print_show(args: argparse.Namespace, q: dict[str, Any], note: str = "") -> int:
    if args.json:
        print(json.dumps(q, indent=2))
        return 0
    timeout = q.get("timeout_s")
    print(f"queue {q['queue']} · agent {q['agent']} · max_parallel {q['max_parallel']}"
          f" · timeout {_duration(timeout)}"
          + (" · worktrees" if q.get("worktree") else "") + (f" · {q['budgets']} budget rule(s)" if q.get("budgets")
                                                            else ""))
    print(f"depth {q['pending']} · in flight {q['in_flight']}/{q['max_parallel']} · ✓{q['completed']} "
          f"✗{q['failed']} ⊘{q['cancelled']}")
    inflight = q.get("in_flight_tasks") or []
    print(f"\nin flight ({len(inflight)}):" if inflight else "\nin flight: none")
    for t in inflight:
        elapsed = f"{t['elapsed_s']:.1f}s" if t.get("elapsed_s") is not None else "?"
        print(f"  task#{t['task_id']}  {t.get('worker') or '-'}  {elapsed}  {t['payload']}")
    pending = q.get("pending_tasks") or []
    print(f"\npending ({len(pending)}):" if pending else "\npending: none")
    for t in pending[:20]:
        print(f"  {t['position']:>3}. task#{t['task_id']}  {t['payload']}")
    if len(pending) > 20:
        print(f"  … {len(pending) - 20} more")
    recent = q.get("recent") or []
    print("\nrecent:" if recent else "\nrecent: none")
    marks = {"completed": "✓", "failed": "✗", "cancelled": "⊘"}
    for t in recent[:10]:
        print(f"  {marks.get(t['status'], '?')} task#{t['task_id']}  {t.get('worker') or '-'}  "
              f"{t.get('finished_at') or ''}  {t.get('result') or ''}")
    for problem in q.get("ledger_problems") or []:
        print(f"⚠ ledger: {problem}")
    if note:
        print(note)
    return 0


def _print_status(args: argparse.Namespace, t: dict[str, Any], note: str = "") -> int:
    if args.json:
        print(json.dumps(t, indent=2))
        return 0
    print(f"task#{t['task_id']} · queue {t['queue']} · {t['status']}"
          + (f" · position {t['position']}" if t.get("position") else "")
          + (f" · worker {t['worker']}" if t.get("worker") else ""))
    print(f"enqueued {t.get('enqueued_at')} by {t.get('enqueued_by')}"
          + (f" · finished {t['finished_at']}" if t.get("finished_at") else ""))
    if t.get("error"):
        print(f"error: {t['error']}")
    if t.get("transcript"):
        print(f"transcript: .aegis/state/{t['transcript']} (its part: aegis queue log {t['task_id']})")
    if t.get("worktree") and isinstance(t["worktree"], dict) and t["worktree"].get("path"):
        w = t["worktree"]
        print(f"worktree: {w['path']} ({w.get('branch')}) {w.get('state', '')} {w.get('reason', '')}".rstrip())
    if t.get("result"):
        print("\n" + t["result"])
    if note:
        print(note)
    return 0


# --- log: a task's worker transcript ------------------------------------------------------------------


def _log(args: argparse.Namespace) -> int:
    from aegis_kernel import Ledger, StateError
    from aegis_kernel.client import state_dir_of

    from .ledger import transcript_path, worker_log_id

    state = state_dir_of(args)
    workers: list[tuple[str, str]] = []  # (worker handle, transcript name), one per dispatch
    ledgers = sorted((state / "queues").glob("*.jsonl")) + sorted((state / "queues" / "archive").glob("*.jsonl"))
    try:
        for ledger in ledgers:
            for rec in Ledger.records(ledger):
                if rec.get("task_id") == args.task and rec.get("event") == "dispatched" and rec.get("worker"):
                    workers.append((rec["worker"], rec.get("transcript") or ""))
            if workers:
                break
    except StateError as exc:
        print(f"aegis queue log: {exc}", file=sys.stderr)
        return 1
    if not workers:
        print(f"aegis queue log: no dispatched task '{args.task}' in {state / 'queues'} (a pending task has no "
              "worker yet; see aegis queue status)", file=sys.stderr)
        return 1
    if not all(name for _, name in workers):
        print(f"aegis queue log: task '{args.task}' ran before workers shared a transcript; its worker's "
              f"transcript is .aegis/state/sessions/*-{workers[0][0]}.jsonl", file=sys.stderr)
        return 1
    for n, (worker, name) in enumerate(workers):
        path = state / transcript_path(name)
        if not path.exists():
            print(f"aegis queue log: the transcript of worker {worker} is missing: {path}", file=sys.stderr)
            return 1
        try:
            # a handle is reused over a day: the worker session's log id tells its records apart
            session = worker_log_id(args.task, worker)
            records = [r for r in Ledger.records(path) if r.get("session") == session]
        except StateError as exc:
            print(f"aegis queue log: {exc}", file=sys.stderr)
            return 1
        if args.json:
            for rec in records:
                print(json.dumps(rec, ensure_ascii=False))
            continue
        if n:
            print()
        print(f"task#{args.task} · worker {worker} · .aegis/state/{transcript_path(name)}")
        for line in render_transcript(records):
            print(line)
    return 0


def render_transcript(records: list[dict[str, Any]]) -> list[str]:
    """Readable lines for transcript records (``{"ts", "event": {"t": type, …}}``): one per event,
    a message's chunks joined, long texts cut."""
    import time

    lines: list[str] = []
    message: tuple[str | None, str, list[str]] | None = None  # (message id, its time, its chunks)

    def flush() -> None:
        nonlocal message
        if message is not None:
            lines.append(f"{message[1]}  {_cut(''.join(message[2]), 2000)}")
            message = None

    for rec in records:
        event = rec.get("event") if isinstance(rec.get("event"), dict) else {}
        kind = event.get("t", "?")
        at = rec.get("ts")
        stamp = time.strftime("%H:%M:%S", time.localtime(at)) if isinstance(at, (int, float)) else "--:--:--"
        if kind == "AssistantText":
            if event.get("partial") or event.get("parent_tool_use_id"):
                continue
            if message is not None and message[0] == event.get("message_id"):
                message[2].append(event.get("text", ""))
                continue
            flush()
            message = (event.get("message_id"), stamp, [event.get("text", "")])
            continue
        flush()
        lines.append(f"{stamp}  {_describe(kind, event)}")
    flush()
    return lines


def _describe(kind: str, e: dict[str, Any]) -> str:
    if kind == "StateChanged":
        return f"· {e.get('old')} → {e.get('new')}" + (f" ({_cut(e['reason'], 200)})" if e.get("reason") else "")
    if kind == "EnvelopeReceived":
        return f"✉ from {e.get('sender')}: {_cut(e.get('body', ''), 500)}"
    if kind == "UserTurn":
        return f"> {_cut(e.get('text', ''), 500)}"
    if kind == "Thinking":
        return f"(thinking) {_cut(e.get('text', ''), 200)}"
    if kind == "ToolUse":
        return f"⏺ {e.get('name')} {_cut(e.get('summary') or '', 200)}".rstrip()
    if kind == "ToolResult":
        return f"  └ {'error: ' if e.get('is_error') else ''}{_cut(e.get('text', ''), 300)}"
    if kind == "TurnResult":
        usage = e.get("usage") or {}
        tokens = f" · ↑{usage.get('input', 0)} ↓{usage.get('output', 0)}" if usage else ""
        return f"= turn ended: {e.get('stop_reason')}{tokens}" + (f" · {e['error']}" if e.get("error") else "")
    if kind == "AgentError":
        return f"! {_cut(e.get('message', ''), 500)}"
    if kind == "SystemInit":
        return f"· agent session {e.get('session_id')}" + (f" · model {e['model']}" if e.get("model") else "")
    return f"· {kind}"


def _cut(text: str, n: int) -> str:
    text = text.strip()
    return text if len(text) <= n else text[: n - 1] + "…"


# --- offline (no serve): read config + ledgers -------------------------------------------------------


def _offline(args: argparse.Namespace) -> int:
    from aegis_kernel import Ledger, build_kernel

    from .ledger import archived_counts, fold, summarize, transcript_path

    kernel = build_kernel(getattr(args, "project", None))
    specs = kernel.config.get("queues") or {}
    note = "(aegis serve is not running: read from the ledgers)"
    records = {name: list(Ledger.records(kernel.state.root / "queues" / f"{name}.jsonl")) for name in specs}
    folded = {name: fold(recs) for name, recs in records.items()}
    if args.queue_cmd == "status":
        for tasks in folded.values():
            if args.task in tasks:
                rec = {k: v for k, v in tasks[args.task].items() if k != "terminal_records"}
                if rec.get("transcript"):
                    rec["transcript"] = transcript_path(rec["transcript"])
                return _print_status(args, rec, note)
        print(f"aegis queue status: unknown task '{args.task}'", file=sys.stderr)
        return 1

    def info(name: str) -> dict[str, Any]:
        spec, tasks = specs[name], folded[name]
        counts = summarize(tasks)
        for status, n in archived_counts(records[name]).items():
            counts[status] += n
        done = [t for t in tasks.values() if t["status"] in ("completed", "failed", "cancelled")]
        return {"queue": name, "agent": spec.agent, "max_parallel": spec.max_parallel, "pending": counts["pending"],
                "in_flight": counts["dispatched"], "completed": counts["completed"], "failed": counts["failed"],
                "cancelled": counts["cancelled"], "worktree": spec.worktree, "timeout_s": spec.timeout_s,
                "budgets": len(spec.budgets), "last_worker": next((t.get("worker") for t in reversed(tasks.values())
                                                                   if t.get("worker")), None),
                "in_flight_tasks": [{"task_id": t["task_id"], "worker": t.get("worker"), "elapsed_s": None,
                                     "payload": _short(t["payload"])} for t in tasks.values()
                                    if t["status"] == "dispatched"],
                "pending_tasks": [{"task_id": t["task_id"], "position": i, "payload": _short(t["payload"])}
                                  for i, t in enumerate((t for t in tasks.values() if t["status"] == "pending"), 1)],
                "recent": [{"task_id": t["task_id"], "status": t["status"], "worker": t.get("worker"),
                            "finished_at": t.get("finished_at"), "result": _short(t.get("result") or t.get("error")
                                                                                  or "", 200)}
                           for t in reversed(done[-10:])]}

    if args.queue_cmd == "show":
        if args.queue not in specs:
            print(f"aegis queue show: unknown queue '{args.queue}' (queues: {', '.join(specs) or 'none'})",
                  file=sys.stderr)
            return 1
        return _print_show(args, info(args.queue), note)
    return _print_list(args, {"queues": [info(name) for name in specs]}, note)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "none"
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


def _short(text: str, n: int = 80) -> str:
    line = " ".join((text or "").split())
    return line if len(line) <= n else line[: n - 1] + "…"
