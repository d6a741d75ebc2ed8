"""``aegis term list | spawn NAME | run NAME CMD | keys NAME KEYS | read NAME | screen NAME | close NAME``.

Thin clients of the terminal operations over the running Aegis's control socket (caller = the user;
commands run this way are recorded as run by ``user``). Every verb takes ``--json``. ``run`` exits
with the command's exit status (1 when it has none, 124 when it timed out).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def setup(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="term_cmd", metavar="VERB", required=True)
    p = sub.add_parser("list", help="every terminal: state, shell, cwd, last seq, subscribers")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("spawn", help="start a named shell (or re-start it, keeping its history)")
    p.add_argument("name")
    p.add_argument("--shell", default=None, help="default: $SHELL or /bin/bash")
    p.add_argument("--cwd", default=None, help="the folder to start in (default: the project root)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("run", help="run a command line and wait for it (prints its output, exits with its status)")
    p.add_argument("name")
    p.add_argument("cmd")
    p.add_argument("--timeout", type=float, default=120, help="seconds to wait (default 120)")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("keys", help="type text and named keys ({enter}, {ctrl-c}, {up}…) into a terminal")
    p.add_argument("name")
    p.add_argument("keys")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("read", help="the last finished commands (or those after --since) and the running one")
    p.add_argument("name")
    p.add_argument("-n", type=int, default=5, help="how many (default 5)")
    p.add_argument("--since", type=int, default=None, help="every command after this seq")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("screen", help="the terminal's current screen as text")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("close", help="close a terminal's shell (SIGHUP → SIGTERM → SIGKILL)")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from aegis_kernel import ControlError
    from aegis_kernel.client import NotRunning, call_from_cli, print_out

    verb = args.term_cmd
    try:
        if verb == "list":
            out = call_from_cli(args, "aegis_term_list")
            return print_out(args, out, lambda o: print(_list_text(o["terminals"])))
        if verb == "spawn":
            out = call_from_cli(args, "aegis_term_spawn", name=args.name, shell=args.shell, cwd=args.cwd)
            verb_done = "started" if out["created"] else "already running"
            return print_out(args, out,
                             lambda o: print(f"term:{o['terminal']} {verb_done} · {o['shell']} · {o['cwd']}"))
        if verb == "run":  # the call waits for the command: up to --timeout, and 30 s more for the answer
            out = call_from_cli(args, "aegis_term_run", _timeout=args.timeout + 30, name=args.name, cmd=args.cmd,
                                timeout_s=args.timeout)
            print_out(args, out, lambda o: print(_run_text(o)))
            if out.get("timed_out"):
                return 124
            return out["exit"] if isinstance(out.get("exit"), int) and 0 <= out["exit"] < 256 else 1
        if verb == "keys":
            out = call_from_cli(args, "aegis_term_keys", name=args.name, keys=args.keys)
            return print_out(args, out, lambda o: print(f"sent {o['sent']} bytes to term:{o['terminal']}"))
        if verb == "read":
            out = call_from_cli(args, "aegis_term_read", name=args.name, last_n=args.n, since_seq=args.since)
            return print_out(args, out, lambda o: print(_read_text(o)))
        if verb == "screen":
            out = call_from_cli(args, "aegis_term_screen", name=args.name)
            return print_out(args, out, lambda o: print(o["text"]))
        if verb == "close":
            out = call_from_cli(args, "aegis_term_close", name=args.name)
            return print_out(args, out, lambda o: print(
                f"term:{o['terminal']} " + ("closed" if o["closed"] else "was not running")))
    except NotRunning as exc:
        print(f"aegis term {verb}: {exc}", file=sys.stderr)
        return 1
    except ControlError as exc:
        print(f"aegis term {verb}: {exc}", file=sys.stderr)
        return 1
    return 2


def _list_text(terminals: list[dict[str, Any]]) -> str:
    if not terminals:
        return "no terminals (aegis term spawn NAME starts one)"
    return "\n".join(f"term:{t['terminal']:<16} {t['state']:<7} seq {t['seq']:<5} {str(t['shell']):<16} "
                     f"{len(t['subscribers'])} subscribers  {t['cwd']}" for t in terminals)


def _block(rec: dict[str, Any]) -> str:
    outcome = f"exit {rec['exit']}" if rec.get("exit") is not None else str(rec.get("status"))
    dur = rec.get("duration_s")
    head = f"#{rec.get('seq')} $ {rec.get('cmd')} · run by {rec.get('who')} · {outcome}"
    head += f" · {dur:.2f}s" if isinstance(dur, (int, float)) else ""
    out = rec.get("output") or ""
    return head + ("\n" + out if out else "")


def _run_text(out: dict[str, Any]) -> str:
    if out.get("timed_out"):
        tail = out.get("output_tail") or ""
        return (tail + "\n" if tail else "") + out["message"]
    if out.get("seq") is None:
        return out.get("message", "")
    return (out.get("output") + "\n" if out.get("output") else "") + (
        f"exit {out['exit']} · {out['duration_s']:.2f}s" if out.get("exit") is not None else str(out.get("status")))


def _read_text(out: dict[str, Any]) -> str:
    parts = [_block(r) for r in out["commands"]]
    if out.get("running"):
        r = out["running"]
        parts.append(f"#{r['seq']} $ {r['cmd']} · run by {r['who']} · running\n{r.get('output_tail') or ''}".rstrip())
    if not parts:
        parts.append(out.get("recent") or f"term:{out['terminal']}: no commands yet")
    return "\n\n".join(parts)
