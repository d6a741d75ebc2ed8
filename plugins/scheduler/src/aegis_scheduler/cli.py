"""``aegis schedule list | show NAME | run NAME | enable NAME | disable NAME | logs NAME [-n N] | add NAME … | remove NAME``.

Verbs are thin clients of the running Aegis (``aegis serve`` or the TUI) over its control socket,
caller = the user; ``--json`` prints the operation's answer. Without a running Aegis, ``list`` reads
the config and the last snapshot, ``logs`` reads the audit log, and ``enable``/``disable`` edit the
schedule's file through the same comment-preserving edit path (the next start picks it up).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def setup(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="schedule_cmd", metavar="VERB", required=True)
    p = sub.add_parser("list", help="every schedule with its next fire")
    p.add_argument("--json", action="store_true")
    for verb, text in (("show", "one schedule in full"), ("run", "fire a schedule now, once"),
                       ("enable", "enable a schedule (comment-preserving edit)"),
                       ("disable", "disable a schedule (comment-preserving edit)"),
                       ("remove", "remove a schedule (its overlay file or its .aegis.yaml entry)")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("name")
        p.add_argument("--json", action="store_true")
    p = sub.add_parser("logs", help="a schedule's audit log")
    p.add_argument("name")
    p.add_argument("-n", type=int, default=50, help="the last N records (default 50)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("add", help="add a schedule as an overlay .aegis/schedules/NAME.yaml")
    p.add_argument("name")
    p.add_argument("--workflow", required=True)
    trigger = p.add_mutually_exclusive_group(required=True)
    trigger.add_argument("--cron", help="five fields, e.g. '0 6 * * *'")
    trigger.add_argument("--fire-at", dest="fire_at", help="an ISO instant, e.g. 2026-12-24T18:00:00Z")
    trigger.add_argument("--every", help="an interval: 90s, 10m, 2h")
    p.add_argument("--timezone", help="IANA timezone of --cron (default UTC)")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=JSON",
                   help="a workflow argument; the value is JSON (a bare word is a string)")
    p.add_argument("--lifecycle", help="forever | once | fires=N | until=ISO")
    p.add_argument("--on-overlap", dest="on_overlap", choices=("skip", "queue", "kill"))
    p.add_argument("--catch-up", dest="catch_up", choices=("skip", "once"))
    p.add_argument("--json", action="store_true")


def _project(args: argparse.Namespace) -> Path:
    from aegis_kernel import resolve_project_dir

    return Path(resolve_project_dir(getattr(args, "project", None)))


def _call(args: argparse.Namespace, operation: str, /, **arguments: Any) -> Any:
    """One schedule operation on the running Aegis; every verb waits up to 60 s (``run`` starts a workflow)."""
    from aegis_kernel.client import call_from_cli

    return call_from_cli(args, operation, _timeout=60, **arguments)


def run(args: argparse.Namespace) -> int:
    from aegis_kernel import ControlError
    from aegis_kernel.client import NotRunning, print_out

    verb = args.schedule_cmd
    try:
        if verb == "list":
            return print_out(args, _call(args, "aegis_schedule_list"), _print_list)
        if verb == "show":
            return print_out(args, _call(args, "aegis_schedule_show", name=args.name), _print_show)
        if verb == "logs":
            return print_out(args, _call(args, "aegis_schedule_logs", name=args.name, n=args.n), _print_logs)
        if verb == "run":
            return print_out(args, _call(args, "aegis_schedule_run", name=args.name),
                        lambda o: print(f"{o['name']}: fired ({o['fire_id']}, run#{o['run_id']}) {o['status']}"))
        if verb in ("enable", "disable"):
            return print_out(args, _call(args, f"aegis_schedule_{verb}", name=args.name),
                        lambda o: print(f"{args.name}: {verb}d" + ("" if o.get("changed") else " (already)")))
        if verb == "remove":
            return print_out(args, _call(args, "aegis_schedule_remove", name=args.name),
                        lambda o: print(f"{o['name']}: removed ({o['file']})"))
        if verb == "add":
            return print_out(args, _call(args, "aegis_schedule_add", **_add_args(args)),
                        lambda o: print(f"{o['name']}: added in {o['file']}"))
    except NotRunning as exc:
        if verb in ("list", "logs", "enable", "disable"):
            return _offline(args, verb)
        print(f"aegis schedule {verb}: {exc}", file=sys.stderr)
        return 2
    except ControlError as exc:
        print(f"aegis schedule {verb}: {exc}", file=sys.stderr)
        return 1
    except ValueError as exc:
        print(f"aegis schedule {verb}: {exc}", file=sys.stderr)
        return 2
    return 2


def _add_args(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {"name": args.name, "workflow": args.workflow}
    for key in ("cron", "fire_at", "every", "timezone", "on_overlap", "catch_up"):
        if getattr(args, key) is not None:
            out[key] = getattr(args, key)
    if args.arg:
        from aegis_workflow.cli import parse_args

        out["args"] = parse_args(args.arg)
    if args.lifecycle:
        text = args.lifecycle
        if text.startswith("fires="):
            out["lifecycle"] = {"fires": int(text.partition("=")[2])}
        elif text.startswith("until="):
            out["lifecycle"] = {"until": text.partition("=")[2]}
        else:
            out["lifecycle"] = text
    return out


def _print_list(out: dict[str, Any]) -> None:
    rows = out.get("schedules") or []
    if not rows:
        print("no schedules (add one under schedules: in .aegis.yaml, or `aegis schedule add`)")
    for s in rows:
        state = "on " if s.get("enabled") else "off"
        print(f"{s['name']:<20} {state} {s.get('workflow', ''):<14} {s.get('trigger') or '-':<34} "
              f"next {s.get('next_fire') or '-':<21} fires {s.get('fires', 0):<4} "
              f"{s.get('last_status') or ''}{'  ! ' + s['problem'] if s.get('problem') else ''}")
    for problem in out.get("problems") or ():
        print(f"! {problem}")


def _print_show(out: dict[str, Any]) -> None:
    for key, value in out.items():
        if key != "recent":
            print(f"{key:<14} {json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else value}")
    _print_logs({"records": out.get("recent") or []})


def _print_logs(out: dict[str, Any]) -> None:
    for rec in out.get("records") or ():
        extra = rec.get("status") or rec.get("reason") or ("manual" if rec.get("manual") else rec.get("due") or "")
        detail = rec.get("error") or rec.get("result") or ""
        print(f"{rec.get('at', ''):<21} {rec.get('event', ''):<15} {str(rec.get('fire_id') or ''):<14} "
              f"{extra} {str(detail)[:100]}".rstrip())


def _offline(args: argparse.Namespace, verb: str) -> int:
    """What can be done without a running Aegis: read the files, or edit ``enabled``."""
    from aegis_kernel import read_json
    from aegis_kernel.client import print_out

    project = _project(args)
    state = project / ".aegis" / "state"
    if verb == "list":
        snapshot = read_json(state / "schedules.snapshot.json", {}) or {}
        return print_out(args, {"schedules": snapshot.get("schedules") or [], "problems": [],
                           "offline": True, "snapshot_at": snapshot.get("at")}, _print_list)
    if verb == "logs":
        from aegis_kernel import Journal

        path = state / "schedules" / f"{args.name}.jsonl"
        if not path.exists():
            print(f"aegis schedule logs: no audit log for '{args.name}'", file=sys.stderr)
            return 1
        records = [r for r in Journal(path, key="fire_id").replay().records if r.get("event") != "created"]
        return print_out(args, {"name": args.name, "records": records[-args.n:] if args.n > 0 else []}, _print_logs)
    return _offline_enable(args, project, verb == "enable")


def _offline_enable(args: argparse.Namespace, project: Path, enabled: bool) -> int:
    """Set ``enabled`` in the schedule's file (overlay or ``.aegis.yaml``) through the kernel's edit path;
    the candidate must still be YAML (the next start validates the whole config)."""
    from aegis_kernel import ConfigError, apply_config_edit, read_config_key
    from aegis_kernel.client import print_out

    overlay = project / ".aegis" / "schedules" / f"{args.name}.yaml"
    if overlay.exists():
        path, keys = overlay, ["enabled"]
    else:
        path, keys = project / ".aegis.yaml", ["schedules", args.name, "enabled"]
        if not isinstance(read_config_key(path, keys[:2]), dict):
            print(f"aegis schedule {args.schedule_cmd}: unknown schedule '{args.name}'", file=sys.stderr)
            return 1
    try:
        done = apply_config_edit(path, keys, enabled, validate=lambda candidate: read_config_key(candidate, []),
                                 who="user", op="set_schedule_enabled")
    except ConfigError as exc:
        print(f"aegis schedule {args.schedule_cmd}: {exc}", file=sys.stderr)
        return 1
    return print_out(args, {"key": done.key, "changed": done.changed, "before": done.before, "after": done.after,
                       "file": str(path)},
                lambda o: print(f"{args.name}: {'enabled' if enabled else 'disabled'} in {path} (no Aegis is running)"))
