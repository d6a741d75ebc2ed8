"""Secrets never leave the process in text: one redaction helper for errors, logs and transcripts.

A plugin that hands out a secret (the MCP plane's per-session tokens) registers it with
:func:`register_secret` while it is live and forgets it with :func:`forget_secret`. :func:`redact`
replaces every registered secret, and anything shaped like a secret MCP path (``/mcp/<token>``) or a
bearer credential even when it is not (or no longer) registered, with :data:`REDACTED`.

Used by the kernel for: the log file (:class:`RedactingFormatter` on ``aegis.log``), session error
texts (``session.error``, ``AgentError`` messages and stderr tails) and every transcript record
(:func:`redact_event`). Plugins use :func:`redact` for any text of theirs that may quote one.

Contract: :func:`redact` is pure and total (never raises, returns its input unchanged — the same
object — when nothing matched), cheap when nothing matches (a substring test per registered
secret is folded into one compiled pattern, rebuilt only when the registry changes).
"""

from __future__ import annotations

import logging
import re
from typing import Any, TypeVar

import attrs

__all__ = ["REDACTED", "RedactingFormatter", "forget_secret", "live_secrets", "redact", "redact_event",
           "register_secret"]

REDACTED = "«redacted»"

#: ``/mcp/<token>`` (a token is at least 8 URL-safe characters) and ``Bearer <credential>``
_SHAPES = re.compile(r"(?<=/mcp/)[A-Za-z0-9_\-]{8,}|(?<=Bearer )[A-Za-z0-9_\-.~+/=]{8,}")
_MIN_SECRET = 8  # shorter strings are not registered: replacing them would mangle ordinary text

_URLSAFE = "A-Za-z0-9_\\-"
_URLSAFE_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-")
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None

T = TypeVar("T")


def register_secret(secret: str) -> None:
    """Redact ``secret`` from now on (until :func:`forget_secret`). Too-short strings are ignored."""
    global _pattern
    if len(secret) >= _MIN_SECRET and secret not in _secrets:
        _secrets.add(secret)
        _pattern = None


def forget_secret(secret: str) -> None:
    """Stop tracking ``secret`` (revoked): its ``/mcp/<token>`` shape is still redacted."""
    global _pattern
    if secret in _secrets:
        _secrets.discard(secret)
        _pattern = None


def live_secrets() -> frozenset[str]:
    """The secrets registered now (for tests and diagnostics; never print them)."""
    return frozenset(_secrets)


def _compiled() -> re.Pattern[str] | None:
    """Runs of the secrets' characters at least as long as the shortest secret (linear scan: an
    alternation of many secrets costs time per secret on every character)."""
    global _pattern
    if _pattern is None and _secrets:
        chars = {c for s in _secrets for c in s}
        # URL-safe tokens (the usual case) share one character class: the pattern text stays the same
        # as tokens come and go, so ``re``'s own cache serves it instead of a compile per spawn (measured:
        # 280 compiles in a 200-task queue run, ~1 ms of kernel CPU per task, before this)
        klass = _URLSAFE if chars <= _URLSAFE_CHARS else re.escape("".join(sorted(chars)))
        shortest = min(len(s) for s in _secrets)
        _pattern = re.compile(f"[{klass}]{{{shortest},}}")
    return _pattern


def _secret_run(match: re.Match[str]) -> str:
    run = match.group()
    if run in _secrets:
        return REDACTED
    for secret in sorted(_secrets, key=len, reverse=True):  # longest first: a secret holding another goes whole
        if secret in run:
            run = run.replace(secret, REDACTED)
    return run


def redact(text: T) -> T:
    """``text`` with every live secret and every ``/mcp/<token>`` / ``Bearer <x>`` replaced by
    :data:`REDACTED`. Anything that is not a ``str`` is returned as is."""
    if not isinstance(text, str) or not text:
        return text
    out: str = text
    pattern = _compiled()
    if pattern is not None:
        out = pattern.sub(_secret_run, out)
    if "/mcp/" in out or "Bearer " in out:
        out = _SHAPES.sub(REDACTED, out)
    return out if out != text else text  # type: ignore[return-value]


def _redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if attrs.has(type(value)):
        return redact_event(value)
    if isinstance(value, dict):
        new = {k: _redact_value(v) for k, v in value.items()}
        return value if all(new[k] is value[k] for k in value) else new
    if isinstance(value, (list, tuple)):
        items = [_redact_value(v) for v in value]
        return value if all(a is b for a, b in zip(items, value)) else type(value)(items)
    return value


def redact_event(event: T) -> T:
    """An attrs event (or a plain dict/list/str) with secrets redacted from every text field,
    nested containers and nested attrs records (a tool result's diff) included. Returns the same
    object when nothing needed redacting."""
    if not attrs.has(type(event)):
        return _redact_value(event)  # type: ignore[no-any-return]
    changes: dict[str, Any] = {}
    record: Any = event
    for f in attrs.fields(type(record)):
        if not f.init:
            continue
        value = getattr(record, f.name)
        new = _redact_value(value)
        if new is not value:
            changes[f.alias or f.name.lstrip("_")] = new
    return attrs.evolve(record, **changes) if changes else event


class RedactingFormatter(logging.Formatter):
    """A ``logging.Formatter`` whose output (message, arguments and traceback) is :func:`redact`-ed."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))
