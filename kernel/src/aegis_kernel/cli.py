"""The ``aegis`` command. Core verbs live here; plugins add verbs through ``aegis_register_cli``.

Heavy imports (trio, the kernel, plugins) are deferred into the verbs so ``aegis --version`` stays fast.
Exit codes: 0 ok, 1 failure, 2 bad usage or bad config (with a ``file:line`` message, no traceback).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

EXIT_USAGE = 2


def _version() -> str:
    from . import __version__

    return f"aegis {__version__}"


def _project(args: argparse.Namespace) -> Path | None:
    return Path(args.project).resolve() if getattr(args, "project", None) else None


def _state_dir(args: argparse.Namespace) -> Path:
    from .project import resolve_project_dir

    return resolve_project_dir(_project(args)) / ".aegis" / "state"


def _print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def print_table(rows: Sequence[tuple[str, ...]]) -> None:
    """Print ``rows`` (the first is the header) as left-aligned columns; plugins' verbs use it too."""
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    for r in rows:
        print("  ".join(cell.ljust(widths[c]) for c, cell in enumerate(r)).rstrip())


# --- plugins / config / doctor ---------------------------------------------------------------------


def cmd_plugins_list(args: argparse.Namespace, host: Any) -> int:
    infos = [i.to_dict() for i in host.infos.values()]
    if args.json:
        _print_json(infos)
        return 0
    rows = [("PLUGIN", "DISTRIBUTION", "VERSION", "STATUS", "HOOKS")]
    for i in infos:
        hooks = ", ".join(h.removeprefix("aegis_") for h in i["hooks"]) or "-"
        rows.append((i["name"], i.get("file") or i["dist"] or "-", i["version"] or "-", i["status"], hooks))
    print_table(rows)
    for i in infos:
        if i["status"] == "failed":
            print(f"\n✗ {i['name']} ({i.get('file') or i['dist'] or i['module']}) failed: {i['error']}")
    return 0


def cmd_config_show(args: argparse.Namespace, kernel: Any) -> int:
    import attrs

    def plain(v: Any) -> Any:
        if attrs.has(type(v)):
            return {k: plain(x) for k, x in attrs.asdict(v, recurse=False).items()}
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    data = {name: plain(value) for name, value in kernel.config.sections.items()}
    if args.json:
        _print_json({"path": str(kernel.config.path) if kernel.config.path else None, "sections": data})
    else:
        print(f"# {kernel.config.path or 'no .aegis.yaml (defaults)'}")
        for name, value in data.items():
            print(f"{name}: {json.dumps(value, default=str)}")
    return 0


def cmd_config_validate(args: argparse.Namespace, kernel: Any) -> int:
    """Exit 0 when valid (warnings, e.g. a disabled plugin's section, go to stderr); bad config → 2 (in ``_main``)."""
    for warning in kernel.config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"ok: {kernel.config.path or 'no .aegis.yaml (defaults)'} is valid")
    return 0


def _agent_binaries(args: argparse.Namespace, kernel: Any) -> list[str]:
    """The agent CLIs the enabled drivers run (:attr:`aegis_kernel.drivers.Driver.binary`), sorted.

    With a broken config (``kernel`` None) the plugins are loaded on their own: the drivers still say."""
    if kernel is not None:
        host = kernel.plugins
    else:
        from .plugins import load_plugins
        from .project import plugins_disabled, resolve_project_dir

        host = load_plugins(disabled=plugins_disabled(resolve_project_dir(_project(args))))
    drivers = host.registry.objects("drivers").values()
    return sorted({d.binary for d in drivers if getattr(d, "binary", None)})


def cmd_doctor(args: argparse.Namespace) -> int:
    import shutil
    import tempfile

    from .config import ConfigError

    ok = True

    def line(good: bool, text: str) -> None:
        nonlocal ok
        ok = ok and good
        print(f"{'✓' if good else '✗'} {text}")

    v = sys.version_info
    line(v >= (3, 11), f"python {v.major}.{v.minor}.{v.micro} ({sys.executable})")
    try:
        kernel = _build(args)
        line(True, f"config: {kernel.config.path or 'no .aegis.yaml (defaults)'}"
             + "".join(f"\n    warning: {w}" for w in kernel.config.warnings))
        state = kernel.state.root
    except ConfigError as exc:
        line(False, f"config:\n{exc}")
        from .project import resolve_project_dir

        state = resolve_project_dir(_project(args)) / ".aegis" / "state"
        kernel = None
    try:
        state.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=state):
            pass
        line(True, f"state dir writable: {state}")
    except OSError as exc:
        line(False, f"state dir not writable: {state} ({exc})")
    serve_error = _serve_config_error(args)
    if serve_error is not None:
        line(False, f"the running serve refused a config edit and keeps its last good config:\n{serve_error}")
    if kernel is not None:
        failed = [i for i in kernel.plugins.infos.values() if i.status == "failed"]
        enabled = [i for i in kernel.plugins.infos.values() if i.status == "enabled"]
        line(not failed, f"plugins: {len(enabled)} enabled" + "".join(f"\n    failed: {i.name}: {i.error}"
                                                                      for i in failed))
    for binary in _agent_binaries(args, kernel):
        path = shutil.which(binary)
        print(f"{'✓' if path else '·'} {binary}: {path or 'not on PATH (needed only for agents using it)'}")
    return 0 if ok else 1


