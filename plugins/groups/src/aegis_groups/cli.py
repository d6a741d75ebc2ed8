"""``aegis group list | show <g> | spawn <g> PROFILE… | broadcast <g> OBJECTIVE | wait <g> | dissolve <g>``.

Thin clients: each verb calls the running Aegis's group operations over its control socket (caller =
the user); ``--json`` prints the operation's result as is.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def setup(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="group_cmd", metavar="VERB", required=True)
    p = sub.add_parser("list", help="every group: members, the open broadcast; the presets")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("show", help="one group: members (state, answered), current and recent broadcasts")
    p.add_argument("group")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("spawn", help="create a group with one new session per profile (or --preset)")
    p.add_argument("group")
    p.add_argument("profiles", nargs="*")
    p.add_argument("--preset", help="spawn the profiles of groups.presets.<PRESET>")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("broadcast", help="send one structured question to every member")
    p.add_argument("group")
    p.add_argument("objective", help="what to do ('-' reads stdin)")
    p.add_argument("--output-format", default="")
    p.add_argument("--tool-guidance", default="")
    p.add_argument("--boundaries", default="")
    p.add_argument("--wait", action="store_true", help="then wait for every reply (as `aegis group wait`)")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait (default groups.defaults.timeout)")
    p.add_argument("--reducer", default=None)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("wait", help="wait for the replies to the group's broadcast and print them")
    p.add_argument("group")
    p.add_argument("--any", action="store_true", help="return on the first reply (the others are cancelled)")
    p.add_argument("--timeout", type=float, default=None, help="seconds (default groups.defaults.timeout)")
    p.add_argument("--reducer", default=None)
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("dissolve", help="dissolve a group (closes the members it spawned)")
    p.add_argument("group")
    p.add_argument("--keep-members", action="store_true", help="leave every member running")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from aegis_kernel import ControlError
    from aegis_kernel.client import NotRunning, call_from_cli, print_out

    verb = args.group_cmd
    try:
        if verb == "list":
            return print_out(args, call_from_cli(args, "aegis_group_list"), _print_list)
        if verb == "show":
            return print_out(args, call_from_cli(args, "aegis_group_status", name=args.group), _print_show)
        if verb == "spawn":
            extra = {"preset": args.preset} if args.preset else {"profiles": args.profiles}
            out = call_from_cli(args, "aegis_group_spawn", _timeout=120, name=args.group, **extra)
            return print_out(args, out, lambda o: print(f"group {o['name']}: {', '.join(o['members'])}"))
        if verb == "broadcast":
            objective = sys.stdin.read() if args.objective == "-" else args.objective
            out = call_from_cli(args, "aegis_group_broadcast", name=args.group, objective=objective,
                        output_format=args.output_format, tool_guidance=args.tool_guidance,
                        boundaries=args.boundaries, **({"reducer": args.reducer} if args.reducer else {}))
            if not args.wait:
                return print_out(args, out, lambda o: print(f"broadcast {o['broadcast_id']} → {', '.join(o['members'])}"))
            return _wait(args, any_=False)
        if verb == "wait":
            return _wait(args, any_=args.any)
        if verb == "dissolve":
            out = call_from_cli(args, "aegis_group_dissolve", _timeout=120, name=args.group,
                        close_members=not args.keep_members)
            return print_out(args, out, lambda o: print(
                f"group {o['name']} dissolved; closed: {', '.join(o['closed']) or 'none'}"
                + (f"; still running: {', '.join(o['left_running'])}" if o["left_running"] else "")))
    except (NotRunning, ControlError) as exc:
        print(f"aegis group {verb}: {exc}", file=sys.stderr)
        return 1
    return 2


def _wait(args: argparse.Namespace, *, any_: bool) -> int:
    from aegis_kernel.client import call_from_cli, print_out

    params: dict[str, Any] = {"name": args.group}
    if args.timeout is not None:
        params["timeout"] = args.timeout
    if any_:
        out = call_from_cli(args, "aegis_group_wait_any", _timeout=(args.timeout or 3600) + 30, **params)
    else:
        if args.reducer:
            params["reducer"] = args.reducer
        out = call_from_cli(args, "aegis_group_wait_all", _timeout=(args.timeout or 3600) + 30, **params)
    print_out(args, out, _print_result)
    return 0 if not out["errors"] and not out["timeouts"] and not out.get("error") else 1


_DOTS = {"ready": "●", "working": "◐", "input-required": "?", "starting": "○", "error": "✗", "closed": "·",
         "gone": "·"}


def _print_list(data: dict[str, Any]) -> None:
    groups = data.get("groups", [])
    if not groups:
        print("no groups (aegis group spawn NAME PROFILE…)")
    for g in groups:
        members = " ".join(f"{_DOTS.get(m['state'], '?')}{m['handle']}" for m in g["members"]) or "(no members)"
        cur = g.get("current")
        note = f"  broadcast {cur['broadcast_id']}: {len(cur['answered'])}/{len(cur['members'])}" if cur else ""
        print(f"{g['name']:<16} {members}{note}")
    for name, profiles in (data.get("presets") or {}).items():
        print(f"preset {name}: {', '.join(profiles)}")


def _print_show(g: dict[str, Any]) -> None:
    print(f"group {g['name']} (created by {g['created_by']} at {g['created_at']})")
    print("MEMBERS")
    for m in g["members"]:
        answered = f"  answered: {m['answered']}" if "answered" in m else ""
        print(f"  {_DOTS.get(m['state'], '?')} {m['handle']:<20} {m.get('profile') or '-':<16} {m['state']}{answered}")
    cur = g.get("current")
    print("CURRENT BROADCAST")
    print(f"  {cur['broadcast_id']} by {cur['by']}: {cur['objective']}" if cur else "  none")
    print("RECENT BROADCASTS")
    for b in g.get("recent", []):
        print(f"  {b['broadcast_id']} {b['status']:<11} {len(b['answered'])}/{len(b['members'])} answered  "
              f"{b['objective']}")
    for left in g.get("left", []):
        print(f"  left: {left['handle']} ({left['reason']})")


def _print_result(out: dict[str, Any]) -> None:
    for handle, reply in out["replies"].items():
        print(f"## {handle} ({reply['status']}, {reply['turn_s']}s)\n{reply['text']}\n")
    for handle in out["timeouts"]:
        print(f"## {handle}: no answer (timed out)")
    for handle, error in out["errors"].items():
        print(f"## {handle}: error: {error}")
    if out.get("winner"):
        print(f"winner: {out['winner']}")
    if out.get("error"):
        print(out["error"], file=sys.stderr)
