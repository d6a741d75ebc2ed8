"""``aegis workflow list | run NAME [--arg key=JSON …] | status RUN | cancel RUN | logs RUN | answer RUN TEXT``.

Verbs talk to the running Aegis over its control socket (caller = the user). ``run`` without a running
Aegis runs the workflow in a local kernel of this project (owning the project until it ends) and
prints its result. With a running Aegis it prints each step as the run reaches it, then the result;
Ctrl+C detaches (the run goes on) unless ``--cancel-on-interrupt``. ``--json`` prints the
operation's answer as JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any


def setup(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="workflow_cmd", metavar="VERB", required=True)
    p = sub.add_parser("list", help="the workflows registered, recent runs, files that failed to load")
    p.add_argument("--json", action="store_true")
    p = sub.add_parser("run", help="run a workflow and print its result")
    p.add_argument("name")
    p.add_argument("--arg", action="append", default=[], metavar="KEY=JSON",
                   help="an argument; the value is JSON (a bare word is taken as a string)")
    p.add_argument("--detach", action="store_true", help="print the run id and return at once")
    p.add_argument("--cancel-on-interrupt", action="store_true", help="Ctrl+C cancels the run (default: detach)")
    p.add_argument("--timeout", type=float, default=None, help="seconds to wait for the result (default: no limit)")
    p.add_argument("--json", action="store_true")
    for verb, text in (("status", "one run: status, step, elapsed, awaiting a person"), ("cancel", "cancel a run"),
                       ("logs", "a run's journal: every step and its result")):
        p = sub.add_parser(verb, help=text)
        p.add_argument("run")
        p.add_argument("--json", action="store_true")
    p = sub.add_parser("answer", help="answer the question a run asked (ask_human)")
    p.add_argument("run")
    p.add_argument("text")
    p.add_argument("--json", action="store_true")


def parse_args(pairs: list[str]) -> dict[str, Any]:
    """``key=JSON`` pairs → kwargs (a value that is not JSON is a string)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key:
            raise ValueError(f"--arg {pair!r}: expected KEY=JSON")
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def run(args: argparse.Namespace) -> int:
    from aegis_kernel import ControlError
    from aegis_kernel.client import NotRunning, call_from_cli, print_out

    verb = args.workflow_cmd
    try:
        if verb == "run":
            return _run(args)
        if verb == "list":
            return print_out(args, call_from_cli(args, "aegis_workflow_list"), _print_list)
        if verb == "status":
            return print_out(args, call_from_cli(args, "aegis_workflow_status", run_id=args.run), _print_status)
        if verb == "cancel":
            return print_out(args, call_from_cli(args, "aegis_workflow_cancel", _timeout=60, run_id=args.run),
                        lambda o: print(f"run#{o['run_id']} {'cancelled' if o['cancelled'] else o['status']}"))
        if verb == "logs":
            return print_out(args, call_from_cli(args, "aegis_workflow_logs", run_id=args.run), _print_logs)
        if verb == "answer":
            return print_out(args, call_from_cli(args, "aegis_workflow_answer", run_id=args.run, text=args.text),
                        lambda o: print(f"run#{o['run_id']}: answered {o['answer']!r}"))
    except NotRunning as exc:
        if verb in ("logs", "status"):
            return _offline(args, verb)
        print(f"aegis workflow {verb}: {exc}", file=sys.stderr)
        return 2
    except ControlError as exc:
        print(f"aegis workflow {verb}: {exc}", file=sys.stderr)
        return 1
    return 2


# --- run ---------------------------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    from aegis_kernel.client import NotRunning, call_from_cli, print_out

    try:
        kwargs = parse_args(args.arg)
    except ValueError as exc:
        print(f"aegis workflow run: {exc}", file=sys.stderr)
        return 2
    try:
        started = call_from_cli(args, "aegis_run_workflow", name=args.name, kwargs=kwargs, callback=False)
    except NotRunning:
        return _run_local(args, kwargs)
    run_id = started["run_id"]
    if args.detach:
        return print_out(args, started, lambda o: print(f"run#{o['run_id']} started"))
    if not args.json:
        print(f"run#{run_id} started ({args.name})", file=sys.stderr)
    try:
        info = _follow(args, run_id)
    except KeyboardInterrupt:
        if args.cancel_on_interrupt:
            call_from_cli(args, "aegis_workflow_cancel", _timeout=60, run_id=run_id)
            print(f"\nrun#{run_id} cancelled", file=sys.stderr)
        else:
            print(f"\ndetached: run#{run_id} goes on (aegis workflow status {run_id})", file=sys.stderr)
        return 130
    return _result(args, info)


def _follow(args: argparse.Namespace, run_id: str) -> dict[str, Any]:
    """Print each step the run reaches until it ends; its final status."""
    from aegis_kernel.client import call_from_cli

    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    seen = ""
    while True:
        left = 2.0 if deadline is None else max(0.0, min(2.0, deadline - time.monotonic()))
        info = call_from_cli(args, "aegis_workflow_wait", _timeout=left + 30, run_id=run_id, timeout_s=left)
        if info["status"] != "running" or (deadline is not None and time.monotonic() >= deadline):
            return info
        step = info.get("step") or ""
        if step != seen and not args.json:
            print(f"  · {step}", file=sys.stderr)
            ask = info.get("awaiting_human")
            if ask:
                print(f"  ? {ask['question']} — answer: aegis workflow answer {run_id} TEXT", file=sys.stderr)
            seen = step


