"""``aegis budget list | show <q>``: talks to the running serve; reads the ledgers when none runs."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any


def setup(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="budget_cmd", metavar="VERB", required=True)
    p = sub.add_parser("list", help="every queue's ceilings: spent / limit per window")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("show", help="one queue's ceilings in detail")
    p.add_argument("queue")
    p.add_argument("--json", action="store_true")


def _status(args: argparse.Namespace, queue: str | None) -> tuple[list[dict[str, Any]], str]:
    from aegis_kernel.client import NotRunning, call
    from aegis_kernel import resolve_project_dir

    state = resolve_project_dir(getattr(args, "project", None)) / ".aegis" / "state"
    try:
        return call(state, "aegis_budget_status", {"queue": queue})["queues"], ""
    except NotRunning:
        return _offline(args, queue), "(no Aegis is running: read from the ledgers; in-flight not counted)"


def _offline(args: argparse.Namespace, queue: str | None) -> list[dict[str, Any]]:
    from aegis_kernel import OperationError, build_kernel

    from .runtime import BudgetRuntime

    rt = BudgetRuntime(build_kernel(getattr(args, "project", None)))
    rt.start()
    try:
        return rt.status(queue)
    except OperationError as exc:
        from aegis_kernel import ControlError

        raise ControlError(exc.message) from None


def run(args: argparse.Namespace) -> int:
    from aegis_kernel import ControlError

    queue = args.queue if args.budget_cmd == "show" else None
    try:
        queues, note = _status(args, queue)
    except ControlError as exc:
        print(f"aegis budget {args.budget_cmd}: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(queues, indent=2))
        return 0
    rows = [("QUEUE", "CONSTRAINT", "WINDOW", "SPENT", "RESERVED", "LIMIT", "REMAINING", "STATUS")]
    for q in queues:
        if not q["rules"]:
            if args.budget_cmd == "show":
                rows.append((q["queue"], "-", "-", f"${q['total_usd']} total", "-", "-", "-", "no ceilings"))
            continue
        for r in q["rules"]:
            status = f"blocked until {r['unblock_at']}" if r["blocked"] and r["unblock_at"] else \
                "blocked (in-flight work)" if r["blocked"] else "ok"
            rows.append((q["queue"], r["constraint"], r["window"], r["spent"], r["in_flight"], r["limit"],
                         r["remaining"], status))
    if len(rows) == 1:
        print("no queue has budgets (add `budgets:` to a queue in .aegis.yaml)")
    else:
        from aegis_kernel import print_table

        print_table(rows)
    if args.budget_cmd == "show":
        for q in queues:
            print(f"\n{q['queue']}: {q['tasks_recorded']} task(s) recorded, ${q['total_usd']} in total, "
                  f"{q['open_tasks']} unfinished" + (f", {q['unpriced_tasks']} unpriced (counted as $0)"
                                                      if q["unpriced_tasks"] else ""))
    if note:
        print(note)
    return 0
