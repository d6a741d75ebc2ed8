"""Reducers: turn a broadcast's replies into one result. Built-ins (registered by this plugin through
its own hook, like any third party's): ``concat``, ``join_by_handle``, ``last_wins``, ``majority_vote``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from attrs import frozen


@frozen
class Reply:
    """One member's answer to a broadcast: its whole final message of the turn that delivered it."""

    handle: str
    text: str
    status: str = "ok"
    turn_s: float | None = None
    usage: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "status": self.status, "turn_s": self.turn_s, "usage": self.usage}


class ReducerError(Exception):
    """An unknown reducer, or one that raised (the message names it)."""


def concat(replies: Sequence[Reply]) -> str:
    """Every reply, headed by its member, in the order they answered."""
    return "\n\n".join(f"## {r.handle}\n{r.text}" for r in replies)


def join_by_handle(replies: Sequence[Reply]) -> dict[str, str]:
    """``{handle: text}`` for every member that answered."""
    return {r.handle: r.text for r in replies}


def last_wins(replies: Sequence[Reply]) -> str | None:
    """The last reply to arrive."""
    return replies[-1].text if replies else None


def normalise(text: str) -> str:
    """Case-folded, whitespace collapsed, trailing punctuation dropped: how majority_vote compares."""
    return re.sub(r"\s+", " ", text).strip().rstrip(".!").casefold()


def majority_vote(replies: Sequence[Reply]) -> dict[str, Any] | None:
    """The most frequent answer (normalised text; ties go to the first seen):
    ``{"answer": first text of the winning form, "votes": n, "of": total}``."""
    counts: dict[str, int] = {}
    first: dict[str, str] = {}
    for r in replies:
        key = normalise(r.text)
        counts[key] = counts.get(key, 0) + 1
        first.setdefault(key, r.text)
    if not counts:
        return None
    best = max(counts, key=lambda k: counts[k])  # max keeps the first of equals: insertion order
    return {"answer": first[best], "votes": counts[best], "of": len(replies)}


BUILTINS = {"concat": concat, "join_by_handle": join_by_handle, "last_wins": last_wins,
            "majority_vote": majority_vote}


def registered(kernel: Any) -> dict[str, Any]:
    """Reducer name → entry (``{"reduce", "description"}``) from every plugin's ``aegis_register_reducers``."""
    return kernel.plugins.registry.objects("reducers")


def reduce(kernel: Any, name: str, replies: Sequence[Reply]) -> Any:
    """Run reducer ``name``; raises :class:`ReducerError` naming it when it is unknown or raises."""
    entries = registered(kernel)
    entry = entries.get(name)
    if entry is None:
        raise ReducerError(f"unknown reducer {name!r} (known: {', '.join(sorted(entries)) or 'none'})")
    try:
        return entry["reduce"](list(replies))
    except Exception as exc:  # noqa: BLE001 - a third party's bug is reported, never fatal
        raise ReducerError(f"reducer {name!r} failed: {type(exc).__name__}: {exc}") from None
