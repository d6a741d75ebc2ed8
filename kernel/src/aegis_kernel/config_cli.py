"""``aegis config …`` verbs that edit the configuration: thin clients of the config operations.

``aegis config agent add|remove|list|show``, ``queue add|remove|list|show``, ``default-agent set``,
``plugin-dir add|remove|list``, ``set KEY.PATH VALUE`` / ``unset KEY.PATH``. An edit calls the
operation (:mod:`aegis_kernel.config_ops`) on the Aegis that owns the project, so it applies there at
once; with none running it runs the same operation in this process against the files (same lock,
validation and ledger). Listings read the files (``--json`` on each).

Plugins add ``aegis config <section> …`` verbs by registering a CLI verb named ``config-<section>``
through ``aegis_register_cli`` (``register("config-telegram", help, setup, run)``): it is mounted
under ``aegis config`` instead of at the top level.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path
from typing import Any

__all__ = ["PLUGIN_PREFIX", "run", "setup"]

PLUGIN_PREFIX = "config-"
EDIT_VERBS = {"agent", "queue", "default-agent", "plugin-dir", "set", "unset"}


def setup(config: Any, plugin_cli: dict[str, Any]) -> None:
    """Add the edit verbs (and plugins' ``config-<section>`` verbs) to the ``aegis config`` subparsers."""
    agent = config.add_parser("agent", help="add, remove, list or show agent profiles").add_subparsers(
        dest="action", required=True)
    p = agent.add_parser("add", help="declare an agent profile (the first one becomes default_agent)")
    p.add_argument("name")
    p.add_argument("--provider", required=True, help="driver: claude-code, codex, gemini, scripted, acp, …")
    p.add_argument("--model")
    p.add_argument("--effort")
    p.add_argument("--permission", choices=("read", "write", "full", "auto"))
    p.add_argument("--prompt", metavar="FILE", help="persona / system prompt file")
    p.add_argument("--cwd")
    p.add_argument("--command", dest="agent_command", help="binary and argv prefix, one shell-quoted string")
    p.add_argument("--env", action="append", metavar="KEY[=VALUE]",
                   help="environment for the agent; KEY alone takes its value from this shell (keeps "
                        "secrets out of argv); repeatable")
    p.add_argument("--allow", action="append", metavar="TOOL", help="tool allowed without asking; repeatable")
    p.add_argument("--deny", action="append", metavar="TOOL", help="tool always denied; repeatable")
    p.add_argument("--worktree", action="store_true", default=None, help="each session in its own git worktree")
    p.add_argument("--description")
    agent.add_parser("remove", help="remove a profile (refused while a queue uses it)").add_argument("name")
    agent.add_parser("list", help="every profile").add_argument("--json", action="store_true")
    p = agent.add_parser("show", help="one profile")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")

    queue = config.add_parser("queue", help="add, remove, list or show queues").add_subparsers(
        dest="action", required=True)
    p = queue.add_parser("add", help="declare a queue")
    p.add_argument("name")
    p.add_argument("--agent", required=True, help="the agent profile each task's worker runs")
    p.add_argument("--max-parallel", type=int, default=1)
    p.add_argument("--timeout", help="per-task deadline: 90s, 30m, 1h, none")
    p.add_argument("--worktree", action="store_true", help="each worker in its own git worktree")
    p.add_argument("--budget", action="append", metavar="usd=1.0,window=1h",
                   help="a rolling ceiling (usd= or output_tokens=, window=, optional estimate=); repeatable")
    queue.add_parser("remove", help="remove a queue: it finishes what it admitted").add_argument("name")
    queue.add_parser("list", help="every queue").add_argument("--json", action="store_true")
    p = queue.add_parser("show", help="one queue")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")

    default = config.add_parser("default-agent", help="set the default agent").add_subparsers(
        dest="action", required=True)
    default.add_parser("set", help="the profile bare `aegis spawn` and new tabs use").add_argument("name")

    dirs = config.add_parser("plugin-dir", help="plugin folders: each *.py in them is a plugin").add_subparsers(
        dest="action", required=True)
    dirs.add_parser("add", help="add a plugin folder").add_argument("path")
    dirs.add_parser("remove", help="remove a plugin folder").add_argument("path")
    dirs.add_parser("list", help="the plugin folders").add_argument("--json", action="store_true")

    p = config.add_parser("set", help="set a key path to a value (parsed as YAML/JSON: 3, true, [a, b])")
    p.add_argument("key", metavar="KEY.PATH")
    p.add_argument("value")
    config.add_parser("unset", help="remove a key path").add_argument("key", metavar="KEY.PATH")

    for name, spec in sorted(plugin_cli.items()):
        section = name[len(PLUGIN_PREFIX):] if name.startswith(PLUGIN_PREFIX) else None
        if section and section not in config.choices:
            p = config.add_parser(section, help=spec["help"])
            if spec.get("setup"):
                spec["setup"](p)


def run(args: argparse.Namespace, host: Any) -> int:
    """Run ``aegis config <args.sub> …`` (not ``show``/``validate``). OperationError → 1; a bad config
    raises ConfigError (exit 2 in the caller)."""
    from .operations import OperationError

    if args.sub not in EDIT_VERBS:  # a plugin's config-<section> verb
        return int(host.registry.objects("cli")[PLUGIN_PREFIX + args.sub]["run"](args) or 0)
    try:
        return _run(args, host)
    except OperationError as exc:
        print(f"aegis config: {exc.message}", file=sys.stderr)
        return 1


def _run(args: argparse.Namespace, host: Any) -> int:
    sub, action = args.sub, getattr(args, "action", None)
    if sub == "agent" and action == "add":
        return _edited(_edit(args, host, "aegis_config_add_agent", name=args.name, **_profile(args)))
    if sub == "agent" and action == "remove":
        return _edited(_edit(args, host, "aegis_config_remove_agent", name=args.name))
    if sub == "queue" and action == "add":
        return _edited(_edit(args, host, "aegis_config_add_queue", name=args.name, agent=args.agent,
                             max_parallel=args.max_parallel, timeout=args.timeout, worktree=args.worktree,
                             budgets=[_budget(b) for b in args.budget or []] or None))
    if sub == "queue" and action == "remove":
        return _edited(_edit(args, host, "aegis_config_remove_queue", name=args.name))
    if sub == "default-agent":
        return _edited(_edit(args, host, "aegis_config_set", path="default_agent", value=args.name))
    if sub == "plugin-dir" and action in ("add", "remove"):
        return _edited(_edit(args, host, f"aegis_config_{action}_plugin_dir", path=args.path))
    if sub == "set":
        return _edited(_edit(args, host, "aegis_config_set", path=args.key, value=_parse_value(args.value)))
    if sub == "unset":
        return _edited(_edit(args, host, "aegis_config_unset", path=args.key))
    return _listing(args, host)


# --- edits ---------------------------------------------------------------------------------------------


def _profile(args: argparse.Namespace) -> dict[str, Any]:
    from .operations import OperationError

    env: dict[str, str] | None = None
    for item in args.env or []:
        key, sep, value = item.partition("=")
        if not sep:
            if key not in os.environ:
                raise OperationError(f"--env {key}: not set in this shell (give KEY=VALUE or export it)",
                                     code="bad_argument")
            value = os.environ[key]
        env = {**(env or {}), key: value}
    return {"provider": args.provider, "model": args.model, "effort": args.effort, "permission": args.permission,
            "prompt": args.prompt, "cwd": args.cwd,
            "command": shlex.split(args.agent_command) if args.agent_command else None,
            "env": env, "allow": args.allow, "deny": args.deny, "worktree": args.worktree,
            "description": args.description}


def _budget(text: str) -> dict[str, Any]:
    from .operations import OperationError

    rule: dict[str, Any] = {}
    for part in text.split(","):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise OperationError(f"--budget looks like usd=1.0,window=1h, got {text!r}", code="bad_argument")
        rule[key.strip()] = _parse_value(value.strip())
    if "window" in rule:
        rule["window"] = str(rule["window"])
    return rule


def _parse_value(text: str) -> Any:
    """A command-line value as YAML: ``3`` → 3, ``true`` → True, ``[a, b]`` → list, else the string."""
    from ruamel.yaml import YAML

    from .config import _plain

    try:
        return _plain(YAML(typ="safe").load(text))
    except Exception:  # noqa: BLE001 - not YAML: the plain string
        return text


def _edit(args: argparse.Namespace, host: Any, operation: str, **params: Any) -> Any:
    """``operation`` on the running Aegis, or in this process when none runs (same edit path)."""
    from .client import NotRunning, call
    from .project import resolve_project_dir

    project = resolve_project_dir(Path(args.project).resolve() if args.project else None)
    params = {k: v for k, v in params.items() if v is not None}
    try:
        return call(project / ".aegis" / "state", operation, params)
    except NotRunning:
        pass
    import trio

    from .operations import Caller

    kernel = _kernel(project, host)
    return trio.run(kernel.operations.call, kernel, operation, params, Caller())


def _kernel(project: Path, host: Any) -> Any:
    from .config import load_config
    from .config_sections import schema_of
    from .kernel import Kernel

    return Kernel(project, host, load_config(project, **schema_of(host, project)))


def _edited(result: Any) -> int:
    if not isinstance(result, dict):
        print(json.dumps(result, default=str))
        return 0
    if not result.get("changed"):
        print(f"unchanged: {result['key']} in {result['file']}")
        return 0
    verb = "removed" if result.get("after") is None else ("added" if result.get("before") is None else "set")
    print(f"{verb} {result['key']} in {result['file']}")
    if result.get("default_agent"):
        print(f"default_agent: {result['default_agent']} (the first agent)")
    return 0


# --- listings --------------------------------------------------------------------------------------------


def _listing(args: argparse.Namespace, host: Any) -> int:
    from .operations import OperationError
    from .project import resolve_project_dir

    from .config import load_config
    from .config_sections import schema_of

    project = resolve_project_dir(Path(args.project).resolve() if args.project else None)
    raw = load_config(project, **schema_of(host, project)).raw  # reading creates nothing (no state folder)
    section = {"agent": "agents", "queue": "queues"}.get(args.sub)
    if args.sub == "plugin-dir":
        dirs = list((raw.get("plugins") or {}).get("dirs") or [])
        if args.json:
            print(json.dumps(dirs, indent=2))
        else:
            print("\n".join(dirs) if dirs else "no plugin folders (add one: aegis config plugin-dir add PATH)")
        return 0
    assert section is not None
    entries: dict[str, Any] = dict(raw.get(section) or {})
    if args.action == "show":
        if args.name not in entries:
            raise OperationError(f"unknown {args.sub} '{args.name}' (configured: {', '.join(entries) or 'none'})",
                                 code="not_found")
        print(json.dumps(entries[args.name], indent=2, default=str))
        return 0
    if args.json:
        print(json.dumps(entries if section != "agents" else {"default_agent": raw.get("default_agent"),
                                                              "agents": entries}, indent=2, default=str))
        return 0
    if not entries:
        print(f"no {section} (add one: aegis config {args.sub} add NAME …)")
        return 0
    from .cli import print_table

    if section == "agents":
        default = raw.get("default_agent")
        rows = [("AGENT", "PROVIDER", "MODEL", "EFFORT", "PERMISSION")]
        rows += [(f"{n} *" if n == default else n, str(e.get("provider", "-")), str(e.get("model") or "-"),
                  str(e.get("effort") or "-"), str(e.get("permission") or "write")) for n, e in entries.items()]
    else:
        rows = [("QUEUE", "AGENT", "MAX_PARALLEL", "WORKTREE", "BUDGETS")]
        rows += [(n, str(e.get("agent", "-")), str(e.get("max_parallel", 1)), "yes" if e.get("worktree") else "no",
                  " ".join(_show_budget(b) for b in e.get("budgets") or []) or "-") for n, e in entries.items()]
    print_table(rows)
    return 0


def _show_budget(rule: Any) -> str:
    if not isinstance(rule, dict):
        return str(rule)
    limit = f"${rule['usd']}" if rule.get("usd") is not None else f"{rule.get('output_tokens')} tok"
    return f"{limit}/{rule.get('window')}"

