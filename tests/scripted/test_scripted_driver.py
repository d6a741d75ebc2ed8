"""The ACP driver against the real scripted agent subprocess (real ACP; real MCP over HTTP for @call)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import trio
from aegis_acp.driver import AcpDriver
from aegis_kernel.drivers import McpEndpoint, SpawnSpec
from aegis_kernel.events import (
    AgentError,
    AssistantText,
    PermissionRequest,
    Plan,
    PlanEntry,
    SystemInit,
    Thinking,
    TokenUsage,
    ToolResult,
    ToolUse,
    TurnResult,
    UsageUpdate,
    UserEcho,
)
from aegis_kernel.profiles import AgentProfile
from aegis_kernel.testing import events_until, running_agent
from aegis_scripted.driver import ScriptedDriver, agent_command


def make_spec(tmp_path: Path, **kw) -> SpawnSpec:
    cwd = tmp_path / "project"
    cwd.mkdir(exist_ok=True)
    profile = kw.pop("profile", None) or AgentProfile(provider="scripted")
    return SpawnSpec(handle="brisk-curie", profile_name="helper", profile=profile, cwd=cwd,
                     state_dir=tmp_path / "state", **kw)


def running(spec: SpawnSpec, driver=None):
    return running_agent(driver or ScriptedDriver(), spec)


async def turn(proc, text: str) -> list:
    await proc.prompt(text)
    return [e for e in await events_until(proc.events()) if not isinstance(e, SystemInit)]


def text_of(events) -> str:
    return "".join(e.text for e in events if isinstance(e, AssistantText))


@pytest.mark.trio
async def test_plain_turn(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        [init] = await events_until(proc.events(), stop=SystemInit)
        assert init.session_id.startswith("scripted-") and init.version == "0.1.0"
        events = await turn(proc, "hello there\nsecond line")
        assert [type(e) for e in events] == [AssistantText, TurnResult]
        assert events[0].text == "scripted reply to: hello there" and events[0].message_id
        result = events[1]
        assert result.stop_reason == "end_turn" and not result.is_error and result.usage is None
        assert result.duration_ms is not None


@pytest.mark.trio
async def test_envelope_headers_and_directives_on_any_line(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        events = await turn(proc, "✉ from agent:impl · 17:42:03Z\nplease review")
        assert text_of(events) == "scripted reply to: please review"
        events = await turn(proc, "✉ from queue:review · task#7 · ok · 17:42:03Z\nsome context\n"
                                  "  @reply first\n@think pondering\n@reply second\\nthird")
        assert [type(e) for e in events] == [AssistantText, Thinking, AssistantText, TurnResult]
        assert text_of(events) == "first\nsecond\nthird"
        assert events[1] == Thinking("pondering", message_id=events[0].message_id)


@pytest.mark.trio
async def test_usage_context_plan_and_stop(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        events = await turn(proc, "@reply ok\n@context used=1000 size=200000 cost=0.5\n"
                                  "@plan read | [>] edit | [x] test\n@usage in=111 out=22 cache_read=7 cache_write=3")
        assert events[1] == UsageUpdate(context_used=1000, context_size=200000, cost_usd=0.5)
        assert events[2] == Plan((PlanEntry("read"), PlanEntry("edit", "in_progress"), PlanEntry("test", "completed")))
        assert events[-1].usage == TokenUsage(input=111, output=22, cache_read=7, cache_creation=3)
        events = await turn(proc, "@stop max_tokens\n@usage in=5 out=1 thought=2")
        assert events[-1].stop_reason == "max_tokens" and events[-1].usage == TokenUsage(input=5, output=3)


@pytest.mark.trio
async def test_slow_interrupt_cancelled_then_next_turn_works(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        await proc.prompt("@slow 400 0.05\n@reply never")
        first = await events_until(proc.events(), stop=AssistantText)
        assert first[-1].text == "slow0 "
        await proc.interrupt()
        rest = await events_until(proc.events())
        result = rest[-1]
        assert result.stop_reason == "cancelled" and not result.is_error
        assert "never" not in text_of(rest)
        events = await turn(proc, "after")
        assert text_of(events) == "scripted reply to: after" and events[-1].stop_reason == "end_turn"


@pytest.mark.trio
async def test_fail_is_agent_error_with_stderr_tail(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        await proc.prompt("@reply about to fail\n@fail the disk is on fire")
        events = [e async for e in proc.events()]  # ends by itself after the AgentError
    error = events[-1]
    assert isinstance(error, AgentError)
    assert error.exit_code == 3
    assert "exit code 3" in error.message and "aegis_scripted" in error.message
    assert "the disk is on fire" in error.stderr_tail


@pytest.mark.trio
async def test_resume_with_session_load_replays_history(tmp_path):
    spec = make_spec(tmp_path)
    async with running(spec) as proc:
        [init] = await events_until(proc.events(), stop=SystemInit)
        await turn(proc, "first question")
        await turn(proc, "@reply second answer")
    sid = init.session_id
    assert (tmp_path / "state" / "scripted" / f"{sid}.json").exists()
    resumed = make_spec(tmp_path, resume_id=sid, system_prompt="primer")
    async with running(resumed) as proc:
        assert proc.session_id == sid
        await proc.prompt("third")
        events = await events_until(proc.events())
    # the replayed history comes first, then SystemInit (the kernel's replay boundary), then the new turn
    assert events[:4] == [
        UserEcho("first question"), AssistantText("scripted reply to: first question", message_id="h1"),
        UserEcho("@reply second answer"), AssistantText("second answer", message_id="h3"),
    ]
    assert events[4] == SystemInit(session_id=sid, version="0.1.0")
    assert text_of(events[5:]) == "scripted reply to: third"


@pytest.mark.trio
async def test_resume_unknown_session_fails_clearly(tmp_path):
    spec = make_spec(tmp_path, resume_id="scripted-doesnotexist")
    driver = ScriptedDriver()
    async with trio.open_nursery() as nursery:
        with pytest.raises(Exception, match="session not found: scripted-doesnotexist"):
            await driver.start(spec, driver.build_launch(spec), nursery)


@pytest.mark.trio
async def test_fs_read_confined_to_cwd(tmp_path):
    spec = make_spec(tmp_path)
    (spec.cwd / "notes.txt").write_text("hello notes")
    (tmp_path / "secret.txt").write_text("secret")
    async with running(spec) as proc:
        await proc.prompt(f"@read notes.txt\n@read {tmp_path / 'secret.txt'}\n@read ../secret.txt\n"
                          "@write out/new.txt fresh\\ntext")
        events = []
        while not isinstance(events[-1:] and events[-1], TurnResult):
            events += await events_until(proc.events(), stop=(TurnResult, PermissionRequest))
            if isinstance(events[-1], PermissionRequest):  # each fs request asks first (the session's broker)
                await proc.answer_permission(events[-1].request_id, True)
    asked = [(e.tool_name, e.summary) for e in events if isinstance(e, PermissionRequest)]
    assert asked == [("fs/read_text_file", "notes.txt"), ("fs/write_text_file", "out/new.txt")]
    lines = text_of(events).split("\n")
    assert lines[0] == "read notes.txt → hello notes"
    assert lines[1].startswith(f"read {tmp_path / 'secret.txt'} failed: refused:")
    assert "outside the session directory" in lines[1] and "code -32602" in lines[1]
    assert lines[2].startswith("read ../secret.txt failed: refused:")
    assert lines[3] == "wrote out/new.txt"
    assert (spec.cwd / "out" / "new.txt").read_text() == "fresh\ntext"


@pytest.mark.trio
async def test_permission_request_round_trip(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        await proc.prompt("@ask execute make clean\n@ask delete rm -rf build")
        events = await events_until(proc.events(), stop=PermissionRequest)
        use, req = events[-2:]
        assert use == ToolUse("call-1-1", "make clean", "execute", "make clean", {"command": "make clean"})
        assert req.tool_name == "make clean" and req.kind == "execute" and req.summary == "make clean"
        assert req.options == ("allow", "allow-always", "reject", "reject-always")
        await proc.answer_permission(req.request_id, True)
        events = await events_until(proc.events(), stop=PermissionRequest)
        await proc.answer_permission(events[-1].request_id, False)
        events += await events_until(proc.events())
    results = [e for e in events if isinstance(e, ToolResult)]
    assert [(r.text, r.is_error) for r in results] == [("permission: allow", False), ("permission: reject", True)]
    assert "permission make clean → allow\npermission rm -rf build → reject" in text_of(events)


# --- @call: a real MCP client over HTTP against a small fake MCP server ------------------------


class _McpHandler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802
        msg = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.log.append((self.path, {k.lower(): v for k, v in self.headers.items()}, msg))
        if "id" not in msg:
            self.send_response(202)
            self.end_headers()
            return
        headers = {}
        if msg["method"] == "initialize":
            result = {"protocolVersion": "2025-06-18", "capabilities": {"tools": {}},
                      "serverInfo": {"name": "fake", "version": "1"}}
            headers["Mcp-Session-Id"] = "mcp-sess-1"
            reply = {"jsonrpc": "2.0", "id": msg["id"], "result": result}
        elif msg["method"] == "tools/call" and msg["params"]["name"] == "echo":
            reply = {"jsonrpc": "2.0", "id": msg["id"], "result": {
                "content": [{"type": "text", "text": "ECHO:" + msg["params"]["arguments"].get("text", "")}]}}
        elif msg["method"] == "tools/call" and msg["params"]["name"] == "broken":
            reply = {"jsonrpc": "2.0", "id": msg["id"], "result": {
                "content": [{"type": "text", "text": "it broke"}], "isError": True}}
        else:
            reply = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32602, "message": "unknown tool"}}
        body = json.dumps(reply).encode()
        if self.server.sse:
            body = b"event: message\nid: 1\ndata: " + body + b"\n\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream" if self.server.sse else "application/json")
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(params=["json", "sse"])
def mcp_server(request):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _McpHandler)
    server.log = []
    server.sse = request.param == "sse"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.mark.trio
async def test_call_runs_a_real_mcp_tool_call(tmp_path, mcp_server):
    port = mcp_server.server_address[1]
    mcp = McpEndpoint(url=f"http://127.0.0.1:{port}/mcp/tok123", headers={"Authorization": "Bearer s3cret"})
    async with running(make_spec(tmp_path, mcp=mcp)) as proc:
        events = await turn(proc, '@call echo {"text": "hi there"}\n@call broken\n@call nosuch {}')
    uses = [e for e in events if isinstance(e, ToolUse)]
    results = [e for e in events if isinstance(e, ToolResult)]
    assert uses[0] == ToolUse("call-1-1", "echo", "other", "echo", {"text": "hi there"})
    assert [(r.text, r.is_error) for r in results] == [
        ("ECHO:hi there", False), ("it broke", True), ("MCP error: tools/call failed: unknown tool", True)]
    assert text_of(events).split("\n")[0] == "tool echo → ECHO:hi there"
    methods = [m["method"] for _, _, m in mcp_server.log]
    assert methods == ["initialize", "notifications/initialized", "tools/call", "tools/call", "tools/call"]
    for path, headers, msg in mcp_server.log:
        assert path == "/mcp/tok123"
        assert headers["authorization"] == "Bearer s3cret"
        assert "text/event-stream" in headers["accept"] and "application/json" in headers["accept"]
        if msg["method"] != "initialize":
            assert headers["mcp-session-id"] == "mcp-sess-1"
            assert headers["mcp-protocol-version"] == "2025-06-18"


@pytest.mark.trio
async def test_call_without_mcp_server_fails_the_tool(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        events = await turn(proc, '@call echo {"text": "x"}\n@call echo [1]')
    [result] = [e for e in events if isinstance(e, ToolResult)]
    assert result.is_error and "no MCP http server" in result.text
    assert "@call: @call echo: arguments must be a JSON object" in text_of(events)


# --- the driver itself ------------------------------------------------------------------------


@pytest.mark.trio
async def test_generic_acp_driver_runs_the_scripted_agent_by_command(tmp_path):
    profile = AgentProfile(provider="acp", command=(sys.executable, "-m", "aegis_scripted"),
                           env={"AEGIS_SCRIPTED_STATE": str(tmp_path / "st")})
    async with running(make_spec(tmp_path, profile=profile), driver=AcpDriver()) as proc:
        events = await turn(proc, "hi")
    assert text_of(events) == "scripted reply to: hi"
    assert list((tmp_path / "st").glob("scripted-*.json"))


@pytest.mark.trio
async def test_close_is_polite_via_session_close(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        await events_until(proc.events(), stop=SystemInit)
        with trio.fail_after(5):
            await proc.close(grace=2)
        assert proc.proc.returncode == 0  # left on its own: no signal needed
        assert [e async for e in proc.events()] == []


def test_scripted_launch():
    profile = AgentProfile(provider="scripted", env={"K": "v"})
    spec = SpawnSpec(handle="h", profile_name="helper", profile=profile, cwd=Path("/proj"),
                     state_dir=Path("/proj/.aegis/state"))
    launch = ScriptedDriver().build_launch(spec)
    assert launch.argv == agent_command() and launch.argv[:2] == (sys.executable, "-S")
    assert launch.env == {"AEGIS_SCRIPTED_STATE": "/proj/.aegis/state/scripted", "K": "v"}
    assert launch.cwd == Path("/proj")
    assert ScriptedDriver.name == "scripted" and ScriptedDriver.supports_resume


def test_plugins_register_drivers_and_stay_import_light():
    code = (
        "import sys, aegis_acp.plugin as a, aegis_scripted.plugin as s\n"
        "heavy = [m for m in ('trio', 'aegis_acp.driver', 'aegis_scripted.driver', 'attrs') if m in sys.modules]\n"
        "got = []\n"
        "a.aegis_register_drivers(got.append); s.aegis_register_drivers(got.append)\n"
        "print(heavy, [d.name for d in got])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] ['acp', 'scripted']"
