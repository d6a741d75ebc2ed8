"""Directive parsing for the scripted agent (stdlib only; see README.md for the syntax).

A directive is a line whose first word is ``@<name>`` for a known name; it may be anywhere in the
prompt (envelope header lines such as ``✉ from agent:x · ts`` are just other lines). Lines that are not
directives are ignored when the prompt has at least one directive.
"""

from __future__ import annotations

import json
import re

NAMES = ("reply", "think", "call", "slow", "fail", "usage", "context", "sleep", "read", "write", "ask",
         "plan", "stop")
_LINE = re.compile(r"^@(" + "|".join(NAMES) + r")(?:\s+(.*))?$")
ENVELOPE_MARK = "✉"


class DirectiveError(ValueError):
    """A directive with bad arguments (the agent replies with the message instead of running it)."""


def parse(texts: list[str]) -> list[tuple[str, str]]:
    """``(name, argument text)`` for every directive line of the prompt's text blocks, in order."""
    out = []
    for text in texts:
        for line in text.splitlines():
            m = _LINE.match(line.strip())
            if m:
                out.append((m.group(1), (m.group(2) or "").strip()))
    return out


def first_line(texts: list[str]) -> str:
    """The first non-empty, non-envelope-header line of the last text block (the user's message)."""
    if not texts:
        return ""
    for line in texts[-1].splitlines():
        line = line.strip()
        if line and not line.startswith(ENVELOPE_MARK):
            return line
    return ""


def unescape(text: str) -> str:
    r"""``\n`` → newline, ``\t`` → tab, ``\\`` → backslash (so one directive line can carry several lines)."""
    if "\\" not in text:
        return text
    return re.sub(r"\\([nt\\])", lambda m: {"n": "\n", "t": "\t", "\\": "\\"}[m.group(1)], text)


def split_call(arg: str) -> tuple[str, dict]:
    """``<tool> [json-object]`` → (tool, arguments)."""
    parts = arg.split(None, 1)
    if not parts:
        raise DirectiveError("@call needs a tool name: @call <tool> {json args}")
    tool = parts[0]
    args: object = {}
    if len(parts) > 1:
        try:
            args = json.loads(parts[1])
        except ValueError as exc:
            raise DirectiveError(f"@call {tool}: arguments are not JSON: {exc}") from None
    if not isinstance(args, dict):
        raise DirectiveError(f"@call {tool}: arguments must be a JSON object")
    return tool, args


def keyvalues(arg: str, allowed: dict[str, type]) -> dict[str, float | int]:
    """``k=v k=v`` with numeric values, keys from ``allowed`` (name → int|float)."""
    out: dict[str, float | int] = {}
    for item in arg.split():
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            raise DirectiveError(f"unknown or malformed item {item!r} (allowed: {', '.join(allowed)})")
        try:
            out[key] = allowed[key](value)
        except ValueError:
            raise DirectiveError(f"{key} must be a number, got {value!r}") from None
    return out


def number(arg: str, name: str, default: float | None = None) -> float:
    word = arg.split()[0] if arg.split() else ""
    if not word:
        if default is None:
            raise DirectiveError(f"@{name} needs a number")
        return default
    try:
        value = float(word)
    except ValueError:
        raise DirectiveError(f"@{name} needs a number, got {word!r}") from None
    if value < 0:
        raise DirectiveError(f"@{name} needs a non-negative number")
    return value
