"""aegis_scripted.wire: the agent's JSON, equal to the json module's, without importing it at start-up."""

from __future__ import annotations

import json

import pytest
from aegis_scripted.wire import dumps, loads

SAMPLES = [
    {"jsonrpc": "2.0", "id": 7, "method": "session/prompt",
     "params": {"sessionId": "s", "prompt": [{"type": "text", "text": "héllo ✉ \"q\" \\ \n\t\u0001"}]}},
    [1, -2, 3.25, 1e300, 2**70, True, False, None, "", [], {}],
    "just a string",
    0,
]


@pytest.mark.parametrize("value", SAMPLES)
def test_same_text_and_values_as_json(value):
    text = dumps(value)
    assert text == json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    assert loads(text) == value
    assert loads(text.encode()) == value
    assert loads(f"  {text}\r\n") == value


@pytest.mark.parametrize("bad", ["", "   ", "{", '{"a": }', "[1] [2]", "nul", '"unterminated', '"ctl\u0001"'])
def test_malformed_text_raises_value_error_like_json(bad):
    with pytest.raises(ValueError):
        json.loads(bad)
    with pytest.raises(ValueError):
        loads(bad)


def test_unserialisable_values_raise_type_error():
    with pytest.raises(TypeError, match="set"):
        dumps({"x": {1, 2}})


def test_constants_parse_as_json_does():
    assert loads("[NaN, Infinity, -Infinity]")[1:] == [float("inf"), float("-inf")]
