"""JSON for the scripted agent's wire without importing :mod:`json`.

The agent starts once per queue task, so its start-up is a floor under queue throughput. ``json``'s
decoder imports ``re`` (with ``enum``, ``functools``…), about half the agent's own start-up; the C
accelerator ``_json`` that ``json`` itself uses needs none of that. :func:`loads` and :func:`dumps`
behave as ``json.loads`` and ``json.dumps(ensure_ascii=False, separators=(",", ":"))``; where
``_json`` is missing or its API differs, they *are* those functions.
"""

from __future__ import annotations

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


def _no_default(obj: object) -> object:
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


class _ScanContext:
    """The attributes ``_json.make_scanner`` reads (those of a default ``json.JSONDecoder``)."""

    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = float  # "NaN", "Infinity", "-Infinity"


def _accelerated() -> tuple[Callable[[str | bytes], Any], Callable[[Any], str]]:
    import _json

    scan = _json.make_scanner(_ScanContext())  # type: ignore[arg-type]  # stub: a JSONDecoder; its attributes do
    encode = _json.make_encoder(None, _no_default, _json.encode_basestring, None, ":", ",", False, False, True)

    def loads(text: str | bytes) -> Any:
        if isinstance(text, (bytes, bytearray)):
            text = text.decode("utf-8")
        text = text.strip(" \t\r\n")
        try:
            obj, end = scan(text, 0)
        except StopIteration:
            raise ValueError("Expecting value: line 1 column 1 (char 0)") from None
        if end != len(text):
            raise ValueError(f"Extra data: char {end}")
        return obj

    def dumps(obj: Any) -> str:
        return "".join(encode(obj, 0))

    probe = {"a": [1, 2.5, "é\n", None, True]}
    if loads(dumps(probe)) != probe or dumps(probe) != '{"a":[1,2.5,"é\\n",null,true]}':
        raise ImportError("_json behaves differently on this Python")
    return loads, dumps


def _portable() -> tuple[Callable[[str | bytes], Any], Callable[[Any], str]]:
    import json

    return json.loads, json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


try:
    loads, dumps = _accelerated()
except (ImportError, AttributeError, TypeError, ValueError):  # pragma: no cover - not CPython 3.11–3.13
    loads, dumps = _portable()
