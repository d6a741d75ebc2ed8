"""aegis_testkit.fakemodel over real HTTP: the three wire formats, the rules, recording, SLOW + disconnect."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading

import httpx
import pytest
import trio
from aegis_kernel.events import TokenUsage
from aegis_testkit.fakemodel import FakeModelServer, Reply, sample_from_schema

ANTHROPIC = "/v1/messages?beta=true"
GEMINI_STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
GEMINI = "/v1beta/models/gemini-2.5-flash:generateContent"
OPENAI = "/v1/chat/completions"


@pytest.fixture
def fm():
    with FakeModelServer(slow_interval=0.05, slow_duration=30) as server:
        yield server


@pytest.fixture
def client(fm):
    with httpx.Client(base_url=fm.url, timeout=10) as c:
        yield c


def sse(text: str) -> list[tuple[str | None, object]]:
    """Parse an SSE body into (event name, decoded data) pairs."""
    out = []
    for block in text.replace("\r\n", "\n").split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
        payload = "\n".join(data)
        out.append((event, payload if payload == "[DONE]" else json.loads(payload)))
    return out


def claude_user(*texts: str) -> dict:
    """A user message as Claude Code sends it: a system-reminder block first."""
    return {"role": "user", "content": [{"type": "text", "text": "<system-reminder>\nctx\n</system-reminder>"},
                                        *({"type": "text", "text": t} for t in texts)]}


CLAUDE_TOOLS = [{"name": "Bash", "input_schema": {}}, {"name": "mcp__fake__echo", "input_schema": {}},
                {"name": "mcp__aegis__aegis_handoff", "input_schema": {}}]
GEMINI_TOOLS = [{"functionDeclarations": [{"name": "read_file"}, {"name": "mcp_fake_echo"}, {"name": "mcp_fake_add"}]}]
OPENAI_TOOLS = [{"type": "function", "function": {"name": n}} for n in ("bash", "fake_add", "fake_echo", "fakestdio_echo")]


# --- Anthropic ------------------------------------------------------------------------------------------


def test_anthropic_plain_reply_non_stream(fm, client):
    body = {"model": "claude-opus-4-8", "max_tokens": 100,
            "messages": [claude_user("hello"), {"role": "system", "content": "mid-conversation system"}]}
    r = client.post(ANTHROPIC, json=body)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    data = r.json()
    assert data["content"] == [{"type": "text", "text": "FAKE_REPLY to: hello"}]
    assert data["stop_reason"] == "end_turn" and data["model"] == "claude-opus-4-8"
    assert data["usage"] == {"input_tokens": 111, "output_tokens": 22, "cache_read_input_tokens": 7,
                             "cache_creation_input_tokens": 3}
    [req] = fm.requests
    assert (req.api, req.endpoint, req.decision, req.last_user_text, req.stream) == (
        "anthropic", "messages", "text", "hello", False)
    assert req.query == {"beta": "true"} and not req.has_history


def test_anthropic_stream(fm, client):
    r = client.post(ANTHROPIC, json={"model": "m", "stream": True, "messages": [claude_user("say a few more words please")]})
    assert r.headers["content-type"].startswith("text/event-stream")
    events = sse(r.text)
    assert all(name == data["type"] for name, data in events)
    types = [name for name, _ in events]
    assert types[0] == "message_start" and types[-2:] == ["message_delta", "message_stop"]
    assert types.count("content_block_delta") >= 2  # really streamed
    start = events[0][1]["message"]
    assert start["usage"] == {"input_tokens": 111, "output_tokens": 1, "cache_creation_input_tokens": 3,
                              "cache_read_input_tokens": 7}
    text = "".join(d["delta"]["text"] for _, d in events if d["type"] == "content_block_delta")
    assert text == "FAKE_REPLY to: say a few more words please"
    delta = events[-2][1]
    assert delta["usage"] == {"output_tokens": 22} and delta["delta"]["stop_reason"] == "end_turn"


def test_anthropic_call_tool_by_suffix_then_tool_result(fm, client):
    r = client.post(ANTHROPIC, json={"model": "m", "stream": True, "tools": CLAUDE_TOOLS,
                                     "messages": [claude_user('CALL_TOOL echo {"text": "hi there"}')]})
    events = sse(r.text)
    [block] = [d["content_block"] for _, d in events if d["type"] == "content_block_start"]
    assert block["type"] == "tool_use" and block["name"] == "mcp__fake__echo"
    args = "".join(d["delta"]["partial_json"] for _, d in events if d["type"] == "content_block_delta")
    assert json.loads(args) == {"text": "hi there"}
    assert events[-2][1]["delta"]["stop_reason"] == "tool_use"
    assert fm.requests[-1].decision == "tool:mcp__fake__echo"

    history = [claude_user('CALL_TOOL echo {"text": "hi there"}'),
               {"role": "assistant", "content": [{"type": "tool_use", "id": block["id"], "name": block["name"],
                                                  "input": {"text": "hi there"}}]},
               {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block["id"],
                                             "content": [{"type": "text", "text": '{"result":"ECHO:hi there"}'}]}]}]
    data = client.post(ANTHROPIC, json={"model": "m", "tools": CLAUDE_TOOLS, "messages": history}).json()
    assert data["content"][0]["text"] == 'FAKE_DONE tool_result={"result":"ECHO:hi there"}'
    req = fm.requests[-1]
    assert req.decision == "tool_result" and req.has_history
    assert [m.role for m in req.messages] == ["user", "assistant", "user"]
    assert req.messages[1].tool_calls == ("mcp__fake__echo",)


def test_call_tool_exact_name_and_missing_tool(fm, client):
    data = client.post(ANTHROPIC, json={"model": "m", "tools": CLAUDE_TOOLS,
                                        "messages": [claude_user("CALL_TOOL Bash {\"command\": \"ls\"}")]}).json()
    assert data["content"][-1] == {"type": "tool_use", "id": data["content"][-1]["id"], "name": "Bash",
                                   "input": {"command": "ls"}}
    data = client.post(ANTHROPIC, json={"model": "m", "tools": CLAUDE_TOOLS,
                                        "messages": [claude_user("CALL_TOOL aegis_handoff")]}).json()
    assert data["content"][-1]["name"] == "mcp__aegis__aegis_handoff" and data["content"][-1]["input"] == {}
    data = client.post(ANTHROPIC, json={"model": "m", "tools": CLAUDE_TOOLS,
                                        "messages": [claude_user("CALL_TOOL nosuch {}")]}).json()
    assert data["content"] == [{"type": "text", "text": "FAKE_NO_TOOL nosuch"}]


def test_anthropic_count_tokens(fm, client):
    r = client.post("/v1/messages/count_tokens?beta=true", json={"model": "m", "messages": [claude_user("x")]})
    assert r.json() == {"input_tokens": 111}
    assert fm.requests[-1].endpoint == "count_tokens"


# --- Gemini -----------------------------------------------------------------------------------------------


def test_gemini_stream_text_and_usage(fm, client):
    body = {"contents": [{"role": "user", "parts": [{"text": "<session_context>\nThis is the Gemini CLI.</session_context>"},
                                                    {"text": "hello gemini, how are you today"}]}],
            "tools": GEMINI_TOOLS}
    r = client.post(GEMINI_STREAM, json=body)
    assert r.headers["content-type"].startswith("text/event-stream")
    chunks = [d for _, d in sse(r.text)]
    assert len(chunks) >= 2
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == "FAKE_REPLY to: hello gemini, how are you today"
    last = chunks[-1]
    assert last["candidates"][0]["finishReason"] == "STOP"
    assert last["usageMetadata"] == {"promptTokenCount": 111, "candidatesTokenCount": 22, "totalTokenCount": 133,
                                     "cachedContentTokenCount": 7}
    req = fm.requests[-1]
    assert (req.api, req.model, req.endpoint) == ("gemini", "gemini-2.5-flash", "stream_generate")
    assert req.tools == ("read_file", "mcp_fake_echo", "mcp_fake_add")


def test_gemini_call_tool_then_function_response(fm, client):
    body = {"contents": [{"role": "user", "parts": [{"text": 'CALL_TOOL echo {"text": "hi there"}'}]}],
            "tools": GEMINI_TOOLS}
    chunks = [d for _, d in sse(client.post(GEMINI_STREAM, json=body).text)]
    calls = [p["functionCall"] for c in chunks for p in c["candidates"][0]["content"]["parts"] if "functionCall" in p]
    assert calls == [{"name": "mcp_fake_echo", "args": {"text": "hi there"}}]

    body["contents"] += [
        {"role": "model", "parts": [{"functionCall": {"name": "mcp_fake_echo", "args": {"text": "hi there"}}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "mcp_fake_echo", "id": "x",
                                                         "response": {"output": "ECHO:hi there"}}}]},
    ]
    data = client.post(GEMINI, json=body).json()  # non-stream generateContent
    assert data["candidates"][0]["content"]["parts"] == [{"text": 'FAKE_DONE tool_result={"output": "ECHO:hi there"}'}]
    assert data["usageMetadata"]["promptTokenCount"] == 111
    assert fm.requests[-1].has_history


def test_gemini_json_mode_and_count_tokens(fm, client):
    router = {"contents": [{"role": "user", "parts": [{"text": "route me"}]}],
              "generationConfig": {"responseMimeType": "application/json", "responseSchema": {
                  "type": "OBJECT", "properties": {"complexity_reasoning": {"type": "STRING"},
                                                   "complexity_score": {"type": "INTEGER", "minimum": 1, "maximum": 100}},
                  "required": ["complexity_reasoning", "complexity_score"]}}}
    data = client.post("/v1beta/models/gemini-3.5-flash-lite:generateContent", json=router).json()
    assert json.loads(data["candidates"][0]["content"]["parts"][0]["text"]) == {
        "complexity_reasoning": "fake", "complexity_score": 1}
    assert fm.requests[-1].decision == "json"
    speaker = {"contents": router["contents"], "generationConfig": {
        "responseMimeType": "application/json", "responseJsonSchema": {
            "type": "object", "properties": {"reasoning": {"type": "string"},
                                             "next_speaker": {"type": "string", "enum": ["user", "model"]}}}}}
    chunks = [d for _, d in sse(client.post(GEMINI_STREAM, json=speaker).text)]
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert json.loads(text) == {"reasoning": "fake", "next_speaker": "user"}
    assert client.post("/v1beta/models/gemini-2.5-flash:countTokens", json={"contents": []}).json() == {"totalTokens": 111}


# --- OpenAI -----------------------------------------------------------------------------------------------


def test_openai_stream_text_with_usage_in_last_chunk(fm, client):
    body = {"model": "fake-model", "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "system", "content": "You are opencode"}, {"role": "user", "content": "hello there"}]}
    events = [d for _, d in sse(client.post(OPENAI, json=body).text)]
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == "FAKE_REPLY to: hello there"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"] == {"prompt_tokens": 111, "completion_tokens": 22, "total_tokens": 133,
                                   "prompt_tokens_details": {"cached_tokens": 7}}
    assert all("usage" not in c for c in chunks[:-1])


def test_openai_tool_call_deltas_then_tool_message(fm, client):
    body = {"model": "fake-model", "stream": True, "tools": OPENAI_TOOLS,
            "messages": [{"role": "user", "content": 'CALL_TOOL echo {"text": "hi there"}'}]}
    chunks = [d for _, d in sse(client.post(OPENAI, json=body).text)][:-1]
    calls: dict[int, dict] = {}
    for c in chunks:
        for tc in c["choices"][0]["delta"].get("tool_calls") or ():
            entry = calls.setdefault(tc["index"], {"name": "", "arguments": ""})
            entry["id"] = tc.get("id", entry.get("id"))
            entry["name"] += tc.get("function", {}).get("name") or ""
            entry["arguments"] += tc.get("function", {}).get("arguments") or ""
    assert len(calls) == 1 and calls[0]["name"] == "fake_echo" and json.loads(calls[0]["arguments"]) == {"text": "hi there"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"

    body["stream"] = False
    body["messages"] += [
        {"role": "assistant", "content": "", "tool_calls": [{"id": calls[0]["id"], "type": "function",
                                                              "function": {"name": "fake_echo", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": calls[0]["id"], "content": "ECHO:hi there"},
    ]
    data = client.post(OPENAI, json=body).json()
    assert data["choices"][0]["message"] == {"role": "assistant", "content": "FAKE_DONE tool_result=ECHO:hi there"}
    assert data["usage"]["prompt_tokens_details"] == {"cached_tokens": 7}
    req = fm.requests[-1]
    assert req.tool_result == "ECHO:hi there" and req.has_history


def test_openai_json_mode(fm, client):
    schema = {"type": "object", "properties": {"title": {"type": "string"}, "n": {"type": "number"},
                                               "tags": {"type": "array", "items": {"type": "string"}, "minItems": 2},
                                               "ok": {"type": "boolean"},
                                               "pick": {"anyOf": [{"type": "null"}, {"type": "integer"}]}}}
    body = {"model": "fake-model", "messages": [{"role": "user", "content": "x"}],
            "response_format": {"type": "json_schema", "json_schema": {"name": "t", "schema": schema}}}
    content = client.post(OPENAI, json=body).json()["choices"][0]["message"]["content"]
    assert json.loads(content) == {"title": "fake", "n": 1, "tags": ["fake", "fake"], "ok": False, "pick": 1}


def test_sample_from_schema_refs_and_consts():
    schema = {"$defs": {"Kind": {"type": "string", "enum": ["a", "b"]}},
              "type": "object", "properties": {"kind": {"$ref": "#/$defs/Kind"}, "v": {"const": 3},
                                               "d": {"type": "string", "default": "dflt"}}}
    assert sample_from_schema(schema) == {"kind": "a", "v": 3, "d": "dflt"}


# --- models, 404, scripting, usage ------------------------------------------------------------------------


def test_models_and_not_found(fm, client):
    for path in ("/v1/models", "/v1beta/models"):
        data = client.get(path).json()
        assert "fake-model" in [m["id"] for m in data["data"]]
        assert "models/gemini-2.5-flash" in [m["name"] for m in data["models"]]
    r = client.post("/v1/embeddings", json={})
    assert r.status_code == 404 and "no route" in r.json()["error"]["message"]
    assert client.get("/nothing/here").status_code == 404
    assert [e["path"] for e in fm.log if e["event"] == "not_found"] == ["/v1/embeddings", "/nothing/here"]


def test_bad_json_body_is_400(fm, client):
    r = client.post(ANTHROPIC, content=b"{not json", headers={"content-type": "application/json"})
    assert r.status_code == 400
    assert fm.log[-1]["event"] == "bad_request"


def test_configured_usage_in_every_format():
    usage = TokenUsage(input=1000, output=50, cache_read=900, cache_creation=40)
    with FakeModelServer(usage=usage) as fm, httpx.Client(base_url=fm.url) as c:
        a = c.post(ANTHROPIC, json={"model": "m", "messages": [claude_user("x")]}).json()["usage"]
        assert a == {"input_tokens": 1000, "output_tokens": 50, "cache_read_input_tokens": 900,
                     "cache_creation_input_tokens": 40}
        g = c.post(GEMINI, json={"contents": [{"role": "user", "parts": [{"text": "x"}]}]}).json()["usageMetadata"]
        assert (g["promptTokenCount"], g["candidatesTokenCount"], g["cachedContentTokenCount"]) == (1000, 50, 900)
        o = c.post(OPENAI, json={"model": "m", "messages": [{"role": "user", "content": "x"}]}).json()["usage"]
        assert (o["prompt_tokens"], o["completion_tokens"], o["prompt_tokens_details"]["cached_tokens"]) == (1000, 50, 900)


def test_script_queue_when_api_and_responder(fm, client):
    fm.script.append(Reply(text="scripted for gemini", api="gemini"))
    fm.script.append(Reply(text="only when asked about bananas", when="bananas"))
    fm.script.append(Reply(tool="echo", args={"text": "from script"}, usage=TokenUsage(input=5, output=6)))
    # The first anthropic request skips the gemini-only and the banana reply, takes the tool call.
    data = client.post(ANTHROPIC, json={"model": "m", "tools": CLAUDE_TOOLS, "messages": [claude_user("go")]}).json()
    assert data["content"][-1]["name"] == "mcp__fake__echo" and data["content"][-1]["input"] == {"text": "from script"}
    assert data["usage"]["input_tokens"] == 5 and data["stop_reason"] == "tool_use"
    data = client.post(ANTHROPIC, json={"model": "m", "messages": [claude_user("tell me about bananas")]}).json()
    assert data["content"] == [{"type": "text", "text": "only when asked about bananas"}]
    data = client.post(GEMINI, json={"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}).json()
    assert data["candidates"][0]["content"]["parts"] == [{"text": "scripted for gemini"}]
    assert fm.script == []
    fm.responder = lambda req: Reply(text=f"responder saw {req.last_user_text}", thinking="pondering")
    data = client.post(ANTHROPIC, json={"model": "m", "messages": [claude_user("z")]}).json()
    assert data["content"] == [{"type": "thinking", "thinking": "pondering", "signature": "fake-signature"},
                               {"type": "text", "text": "responder saw z"}]


def test_scripted_error(fm, client):
    fm.script.append(Reply(error="prompt is too long"))
    r = client.post(ANTHROPIC, json={"model": "m", "messages": [claude_user("x")]})
    assert r.status_code == 400 and r.json()["error"]["message"] == "prompt is too long"
    fm.script.append(Reply(error="quota", status=403))
    r = client.post(OPENAI, json={"model": "m", "messages": [{"role": "user", "content": "x"}]})
    assert r.status_code == 403 and r.json()["error"]["message"] == "quota"


def test_history_is_recorded_for_resume_checks(fm, client):
    messages = [claude_user("first"), {"role": "assistant", "content": [{"type": "text", "text": "FAKE_REPLY to: first"}]},
                claude_user("second")]
    client.post(ANTHROPIC, json={"model": "m", "messages": messages})
    req = fm.requests[-1]
    assert req.has_history and req.user_texts == ("first", "second") and req.last_user_text == "second"
    assert req.body["messages"] == messages


def test_keep_alive_serves_many_requests_on_one_connection(fm, client):
    for i in range(5):
        r = client.post(ANTHROPIC, json={"model": "m", "stream": bool(i % 2), "messages": [claude_user(f"n{i}")]})
        assert r.status_code == 200
    assert [r.last_user_text for r in fm.requests] == [f"n{i}" for i in range(5)]


# --- SLOW -------------------------------------------------------------------------------------------------


def test_slow_streams_until_done():
    with FakeModelServer(slow_interval=0.01, slow_duration=0.05) as fm, httpx.Client(base_url=fm.url) as c:
        events = sse(c.post(ANTHROPIC, json={"model": "m", "stream": True, "messages": [claude_user("be SLOW")]}).text)
        text = "".join(d["delta"]["text"] for _, d in events if d["type"] == "content_block_delta")
        assert text == "slow0 slow1 slow2 slow3 slow4 "
        assert events[-1][1]["type"] == "message_stop"
        data = c.post(OPENAI, json={"model": "m", "messages": [{"role": "user", "content": "SLOW"}]}).json()
        assert data["choices"][0]["message"]["content"] == "slow0 slow1 slow2 slow3 slow4 "
        assert fm.requests[-1].decision == "slow"


def _slow_body(api: str) -> tuple[str, dict]:
    if api == "anthropic":
        return ANTHROPIC, {"model": "m", "stream": True, "messages": [claude_user("please be SLOW")]}
    if api == "gemini":
        return GEMINI_STREAM, {"contents": [{"role": "user", "parts": [{"text": "SLOW"}]}]}
    return OPENAI, {"model": "m", "stream": True, "messages": [{"role": "user", "content": "SLOW"}]}


@pytest.mark.parametrize("api", ["anthropic", "gemini", "openai"])
def test_slow_client_disconnect_is_detected(fm, api):
    path, body = _slow_body(api)
    with httpx.Client(base_url=fm.url, timeout=10) as c, c.stream("POST", path, json=body) as r:
        got = ""
        for chunk in r.iter_text():
            got += chunk
            if "slow1" in got:
                break
    # Leaving the block closed the connection mid-stream.
    entry = fm.wait_for_event("client_disconnected", timeout=5)
    assert entry["api"] == api and entry["decision"] == "slow"
    assert fm.requests[-1].disconnected


def test_stop_ends_a_slow_stream_at_once():
    fm = FakeModelServer(slow_interval=0.05, slow_duration=60).start()
    seen = threading.Event()
    errors: list[BaseException] = []

    def consume() -> None:
        try:
            with httpx.Client(base_url=fm.url, timeout=10) as c, c.stream("POST", *_slow_body("anthropic")[:1],
                                                                         json=_slow_body("anthropic")[1]) as r:
                for chunk in r.iter_text():
                    if "slow0" in chunk:
                        seen.set()
        except httpx.HTTPError as exc:  # the stream is cut; that is fine
            errors.append(exc)

    thread = threading.Thread(target=consume)
    thread.start()
    assert seen.wait(5)
    stopper = threading.Thread(target=fm.stop)  # stop() returns with a stream still open
    stopper.start()
    stopper.join(30)  # a generous deadline that only fails
    assert not stopper.is_alive()
    thread.join(30)
    assert not thread.is_alive()
    fm.stop()  # twice is fine


# --- other clients ------------------------------------------------------------------------------------------


@pytest.mark.trio
async def test_from_trio(fm):
    async with httpx.AsyncClient(base_url=fm.url) as c:
        r = await c.post(OPENAI, json={"model": "m", "messages": [{"role": "user", "content": "from trio"}]})
    assert r.json()["choices"][0]["message"]["content"] == "FAKE_REPLY to: from trio"
    reqs = await trio.to_thread.run_sync(fm.wait_for_requests, 1)
    assert reqs[0].api == "openai"


NODE_CLIENT = textwrap.dedent("""
    // undici (Node's fetch), as used by claude and gemini: stream SSE, then abort mid-stream.
    const url = process.argv[2];
    const r = await fetch(url + "/v1/messages?beta=true", {method: "POST",
      headers: {"content-type": "application/json"},
      body: JSON.stringify({model: "m", stream: true, messages: [{role: "user", content: "hello node"}]})});
    console.log(JSON.stringify({status: r.status, type: r.headers.get("content-type"), body: await r.text()}));
    const ac = new AbortController();
    const s = await fetch(url + "/v1/chat/completions", {method: "POST", signal: ac.signal,
      headers: {"content-type": "application/json"},
      body: JSON.stringify({model: "m", stream: true, messages: [{role: "user", content: "SLOW"}]})});
    const reader = s.body.getReader();
    let got = "";
    while (!got.includes("slow1")) { const {value, done} = await reader.read(); if (done) break; got += new TextDecoder().decode(value); }
    ac.abort();
    console.log(JSON.stringify({aborted: true}));
