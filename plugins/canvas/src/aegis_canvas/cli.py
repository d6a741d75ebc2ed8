"""``aegis canvas list | show NAME | read NAME [SECTION] | write NAME SECTION | log NAME`` (all ``--json``).

Thin clients of the canvas operations over the running Aegis's control socket (caller = the user):
``write`` reads the section's text from stdin and writes as ``user``.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def setup(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="canvas_cmd", metavar="VERB", required=True)
    p = sub.add_parser("list", help="every canvas: file, version, sections, subscribers")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("show", help="one canvas: file, version, who wrote each section last, subscribers")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("read", help="a canvas's text, or one section's")
    p.add_argument("name")
    p.add_argument("section", nargs="?")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("write", help="replace a section with the text read from stdin")
    p.add_argument("name")
    p.add_argument("section")
    p.add_argument("--if-version", type=int, default=None, help="refuse (conflict) unless the canvas is at it")
    p.add_argument("--append", action="store_true", help="add the text at the end of the section instead")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("log", help="a canvas's latest writes (who, section, +added/-removed, version)")
    p.add_argument("name")
    p.add_argument("-n", type=int, default=20, help="how many (default 20)")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    from aegis_kernel import ControlError
    from aegis_kernel.client import NotRunning, call_from_cli

    verb = args.canvas_cmd
    try:
        if verb == "list":
            out = call_from_cli(args, "aegis_canvas_list")
            return _print(args, out, _list_text(out["canvases"]))
        if verb == "show":
            out = call_from_cli(args, "aegis_canvas_read", name=args.name)
            out.pop("text", None)
            return _print(args, out, _show_text(out))
        if verb == "read":
            out = call_from_cli(args, "aegis_canvas_read", name=args.name, section=args.section)
            return _print(args, out, out["content"] if args.section else out["text"], raw=True)
        if verb == "write":
            content = sys.stdin.read()
            if args.append:
                out = call_from_cli(args, "aegis_canvas_append_to_section", name=args.name, section=args.section,
                                    content=content)
            else:
                out = call_from_cli(args, "aegis_canvas_write_section", name=args.name, section=args.section,
                                    content=content, if_version=args.if_version)
            return _print(args, out, f"{args.name} · section \"{out['section']}\" · version {out['version']} "
                                     f"(+{out['added']} / -{out['removed']} lines)")
        if verb == "log":
            out = call_from_cli(args, "aegis_canvas_log", name=args.name, n=args.n)
            return _print(args, out, _log_text(out))
    except NotRunning as exc:
        print(f"aegis canvas {verb}: {exc}", file=sys.stderr)
        return 1
    except ControlError as exc:
        print(f"aegis canvas {verb}: {exc}", file=sys.stderr)
        data = getattr(exc, "data", None)
        if isinstance(data, dict) and data.get("diff"):
            print(data["diff"], file=sys.stderr)
        return 1
    return 2


def _print(args: argparse.Namespace, data: Any, text: str, *, raw: bool = False) -> int:
    from aegis_kernel.client import print_json

    if args.json:
        print_json(data)
    elif raw:
        sys.stdout.write(text)
    else:
        print(text)
    return 0


def _list_text(canvases: list[dict[str, Any]]) -> str:
    if not canvases:
        return "no canvases (an agent opens one with aegis_canvas_open)"
    rows = [f"{c['canvas']:<20} {c['file']:<36} v{c['version']:<5} {len(c['sections']):>3} sections  "
            f"{len(c['subscribers'])} subscribers" for c in canvases]
    return "\n".join(rows)


def _show_text(info: dict[str, Any]) -> str:
    lines = [f"canvas {info['canvas']} · {info['file']} · version {info['version']} · {info['writes']} writes"]
    if info.get("problem"):
        lines.append(f"problem: {info['problem']}")
    for section in info["sections"]:
        last = info["last"].get(section)
        who = f"{last.get('writer')} at {last.get('at')} (v{last.get('version')})" if last else "-"
        lines.append(f"  ## {section:<30} last written by {who}")
    subs = info["subscribers"]
    lines.append("subscribers: " + (", ".join(f"{h}" + (f" ({', '.join(s)})" if s else "") for h, s in subs.items())
                                    or "none"))
    return "\n".join(lines)


def _log_text(out: dict[str, Any]) -> str:
    if not out["writes"]:
        return f"{out['canvas']}: no writes yet"
    def count(n: Any) -> str:
        return "?" if n is None else str(n)  # an edit made while Aegis was stopped, with nothing to diff

    return "\n".join(f"{w['at']}  v{w['version']:<4} {w['writer']:<24} {w['op']:<8} "
                     f"{w['section'] or '(whole file)':<20} +{count(w['added'])} / -{count(w['removed'])}"
                     for w in out["writes"])
