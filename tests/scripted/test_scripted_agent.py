"""The scripted agent on its own: directive parsing and the raw ACP wire (stdlib subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from aegis_scripted import directives as dv
from aegis_scripted.driver import agent_command


def test_parse_directives_anywhere_in_order():
    texts = ["primer text\n@reply from the primer", "✉ from agent:x · 12:00:00Z\n  @reply a b  \n@alice hi\n"
             "not @reply this\n@call echo {\"x\": 1}\n@slow 3\n@replying no"]
    assert dv.parse(texts) == [("reply", "from the primer"), ("reply", "a b"), ("call", 'echo {"x": 1}'),
                               ("slow", "3")]


@pytest.mark.parametrize("texts,line", [
    (["hello\nworld"], "hello"),
    (["primer", "\n\n  question?  \nmore"], "question?"),
    (["✉ from agent:x · 12:00:00Z\nplease review\n\n✉ from user · t\nsecond"], "please review"),
    ([], ""),
    (["✉ only a header"], ""),
])
def test_first_line(texts, line):
    assert dv.first_line(texts) == line


@pytest.mark.parametrize("line,want", [
    ("@", []), ("@ reply x", []), ("@reply", [("reply", "")]), ("@reply\tx  y ", [("reply", "x  y")]),
    ("@replyx", []), ("  @stop   max_tokens", [("stop", "max_tokens")]),
])
def test_parse_directive_edges(line, want):
    assert dv.parse([line]) == want


def test_helpers():
    assert dv.unescape(r"a\nb\tc\\n") == "a\nb\tc\\n"
    assert dv.unescape("no escapes") == "no escapes"
    assert dv.unescape("trailing\\") == "trailing\\" and dv.unescape(r"\x") == r"\x"
    assert dv.split_call('echo {"text": "hi"}') == ("echo", {"text": "hi"})
    assert dv.split_call("ping") == ("ping", {})
    with pytest.raises(dv.DirectiveError, match="not JSON"):
        dv.split_call("echo {bad")
    with pytest.raises(dv.DirectiveError, match="tool name"):
        dv.split_call("")
    assert dv.keyvalues("in=1 out=2", {"in": int, "out": int}) == {"in": 1, "out": 2}
    with pytest.raises(dv.DirectiveError, match="unknown or malformed"):
        dv.keyvalues("bogus=1", {"in": int})
    with pytest.raises(dv.DirectiveError, match="must be a number"):
        dv.keyvalues("in=x", {"in": int})
    assert dv.number("2.5 rest", "sleep") == 2.5
    assert dv.number("", "slow", 50) == 50
    with pytest.raises(dv.DirectiveError):
        dv.number("-1", "sleep")


def _wire(lines: list[dict | str], tmp_path, argv: tuple[str, ...] = agent_command()) -> list[dict]:
    """Send requests to a fresh agent (started as the driver starts it), close stdin, return its output."""
    data = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    env = {**os.environ, "AEGIS_SCRIPTED_STATE": str(tmp_path / "state")}
    done = subprocess.run(argv, input=data.encode(), capture_output=True, env=env, timeout=30, check=True)
    return [json.loads(x) for x in done.stdout.splitlines()]


def test_python_dash_m_runs_the_same_agent(tmp_path):
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}}
    out = _wire([init], tmp_path, argv=(sys.executable, "-m", "aegis_scripted"))
    assert out == _wire([init], tmp_path)
    assert out[0]["result"]["agentInfo"]["name"] == "aegis-scripted"


def test_agent_start_up_imports_stay_light():
    """The agent starts once per queue task: json, re, threading and typing stay out of its start-up."""
    *flags, boot = agent_command()
    probe = boot.replace("sys.exit(main())", "print(sorted(m for m in ('json', 're', 'threading', "
                                                           "'typing', 'site') if m in sys.modules))")
    done = subprocess.run([*flags, probe], capture_output=True, text=True, timeout=30, check=True)
    assert done.stdout.strip() == "[]"


def test_wire_errors_and_basic_flow(tmp_path):
    cwd = str(tmp_path)
    out = _wire([
        "not json",
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}},
        {"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": "relative", "mcpServers": []}},
        {"jsonrpc": "2.0", "id": 3, "method": "nope/nope", "params": {}},
        {"jsonrpc": "2.0", "id": 4, "method": "session/prompt", "params": {"sessionId": "x", "prompt": []}},
        {"jsonrpc": "2.0", "id": 5, "method": "session/load", "params": {"sessionId": "x", "cwd": cwd,
                                                                         "mcpServers": []}},
        {"jsonrpc": "2.0", "method": "session/cancel", "params": {"sessionId": ["unhashable"]}},
    ], tmp_path)
    by_id = {m.get("id"): m for m in out}
    assert by_id[None]["error"]["code"] == -32700
    caps = by_id[1]["result"]["agentCapabilities"]
    assert caps["loadSession"] is True and caps["mcpCapabilities"]["http"] is True
    assert by_id[2]["error"]["code"] == -32602
    assert by_id[3]["error"]["code"] == -32601
    assert by_id[4]["error"]["code"] == -32002
    assert by_id[5]["error"] == {"code": -32002, "message": "session not found: x"}


def test_wire_prompt_streams_then_answers(tmp_path):
    out = _wire([
        {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {"protocolVersion": 1}},
        {"jsonrpc": "2.0", "id": 2, "method": "session/new", "params": {"cwd": str(tmp_path), "mcpServers": []}},
    ], tmp_path)
    sid = out[1]["result"]["sessionId"]
    saved = json.loads((tmp_path / "state" / f"{sid}.json").read_text())
    assert saved == {"v": 1, "session_id": sid, "cwd": str(tmp_path), "history": []}
