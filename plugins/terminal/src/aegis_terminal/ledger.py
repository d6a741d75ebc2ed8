"""A terminal's ledger ``.aegis/state/terminals/<name>/ledger.jsonl``: record shapes, replay fold, rendering.

Every record is ``{"v": 1, "event": <kind>, "terminal": <name>, "at": <ISO UTC>, …}`` (a kernel
:class:`~aegis_kernel.Journal` keyed by ``terminal``; replay tolerates a torn last line):

- ``spawned``      ``{shell, cwd, by, pid}`` — a (re-)spawn of the shell;
- ``started``      ``{seq, cmd, who}`` — a command began (``C`` marker);
- ``finished``     ``{seq, cmd, who, started, finished, duration_s, exit, status, output, bytes, bytes_cut}``
  — ``status`` is ``ok`` (exit known), ``shell_exited`` (the shell ended while it ran),
  ``closed`` (the terminal was closed while it ran) or ``killed_by_restart`` (Aegis stopped while it
  ran; written by the next start); ``output`` is the plain text, capped to head + tail with
  ``bytes_cut`` bytes cut between them (``…[N bytes cut]…``);
- ``subscribed`` / ``unsubscribed`` ``{handle}``;
- ``closed``       ``{by, exit}`` — the shell was closed (the terminal can be re-spawned: ``seq`` goes on).

:func:`fold` gives ``{seq, running, commands, subscribers, open, shell, cwd}`` where ``running`` maps
the seq of each ``started`` without ``finished`` to its record.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aegis_kernel import fold as journal_fold

KEY = "terminal"
HEAD = 4096
TAIL = 12288
TAIL_LINES = 12


def cap(text: str, head: int = HEAD, tail: int = TAIL) -> tuple[str, int]:
    """``text`` capped to its first ``head`` and last ``tail`` bytes (UTF-8); ``(text, bytes_cut)``."""
    data = text.encode()
    if len(data) <= head + tail:
        return text, 0
    cut = len(data) - head - tail
    first = data[:head].decode("utf-8", "ignore")
    last = data[-tail:].decode("utf-8", "ignore")
    return f"{first}\n…[{cut} bytes cut]…\n{last}", cut


def apply(state: dict[str, Any] | None, rec: dict[str, Any]) -> dict[str, Any] | None:
    """One record's effect on the terminal's state."""
    if state is None:
        state = {"terminal": rec[KEY], "seq": 0, "running": {}, "commands": 0, "subscribers": [], "open": False,
                 "shell": None, "cwd": None}
    kind = rec.get("event")
    seq = rec.get("seq")
    if kind == "spawned":
        state.update(open=True, shell=rec.get("shell"), cwd=rec.get("cwd"))
    elif kind == "closed":
        state["open"] = False
    elif kind == "started" and isinstance(seq, int):
        state["seq"] = max(state["seq"], seq)
        state["running"][seq] = rec
    elif kind == "finished" and isinstance(seq, int):
        state["seq"] = max(state["seq"], seq)
        state["running"].pop(seq, None)
        state["commands"] += 1
    elif kind == "subscribed" and isinstance(rec.get("handle"), str):
        if rec["handle"] not in state["subscribers"]:
            state["subscribers"].append(rec["handle"])
    elif kind == "unsubscribed" and isinstance(rec.get("handle"), str):
        if rec["handle"] in state["subscribers"]:
            state["subscribers"].remove(rec["handle"])
    return state


def fold(records: Iterable[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return journal_fold(records, apply, key=KEY)


def finished(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``finished`` records, in ledger order."""
    return [r for r in records if r.get("event") == "finished"]


def tail_lines(text: str, n: int = TAIL_LINES) -> str:
    lines = text.rstrip("\n").split("\n")
    return "\n".join(lines[-n:])


def render(rec: dict[str, Any]) -> str:
    """A subscriber's wake-up body::

        $ pytest -q · run by agent:builder
        exit 0 · 4.20s
        ──
        <the output's last lines>
    """
    exit_ = rec.get("exit")
    status = rec.get("status", "ok")
    outcome = f"exit {exit_}" if exit_ is not None else status.replace("_", " ")
    if exit_ is not None and status not in ("ok",):
        outcome += f" ({status.replace('_', ' ')})"
    first, *more = str(rec.get("cmd", "")).split("\n")
    cmd = first + (" …" if more else "")
    body = f"$ {cmd} · run by {rec.get('who')}\n{outcome} · {float(rec.get('duration_s') or 0):.2f}s\n──"
    out = tail_lines(rec.get("output") or "")
    return body + ("\n" + out if out else "")
