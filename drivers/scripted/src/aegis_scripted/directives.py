"""Directive parsing for the scripted agent (stdlib only; see README.md for the syntax).

A directive is a line whose first word is ``@<name>`` for a known name; it may be anywhere in the
prompt (envelope header lines such as ``✉ from agent:x · ts`` are just other lines). Lines that are not
directives are ignored when the prompt has at least one directive.
"""

from __future__ import annotations

NAMES = ("reply", "think", "call", "slow", "fail", "usage", "context", "sleep", "read", "write", "ask",
         "plan", "stop")
ENVELOPE_MARK = "✉"
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\"}


class DirectiveError(ValueError):
    """A directive with bad arguments (the agent replies with the message instead of running it)."""


def parse(texts: list[str]) -> list[tuple[str, str]]:
    """``(name, argument text)`` for every directive line of the prompt's text blocks, in order."""
    out = []
    for text in texts:
        for line in text.splitlines():
            line = line.strip()
            if not line.startswith("@"):
                continue
            parts = line[1:].split(None, 1)  # "@name", then whitespace and the argument
            if parts and parts[0] in NAMES and line[1:].startswith(parts[0]):
                out.append((parts[0], parts[1].strip() if len(parts) > 1 else ""))
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
    out, i, end = [], 0, len(text)
    while i < end:
        char = text[i]
        if char == "\\" and i + 1 < end and text[i + 1] in _ESCAPES:
            out.append(_ESCAPES[text[i + 1]])
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def split_call(arg: str) -> tuple[str, dict]:
    """``<tool> [json-object]`` → (tool, arguments)."""
    parts = arg.split(None, 1)
    if not parts:
        raise DirectiveError("@call needs a tool name: @call <tool> {json args}")
    tool = parts[0]
    args: object = {}
    if len(parts) > 1:
        from .wire import loads

        try:
            args = loads(parts[1])
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