def _serve_config_error(args: argparse.Namespace) -> str | None:
    """The running serve's ``config_error`` (an edit it refused), or None (none, or no serve running)."""
    from .control import ControlError

    try:
        info = _call(args, "aegis_ping")
    except (ControlError, OSError):
        return None
    return info.get("config_error") if isinstance(info, dict) else None


# --- verbs of the running Aegis: thin clients of operations ------------------------------------------


def _call(args: argparse.Namespace, operation: str, **params: Any) -> Any:
    """Call ``operation`` on the Aegis that owns this project (see :mod:`aegis_kernel.client`)."""
    from .client import call

    return call(_state_dir(args), operation, {k: v for k, v in params.items() if v is not None})


def cmd_call(args: argparse.Namespace) -> int:
    """``aegis call OPERATION [--json ARGS | key=value …]``: any operation, its JSON result printed."""
    params: dict[str, Any] = {}
    if args.json_args is not None:
        try:
            params = json.loads(args.json_args)
        except ValueError as exc:
            print(f"aegis call: --json is not JSON: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not isinstance(params, dict):
            print("aegis call: --json must be a JSON object of arguments", file=sys.stderr)
            return EXIT_USAGE
    for pair in args.pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            print(f"aegis call: arguments are key=value, got {pair!r}", file=sys.stderr)
            return EXIT_USAGE
        try:
            params[key] = json.loads(raw)  # numbers, booleans, null, lists, objects…
        except ValueError:
            params[key] = raw  # …else the plain string
    from .client import connect

    with connect(_state_dir(args), timeout=None) as client:
        from .rpc import RpcError

        try:
            streamed = False
            for item in client.stream(args.operation, params):  # a streaming operation: one line per item
                streamed = True
                print(json.dumps(item, ensure_ascii=False), flush=True)
            if not streamed:
                _print_json(client.last_result)
        except RpcError as exc:
            _print_json({"error": exc.message, **exc.data})
            return 1
    return 0


def cmd_sessions(args: argparse.Namespace) -> int:
    sessions = _call(args, "aegis_sessions")
    if args.json:
        _print_json(sessions)
        return 0
    if not sessions:
        print("no sessions (start one with: aegis spawn AGENT --prompt TEXT)")
        return 0
    for s in sessions:
        m = s["metrics"]
        print(f"{s['handle']:<24} {s['agent']:<14} {s['state']:<15} ↑{m['input']} ↓{m['output']} "
              f"⚒ {m['tool_calls']} turns {m['turns']}" + (f"  ✗ {s['error']}" if s.get("error") else ""))
    return 0


def cmd_spawn(args: argparse.Namespace) -> int:
    if args.resume:
        info = _call(args, "aegis_resume", handle=args.resume, new_handle=args.handle, prompt=args.prompt)
    else:
        info = _call(args, "aegis_spawn", agent=args.agent, prompt=args.prompt, handle=args.handle)
    print(info["handle"])
    return 0


def cmd_send(args: argparse.Namespace) -> int:
    receipt = _call(args, "aegis_send", handle=args.handle, text=args.text, interrupt=args.interrupt)
    print(f"{receipt['state']} → {receipt['handle']}" + (f" (position {receipt['position']})"
                                                           if receipt["position"] else ""))
    return 0


def cmd_transcript(args: argparse.Namespace) -> int:
    from .client import connect
    from .events import event_from_dict
    from .sessions import transcript_lines

    def show(data: dict[str, Any]) -> None:
        if args.json:
            print(json.dumps(data, ensure_ascii=False), flush=True)
        else:
            for text in transcript_lines([event_from_dict(data)]):
                print(text, flush=True)

    with connect(_state_dir(args), timeout=None if args.follow else 30.0) as client:
        if args.follow:  # history, then live events until the session closes (one subscription: no gap)
            for item in client.stream("aegis_subscribe", {"session": args.handle, "history": True,
                                                          "until_closed": True, "topics": ["session.event"]}):
                if item.get("lagged"):
                    print(f"… {item['lagged']} events skipped (a slow reader); see the transcript file", flush=True)
                elif item.get("topic") == "session.event" and not item["data"].get("partial"):
                    show(item["data"])
            return 0
        offset: int | None = 0
        while offset is not None:
            page = client.call("aegis_transcript", {"handle": args.handle, "offset": offset})
            for data in page["events"]:
                show(data)
            offset = page["next_offset"]
    return 0


def cmd_close(args: argparse.Namespace) -> int:
    _call(args, "aegis_close", handle=args.handle)
    print(f"closed {args.handle}")
    return 0


def cmd_interrupt(args: argparse.Namespace) -> int:
    _call(args, "aegis_interrupt", handle=args.handle)
    print(f"interrupt sent to {args.handle}")
    return 0


def cmd_approve(args: argparse.Namespace, allow: bool = True) -> int:
    if allow:
        _call(args, "aegis_approve", handle=args.handle, always=getattr(args, "always", False))
    else:
        _call(args, "aegis_deny", handle=args.handle)
    print(f"{'approved' if allow else 'denied'}: {args.handle}")
    return 0


def cmd_rename(args: argparse.Namespace) -> int:
    _call(args, "aegis_rename", handle=args.handle, new_handle=args.new_handle)
    print(f"{args.handle} → {args.new_handle}")
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    """Stop the running Aegis; with none running, end the agents a killed one left (``reaper``)."""
    from .control import ControlError

    try:
        _call(args, "aegis_stop")
    except ControlError:
        from .reaper import reap_sync

        reaped = reap_sync(_state_dir(args))
        if not reaped:
            raise
        print(f"no Aegis running; ended {len(reaped)} agent process group(s) a killed one left running")
        return 0
    print("stopping the running Aegis")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from .serve import run_serve

    return run_serve(_project(args), args.clean)


# --- parser ----------------------------------------------------------------------------------------


def _build(args: argparse.Namespace) -> Any:
    from .kernel import build_kernel

    return build_kernel(_project(args))


def build_parser(plugin_cli: dict[str, Any]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aegis", description="Aegis: many coding agents, one calm harness.")
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    parser.add_argument("-C", "--project", metavar="DIR", help="project folder (default: nearest .aegis.yaml)")
    parser.add_argument("--clean", action="store_true", help="bare `aegis`: start fresh, without restoring tabs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    plugins = sub.add_parser("plugins", help="list discovered plugins").add_subparsers(dest="sub", required=True)
    p = plugins.add_parser("list", help="every plugin: distribution, version, hooks, status")
    p.add_argument("--json", action="store_true")

    config = sub.add_parser("config", help="show, validate or edit the configuration").add_subparsers(
        dest="sub", required=True)
    config.add_parser("show", help="the merged, validated config").add_argument("--json", action="store_true")
    config.add_parser("validate", help="exit 0 when the config is valid, 2 with file:line errors otherwise")
    from .config_cli import PLUGIN_PREFIX, setup as setup_config_verbs

    setup_config_verbs(config, plugin_cli)  # agent, queue, default-agent, plugin-dir, set, unset, plugins' sections

    sub.add_parser("doctor", help="check python, config, state dir, agent CLIs")
    p = sub.add_parser("serve", help="run headless with the MCP plane and a control socket")
    p.add_argument("--clean", action="store_true", help="do not restore the sessions of the last run")
    p = sub.add_parser("sessions", help="list sessions of the running serve")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("spawn", help="start an agent session in the running serve")
    p.add_argument("agent", nargs="?", help="agent profile (default: default_agent)")
    p.add_argument("--prompt", help="opening prompt")
    p.add_argument("--handle", help="handle to use (lowercase letters, digits, dashes)")
    p.add_argument("--resume", metavar="HANDLE", help="bring back a closed or crashed session with its history")
    p = sub.add_parser("send", help="send a message to a session")
    p.add_argument("handle")
    p.add_argument("text")
    p.add_argument("--interrupt", action="store_true", help="interrupt its current turn first")
    p = sub.add_parser("transcript", help="print a session's transcript")
    p.add_argument("handle")
    p.add_argument("--follow", "-f", action="store_true", help="keep printing new events")
    p.add_argument("--json", action="store_true", help="one JSON event per line")
    for name, text in (("close", "close a session"), ("interrupt", "interrupt a session's turn"),
                       ("deny", "deny a session's pending approval")):
        sub.add_parser(name, help=text).add_argument("handle")
    p = sub.add_parser("approve", help="approve a session's pending tool request")
    p.add_argument("handle")
    p.add_argument("--always", action="store_true", help="also approve this tool for the rest of the session")
    p = sub.add_parser("rename", help="give a session a new handle")
    p.add_argument("handle")
    p.add_argument("new_handle")
    sub.add_parser("stop", help="stop the running Aegis (serve or TUI)")
    p = sub.add_parser("call", help="call any operation on the running Aegis; prints its JSON result",
                       description="Arguments come as --json '{...}' and/or key=value pairs (values are "
                                   "parsed as JSON when they can be: n=3, flag=true, tags='[\"a\"]').")
    p.add_argument("operation", help="operation name, e.g. aegis_list_sessions")
    p.add_argument("pairs", nargs="*", metavar="key=value")
    p.add_argument("--json", dest="json_args", metavar="ARGS", help="the arguments as one JSON object")
    for name, spec in sorted(plugin_cli.items()):
        if name in sub.choices or name.startswith(PLUGIN_PREFIX):  # config-<section>: under `aegis config`
            continue
        p = sub.add_parser(name, help=spec["help"])
        if spec.get("setup"):
            spec["setup"](p)
    return parser


#: verbs that only talk to the running Aegis (no plugin is loaded for them)
CLIENT_VERBS = frozenset({"sessions", "spawn", "send", "transcript", "close", "interrupt", "stop", "approve", "deny",
                          "rename", "call"})
CORE_VERBS = {
    "doctor": cmd_doctor, "serve": cmd_serve, "sessions": cmd_sessions, "spawn": cmd_spawn, "send": cmd_send,
    "transcript": cmd_transcript, "close": cmd_close, "interrupt": cmd_interrupt, "stop": cmd_stop,
    "approve": cmd_approve, "deny": lambda a: cmd_approve(a, allow=False), "rename": cmd_rename,
    "call": cmd_call,
}


def main(argv: list[str] | None = None) -> int:
    """The ``aegis`` command. A reader that goes away (``aegis plugins list | head``) ends any verb
    quietly with status 141, as a tool killed by SIGPIPE does; Ctrl+C ends it with 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        if argv[:1] in (["--version"], ["-V"]):
            print(_version())
            return 0
        code = _main(argv)
        sys.stdout.flush()  # a pipe that broke under buffered output breaks here, not at exit
        return code
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return 141
    except BaseExceptionGroup as group:  # a verb running trio: the pipe broke inside a nursery
        if group.split(BrokenPipeError)[1] is not None:
            raise
        _silence_stdout()
        return 141


def _silence_stdout() -> None:
    """Point stdout at /dev/null, so the interpreter's final flush of the broken pipe stays silent."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def _main(argv: list[str]) -> int:
    from .plugins import load_plugins
    from .project import plugins_disabled, resolve_project_dir

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("-C", "--project")
    pre.add_argument("command", nargs="?")
    known, _ = pre.parse_known_args(argv)
    if known.command in CLIENT_VERBS:  # a thin client of the running Aegis: no plugin needs loading
        return _run_verb(build_parser({}).parse_args(argv))
    project = resolve_project_dir(known.project)
    from .config import raw_plugin_dirs

    host = load_plugins(disabled=plugins_disabled(project), dirs=raw_plugin_dirs(project))
    parser = build_parser(host.registry.objects("cli"))
    args = parser.parse_args(argv)
    if args.version:
        print(_version())
        return 0
    if args.command is None:
        return _default(args, parser, host)
    if args.command == "plugins":
        return cmd_plugins_list(args, host)
    from .config import ConfigError
    from .control import ControlError
    from .state import StateError

    try:
        if args.command == "config" and args.sub not in ("show", "validate"):
            from .config_cli import run as run_config_verb

            return run_config_verb(args, host)
        if args.command == "config":
            kernel = _build(args)
            return cmd_config_show(args, kernel) if args.sub == "show" else cmd_config_validate(args, kernel)
        if args.command in CORE_VERBS:
            return CORE_VERBS[args.command](args)
        return int(host.registry.objects("cli")[args.command]["run"](args) or 0)
    except ConfigError as exc:
        print(f"aegis: invalid configuration\n{exc}", file=sys.stderr)
        return EXIT_USAGE
    except (ControlError, StateError) as exc:  # StateError: e.g. a state folder another user owns
        print(f"aegis: {exc}", file=sys.stderr)
        return 1


def _run_verb(args: argparse.Namespace) -> int:
    """Run one of :data:`CLIENT_VERBS`; a refusal or no running Aegis is one line on stderr, exit 1."""
    from .control import ControlError

    try:
        return CORE_VERBS[args.command](args)
    except ControlError as exc:
        print(f"aegis: {exc}", file=sys.stderr)
        return 1


def _default(args: argparse.Namespace, parser: argparse.ArgumentParser, host: Any) -> int:
    """Bare ``aegis``: the TUI when it is installed, else help."""
    cli = host.registry.objects("cli")
    if "tui" in cli and os.isatty(1):
        return int(cli["tui"]["run"](args) or 0)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