""")


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed: undici client check skipped")
def test_node_fetch_client(fm, tmp_path):
    script = tmp_path / "client.mjs"
    script.write_text(NODE_CLIENT)
    out = subprocess.run(["node", str(script), fm.url], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    first = json.loads(out.stdout.splitlines()[0])
    assert first["status"] == 200 and first["type"].startswith("text/event-stream")
    text = "".join(d["delta"]["text"] for _, d in sse(first["body"]) if d["type"] == "content_block_delta")
    assert text == "FAKE_REPLY to: hello node"
    fm.wait_for_event("client_disconnected", timeout=5, api="openai")


def test_cli_serves_until_interrupted():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # The child gets SIGINT's default action even if something in this pytest process ignores SIGINT.
    with subprocess.Popen([sys.executable, "-m", "aegis_testkit.fakemodel", "--port", str(port), "--in-tokens", "5"],
                          stdout=subprocess.PIPE, text=True,
                          preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)) as proc:
        try:
            assert proc.stdout is not None
            listening = json.loads(proc.stdout.readline())
            assert listening == {"event": "listening", "url": f"http://127.0.0.1:{port}"}
            data = httpx.post(listening["url"] + ANTHROPIC, json={"model": "m", "messages": [claude_user("cli")]}).json()
            assert data["usage"]["input_tokens"] == 5
            logged = json.loads(proc.stdout.readline())
            assert logged["event"] == "request" and logged["decision"] == "text"
        finally:
            proc.send_signal(2)
            assert proc.wait(10) == 0


def test_call_tool_args_in_a_quoted_message(fm, client):
    # `opencode run` sends the whole message as a JSON string literal.
    body = {"model": "m", "tools": OPENAI_TOOLS, "messages": [{"role": "user", "content": '"CALL_TOOL add {\\"a\\": 2}"'}]}
    data = client.post(OPENAI, json=body).json()
    call = data["choices"][0]["message"]["tool_calls"][0]["function"]
    assert call["name"] == "fake_add" and json.loads(call["arguments"]) == {"a": 2}


# --- the real CLIs in headless mode (skipped when .ci/run has not installed them) --------------------------


def _cli(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    cache = os.environ.get("AEGIS_CLI_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "aegis-ci", "clis")
    path = os.path.join(cache, name, "node_modules", ".bin", name)
    return path if os.path.exists(path) else None


GEMINI_CLI, OPENCODE_CLI = _cli("gemini"), _cli("opencode")


def _stream_json(stdout: str) -> list[dict]:
    return [json.loads(line) for line in stdout.splitlines() if line.startswith("{")]


@pytest.mark.real_cli
@pytest.mark.skipif(GEMINI_CLI is None, reason="real `gemini` binary not installed (see .ci/run)")
def test_real_gemini_headless(fm, tmp_path):
    home = tmp_path / "home"
    (home / ".gemini").mkdir(parents=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps({
        "security": {"auth": {"selectedType": "gemini-api-key"}}, "model": {"name": "gemini-2.5-flash"},
        "privacy": {"usageStatisticsEnabled": False}, "general": {"disableAutoUpdate": True, "disableUpdateNag": True}}))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "GEMINI_CLI_HOME": str(home),
           "GEMINI_API_KEY": "dummy", "GOOGLE_GEMINI_BASE_URL": fm.url, "GEMINI_CLI_TRUST_WORKSPACE": "true",
           "GEMINI_CLI_NO_RELAUNCH": "true"}
    project = tmp_path / "proj"
    project.mkdir()
    out = subprocess.run([GEMINI_CLI, "-p", 'CALL_TOOL list_directory {"dir_path": "."}', "-o", "stream-json"],
                         cwd=project, env=env, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    frames = _stream_json(out.stdout)
    assert [f["tool_name"] for f in frames if f["type"] == "tool_use"] == ["list_directory"]
    text = "".join(f["content"] for f in frames if f["type"] == "message" and f["role"] == "assistant")
    assert text.startswith("FAKE_DONE tool_result={\"output\": ")
    stats = frames[-1]["stats"]
    assert (stats["input_tokens"], stats["output_tokens"], stats["cached"]) == (222, 44, 14)
    assert [r.decision for r in fm.requests if r.endpoint == "stream_generate"] == ["tool:list_directory", "tool_result"]


@pytest.mark.real_cli
@pytest.mark.skipif(OPENCODE_CLI is None, reason="real `opencode` binary not installed (see .ci/run)")
def test_real_opencode_headless(fm, tmp_path):
    config = tmp_path / "opencode.json"
    config.write_text(json.dumps({
        "model": "fake/fake-model", "small_model": "fake/fake-model", "enabled_providers": ["fake"],
        "autoupdate": False, "share": "disabled",
        "provider": {"fake": {"npm": "@ai-sdk/openai-compatible", "name": "Fake",
                              "options": {"baseURL": fm.url + "/v1", "apiKey": "dummy"},
                              "models": {"fake-model": {"name": "Fake Model", "tool_call": True,
                                                        "limit": {"context": 100000, "output": 4096}}}}}}))
    xdg = tmp_path / "xdg"
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path), "OPENCODE_CONFIG": str(config),
           "XDG_DATA_HOME": str(xdg / "data"), "XDG_CONFIG_HOME": str(xdg / "config"),
           "XDG_CACHE_HOME": str(xdg / "cache"), "XDG_STATE_HOME": str(xdg / "state"),
           "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_SHARE": "1",
           "OPENCODE_DISABLE_LSP_DOWNLOAD": "1", "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
           "OPENCODE_DISABLE_CLAUDE_CODE": "1"}
    project = tmp_path / "proj"
    project.mkdir()
    (project / "hello.txt").write_text("hi\n")
    out = subprocess.run([OPENCODE_CLI, "run", "--format", "json", 'CALL_TOOL read {"filePath": "hello.txt"}'],
                         cwd=project, env=env, capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr
    frames = _stream_json(out.stdout)
    [tool] = [f["part"] for f in frames if f["type"] == "tool_use"]
    assert tool["tool"] == "read" and tool["state"]["input"] == {"filePath": "hello.txt"}
    texts = [f["part"]["text"] for f in frames if f["type"] == "text"]
    assert texts and texts[-1].startswith("FAKE_DONE tool_result=")
    tokens = frames[-1]["part"]["tokens"]
    assert (tokens["input"], tokens["output"], tokens["cache"]["read"]) == (104, 22, 7)  # 111 - 7 cached
    decisions = [r.decision for r in fm.requests if r.tools]
    assert decisions == ["tool:read", "tool_result"]


def test_restart_after_stop():
    fm = FakeModelServer(slow_interval=0.01, slow_duration=0.03)
    for _ in range(2):
        with fm, httpx.Client(base_url=fm.url) as c:
            events = sse(c.post(ANTHROPIC, json={"model": "m", "stream": True, "messages": [claude_user("SLOW")]}).text)
            assert "".join(d["delta"]["text"] for _, d in events if d["type"] == "content_block_delta") == "slow0 slow1 slow2 "
    assert not [e for e in fm.log if e["event"] == "client_disconnected"]