def _result(args: argparse.Namespace, info: dict[str, Any]) -> int:
    from aegis_kernel.client import print_json

    if args.json:
        print_json(info)
    elif info["status"] == "ok":
        value = info.get("result")
        print(value if isinstance(value, str) else json.dumps(value, indent=2, ensure_ascii=False))
    else:
        print(f"run#{info['run_id']} {info['status']}: {info.get('error') or ''}", file=sys.stderr)
    return 0 if info["status"] == "ok" else 1


def _run_local(args: argparse.Namespace, kwargs: dict[str, Any]) -> int:
    import trio

    from aegis_kernel import ProjectOwned, acquire_owner, open_kernel, resolve_project_dir

    from .errors import WorkflowError
    from .runtime import WorkflowRuntime, wait

    project = resolve_project_dir(getattr(args, "project", None))

    async def main() -> dict[str, Any]:
        async with open_kernel(project) as kernel:
            rt = kernel.service(WorkflowRuntime)
            run = rt.start_run(args.name, kwargs, callback=False)
            await wait(run, args.timeout)
            return rt.info(run)

    try:
        with acquire_owner(project / ".aegis" / "state", "local", project):
            info = trio.run(main)
    except ProjectOwned as exc:
        print(f"aegis workflow run: {exc}", file=sys.stderr)
        return 1
    except WorkflowError as exc:
        print(f"aegis workflow run: {exc}", file=sys.stderr)
        return 2
    return _result(args, info)


def _offline(args: argparse.Namespace, verb: str) -> int:
    """``logs`` / ``status`` without a running Aegis: read the run's journal."""
    from aegis_kernel.client import print_out, state_dir_of

    from .runlog import FOLDER, RunLog

    path = state_dir_of(args).joinpath(*FOLDER) / f"{args.run}.jsonl"
    if "/" in args.run or not path.is_file():
        print(f"aegis workflow {verb}: no workflow run '{args.run}' in this project", file=sys.stderr)
        return 1
    runlog = RunLog.open(path)
    if verb == "logs":
        return print_out(args, {"run_id": args.run, "records": runlog.records}, _print_logs)
    started, fin = runlog.started or {}, runlog.finished
    last = next((r for r in reversed(runlog.records) if r.get("event") in ("step", "begin")), None)
    info = {"run_id": args.run, "name": started.get("name"), "status": fin.get("status") if fin else "interrupted",
            "step": f"{last['step']} {last['verb']}" if last else "", "elapsed_s": round(
                float((fin or {}).get("finished_at") or started.get("started_at") or 0)
                - float(started.get("started_at") or 0), 1),
            "awaiting_human": None, "result": fin.get("result") if fin else None,
            "error": fin.get("error") if fin else "no Aegis is running: the run resumes when one starts"}
    return print_out(args, info, _print_status)


# --- printing ----------------------------------------------------------------------------------------


def _print_list(out: dict[str, Any]) -> None:
    for wf in out["workflows"]:
        params = ", ".join(p["name"] + ("" if p["required"] else "?") for p in wf["params"])
        print(f"{wf['name']:<20} ({params})  {wf['description']}  [{wf['source']}]")
    if out["runs"]:
        print("\nruns:")
        for r in out["runs"]:
            _print_status(r, indent="  ")
    for problem in out.get("problems") or []:
        print(f"problem: {problem}", file=sys.stderr)


def _print_status(info: dict[str, Any], indent: str = "") -> None:
    line = f"{indent}run#{info['run_id']} {info['name']} {info['status']} · {info['elapsed_s']}s"
    if info.get("step"):
        line += f" · {info['step']}"
    print(line)
    ask = info.get("awaiting_human")
    if ask:
        opts = f" [{' / '.join(ask['options'])}]" if ask.get("options") else ""
        print(f"{indent}  ? awaiting: {ask['question']}{opts}")
    if info["status"] != "running" and not indent:
        print(info.get("error") or info.get("result"))


def _print_logs(out: dict[str, Any]) -> None:
    for rec in out["records"]:
        kind = rec.get("event")
        at = rec.get("at", "")
        if kind == "step":
            what = f"error: {rec['error'].get('message')}" if "error" in rec else _short(rec.get("result"))
            print(f"{at} step {rec['step']} {rec['verb']} {rec.get('desc', '')!r} → {what}")
        elif kind == "begin":
            print(f"{at} step {rec['step']} {rec['verb']} {rec.get('desc', '')!r} …")
        else:
            rest = {k: v for k, v in rec.items() if k not in ("v", "event", "run_id", "at")}
            print(f"{at} {kind} {_short(rest)}")


def _short(value: Any, width: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"
