"""JSON in and out of the MCP plane, safe for any input an agent (or anyone on loopback) may send.

:func:`loads` turns a request body into Python values or raises :class:`BadJson` carrying the
JSON-RPC error to answer; it never raises anything else. It refuses, besides malformed JSON:

* a body that is not UTF-8 (``json.loads`` on bytes would let encoded surrogates through);
* nesting deeper than :data:`MAX_DEPTH` arrays/objects (``json.loads`` raises ``RecursionError`` far
  below 50,000 levels, and values a few hundred levels deep exhaust the stack later, in schema
  validation or when written to a ledger);
* a string or key holding a lone UTF-16 surrogate (``"\\ud800"``): valid JSON text, but not Unicode —
  it cannot be written as UTF-8 to a ledger, a transcript or an inbox.

:func:`dumps` serializes a response and never fails on text: a lone surrogate in a value (a handler
that read a file with ``surrogateescape``, say) is written as U+FFFD. It still raises ``ValueError``
/ ``RecursionError`` for values that are not JSON at all (cycles, absurd depth): the caller answers
an internal error then.
"""

from __future__ import annotations

import json
import re
from typing import Any

PARSE_ERROR, INVALID_REQUEST = -32700, -32600

#: Deepest nesting of arrays/objects accepted in a request (tool arguments are shallow in practice).
MAX_DEPTH = 64

_SURROGATE = re.compile("[\ud800-\udfff]")
_MAYBE_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=str).encode


class BadJson(ValueError):
    """A request body the plane refuses; ``code`` and ``message`` are the JSON-RPC error to answer,
    ``id`` the request's id when it could be read."""

    def __init__(self, code: int, message: str, id: Any = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.id = id


def loads(body: bytes) -> Any:
    """The JSON value of ``body``; raises :class:`BadJson` (only) when the plane must refuse it."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadJson(PARSE_ERROR, f"Parse error: the body is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    try:
        value = json.loads(text)
    except RecursionError:
        raise BadJson(PARSE_ERROR, f"Parse error: JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise BadJson(PARSE_ERROR, f"Parse error: {exc}") from None
    deep = text.count("[") + text.count("{") > MAX_DEPTH  # cheap bound: only then walk for depth
    maybe_surrogate = _MAYBE_SURROGATE_ESCAPE.search(text) is not None
    if deep or maybe_surrogate:
        problem = _check(value)
        if problem:
            id_ = value.get("id") if isinstance(value, dict) and problem != "depth" else None
            if not isinstance(id_, (str, int)) or isinstance(id_, bool) or _SURROGATE.search(str(id_)):
                id_ = None
            if problem == "depth":
                raise BadJson(PARSE_ERROR, f"Parse error: JSON nested deeper than {MAX_DEPTH} levels")
            raise BadJson(INVALID_REQUEST, "Invalid Request: a string holds a lone UTF-16 surrogate "
                                           "(not Unicode); send valid UTF-8 text", id_)
    return value


def _check(value: Any) -> str | None:
    """``"depth"``, ``"surrogate"`` or None, walking ``value`` without recursion."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return "surrogate"
        elif isinstance(item, dict):
            if depth > MAX_DEPTH:
                return "depth"
            for key, child in item.items():
                if _SURROGATE.search(key):
                    return "surrogate"
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            if depth > MAX_DEPTH:
                return "depth"
            stack.extend((child, depth + 1) for child in item)
    return None


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON; lone surrogates in text become U+FFFD (never raises for them)."""
    text = _encode(value)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text).encode()


def clean_text(text: str) -> str:
    """``text`` with every lone surrogate replaced by U+FFFD (safe to encode as UTF-8)."""
    return _SURROGATE.sub("\ufffd", text)
