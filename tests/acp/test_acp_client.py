"""AcpDriver / AcpClient against a wire-level fake ACP agent (tests/acp/fake_acp_agent.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import trio
from aegis_acp.agent import AcpAgentProcess
from aegis_acp.driver import AcpConfigError, AcpDriver, AcpStartError
from aegis_kernel.drivers import McpEndpoint, SpawnSpec
from aegis_kernel.events import (
    AgentError,
    AssistantText,
    PermissionRequest,
    SystemInit,
    ToolUse,
    TurnResult,
    Unknown,
)
from aegis_kernel.process import SpawnFailed
from aegis_kernel.profiles import AgentProfile
from aegis_kernel.testing import events_until, running_agent

PY = sys.executable
FAKE = str(Path(__file__).parent / "fake_acp_agent.py")


def make_spec(tmp_path: Path, command=(PY, FAKE), env=None, **kw) -> SpawnSpec:
    cwd = tmp_path / "project"
    cwd.mkdir(exist_ok=True)
    env = {"FAKE_ACP_LOG": str(tmp_path / "wire.log"), **(env or {})}
    profile = AgentProfile(provider="acp", command=tuple(command), env=env)
    return SpawnSpec(handle="brisk-curie", profile_name="coder", profile=profile, cwd=cwd,
                     state_dir=tmp_path / "state", **kw)


def wire(tmp_path: Path) -> list[dict]:
    return [json.loads(line) for line in (tmp_path / "wire.log").read_text().splitlines()]


def running(spec: SpawnSpec, driver=None):
    return running_agent(driver or AcpDriver(), spec)


async def turn(proc, *steps) -> list:
    """Run one turn of fake-agent steps; its events (the start-up SystemInit left out)."""
    await proc.prompt(json.dumps(list(steps)))
    return [e for e in await events_until(proc.events()) if not isinstance(e, SystemInit)]


async def turn_deciding(proc, decide, *steps) -> list:
    """Like :func:`turn`, answering each ``PermissionRequest`` with ``decide(request)`` (as the
    session's approval broker would); the requests stay in the returned events."""
    await proc.prompt(json.dumps(list(steps)))
    out = []
    with trio.fail_after(15):
        async for event in proc.events():
            if isinstance(event, PermissionRequest):
                await proc.answer_permission(event.request_id, decide(event))
            if not isinstance(event, SystemInit):
                out.append(event)
            if isinstance(event, (TurnResult, AgentError)):
                break
    return out


def replies(events) -> list[dict]:
    return [json.loads(e.text) for e in events if isinstance(e, AssistantText)]


@pytest.mark.trio
async def test_start_emits_system_init_and_plain_turn(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        [init] = await events_until(proc.events(), stop=SystemInit)
        assert init == SystemInit(session_id="fake-1", version="9")
        assert proc.session_id == "fake-1" and proc.pid > 0
        events = await turn(proc, {"update": {"sessionUpdate": "agent_message_chunk",
                                              "content": {"type": "text", "text": "hi"}}})
        assert events[0] == AssistantText("hi")
        result = events[-1]
        assert isinstance(result, TurnResult) and result.stop_reason == "end_turn" and result.duration_ms >= 0
    sent = wire(tmp_path)
    assert sent[0]["method"] == "initialize"
    assert sent[0]["params"] == {"protocolVersion": 1, "clientCapabilities": {
        "fs": {"readTextFile": True, "writeTextFile": True}, "terminal": False},
        "clientInfo": {"name": "aegis", "version": "0.1.0"}}
    assert sent[1]["method"] == "session/new"
    assert sent[1]["params"] == {"cwd": str(tmp_path / "project"), "mcpServers": []}


@pytest.mark.trio
async def test_system_prompt_is_the_first_block_of_the_first_turn_only(tmp_path):
    async with running(make_spec(tmp_path, system_prompt="You are brisk-curie.")) as proc:
        first = replies(await turn(proc, {"echo_prompt": True}))[0]
        assert [b["text"] for b in first][0] == "You are brisk-curie."
        assert len(first) == 2
        second = replies(await turn(proc, {"echo_prompt": True}))[0]
        assert len(second) == 1


@pytest.mark.trio
async def test_mcp_server_injected_as_http_with_headers(tmp_path):
    mcp = McpEndpoint(url="http://127.0.0.1:9/mcp/tok", name="aegis", headers={"Authorization": "Bearer t"})
    async with running(make_spec(tmp_path, mcp=mcp)):
        pass
    assert wire(tmp_path)[1]["params"]["mcpServers"] == [{
        "type": "http", "name": "aegis", "url": "http://127.0.0.1:9/mcp/tok",
        "headers": [{"name": "Authorization", "value": "Bearer t"}]}]


@pytest.mark.trio
async def test_mcp_server_left_out_when_agent_has_no_http(tmp_path):
    mcp = McpEndpoint(url="http://127.0.0.1:9/mcp/tok")
    spec = make_spec(tmp_path, mcp=mcp, env={"FAKE_ACP_CAPS": json.dumps({"mcpCapabilities": {"http": False}})})
    async with running(spec):
        pass
    assert wire(tmp_path)[1]["params"]["mcpServers"] == []


@pytest.mark.trio
async def test_garbage_unknown_updates_and_a_20mb_frame(tmp_path):
    big = "x" * (20 * 1024 * 1024)
    async with running(make_spec(tmp_path)) as proc:
        events = await turn(
            proc,
            {"raw": "this is not json"},
            {"raw": "[1, 2, 3]"},
            {"update": {"sessionUpdate": "brand_new_kind", "x": 1}},
            {"send": {"jsonrpc": "2.0", "method": "_vendor/ext", "params": {}}},
            {"send": {"jsonrpc": "2.0", "id": None, "error": {"code": -32700, "message": "parse error"}}},
            {"update": {"sessionUpdate": "agent_message_chunk", "content": {"type": "text", "text": big}}},
        )
    kinds = [type(e).__name__ for e in events]
    assert kinds == ["Unknown", "Unknown", "Unknown", "Unknown", "AssistantText", "TurnResult"]
    assert events[0].reason == "not JSON" and events[0].raw == "this is not json"
    assert events[1].reason == "not a JSON object"
    assert "brand_new_kind" in events[2].reason
    assert "error reply without an id" in events[3].reason
    assert len(events[4].text) == len(big)


@pytest.mark.trio
async def test_a_reply_to_an_id_never_sent_is_a_protocol_error_that_stops_the_agent(tmp_path):
    """Issue 12 finding 10: the agent answers our session/prompt under a wrong id. Nothing could ever
    end that turn, so it is an AgentError naming the id (the session fails, resumable), not a turn
    stuck in working."""
    async with running(make_spec(tmp_path)) as proc:
        await proc.prompt(json.dumps([{"send": {"jsonrpc": "2.0", "id": 999, "result": {"stopReason": "end_turn"}}},
                                      {"hang": True}]))
        events = await events_until(proc.events())
        with trio.fail_after(15):
            assert [e async for e in proc.events()] == []  # the stream ends: the agent was stopped
        assert proc.proc.returncode is not None
    error = events[-1]
    assert isinstance(error, AgentError)
    assert "protocol error" in error.message and "request id 999" in error.message
    assert not proc.turn_running


@pytest.mark.trio
async def test_interrupt_ends_a_turn_the_agent_never_ends(tmp_path):
    """An agent that ignores session/cancel (or lost the turn) still gets out of working: after the
    grace Aegis ends the turn as cancelled, a late reply is ignored and the next turn works."""
    driver = AcpDriver()

    class Impatient(AcpAgentProcess):
        interrupt_grace = 0.2

    driver.process_class = Impatient
    async with running(make_spec(tmp_path), driver) as proc:
        await proc.prompt(json.dumps([{"hang": True}]))
        await proc.interrupt()
        [result] = [e for e in await events_until(proc.events()) if not isinstance(e, SystemInit)]
        assert result.stop_reason == "cancelled" and "did not end its turn" in result.error
        assert not proc.turn_running


@pytest.mark.trio
async def test_unknown_client_method_gets_method_not_found(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        events = await turn(proc, {"request": {"method": "terminal/create", "params": {"sessionId": "fake-1",
                                                                                       "command": "ls"}}})
    [reply] = replies(events)
    assert reply["error"]["code"] == -32601 and "terminal/create" in reply["error"]["message"]


@pytest.mark.trio
async def test_fs_read_and_write_confined_to_cwd(tmp_path):
    spec = make_spec(tmp_path)
    (spec.cwd / "notes.txt").write_text("one\ntwo\nthree\n")
    (tmp_path / "secret.txt").write_text("top secret")
    (spec.cwd / "escape").symlink_to(tmp_path / "secret.txt")

    def read(path, **kw):
        return {"request": {"method": "fs/read_text_file", "params": {"sessionId": "fake-1", "path": path, **kw}}}

    def write(path, content, sid="fake-1"):
        return {"request": {"method": "fs/write_text_file",
                            "params": {"sessionId": sid, "path": path, "content": content}}}

    async with running(spec) as proc:
        events = await turn_deciding(
            proc, lambda req: True,
            read(str(spec.cwd / "notes.txt")),
            read(str(spec.cwd / "notes.txt"), line=2, limit=1),
            read(str(tmp_path / "secret.txt")),
            read(str(spec.cwd / "../secret.txt")),
            read(str(spec.cwd / "escape")),
            read(str(spec.cwd / "missing.txt")),
            write(str(spec.cwd / "sub" / "new.txt"), "fresh"),
            write(str(tmp_path / "outside.txt"), "nope"),
            write(str(spec.cwd / "x.txt"), "nope", sid="other-session"),
        )
    r = replies(events)
    assert r[0]["result"] == {"content": "one\ntwo\nthree\n"}
    assert r[1]["result"] == {"content": "two\n"}
    for refused in r[2:5]:
        assert refused["error"]["code"] == -32602 and "outside the session directory" in refused["error"]["message"]
    assert r[5]["error"]["code"] == -32002
    assert r[6]["result"] == {} and (spec.cwd / "sub" / "new.txt").read_text() == "fresh"
    assert r[7]["error"]["code"] == -32602 and not (tmp_path / "outside.txt").exists()
    assert r[8]["error"]["code"] == -32602 and "unknown session" in r[8]["error"]["message"]
    assert (tmp_path / "secret.txt").read_text() == "top secret"


@pytest.mark.trio
async def test_fs_requests_ask_the_approval_policy_first(tmp_path):
    """Issue 12 finding 8: every fs request is a PermissionRequest (method, kind, path relative to cwd)
    before it is served; a refused write is a -32001 error the agent reads and the file is unchanged;
    paths outside cwd are refused without asking anyone."""
    spec = make_spec(tmp_path)
    (spec.cwd / "notes.txt").write_text("original")

    def write(path, content):
        return {"request": {"method": "fs/write_text_file",
                            "params": {"sessionId": "fake-1", "path": path, "content": content}}}

    read = {"request": {"method": "fs/read_text_file", "params": {"sessionId": "fake-1", "path": "notes.txt"}}}
    async with running(spec) as proc:
        events = await turn_deciding(proc, lambda req: req.kind == "read",
                                     read, write("notes.txt", "clobbered"), write("../outside.txt", "x"))
    asked = [e for e in events if isinstance(e, PermissionRequest)]
    assert [(e.tool_name, e.kind, e.summary) for e in asked] == [
        ("fs/read_text_file", "read", "notes.txt"), ("fs/write_text_file", "edit", "notes.txt")]
    assert asked[1].raw_input == {"path": "notes.txt", "content": "clobbered", "chars": 9}
    r = replies(events)
    assert r[0]["result"] == {"content": "original"}
    assert r[1]["error"]["code"] == -32001 and "permission denied" in r[1]["error"]["message"]
    assert r[2]["error"]["code"] == -32602 and "outside the session directory" in r[2]["error"]["message"]
    assert (spec.cwd / "notes.txt").read_text() == "original"


@pytest.mark.trio
async def test_an_allowed_edit_tool_call_may_write_its_locations_once(tmp_path):
    """The agent asked (session/request_permission) to edit notes.txt and was allowed: its write of
    that file is not asked about a second time; a second write, or another file, is."""
    spec = make_spec(tmp_path)
    edit = {"sessionId": "fake-1",
            "toolCall": {"toolCallId": "e1", "title": "Edit notes", "kind": "edit", "status": "pending",
                         "locations": [{"path": str(spec.cwd / "notes.txt")}]},
            "options": [{"optionId": "ok", "name": "Allow", "kind": "allow_once"},
                        {"optionId": "no", "name": "No", "kind": "reject_once"}]}

    def write(path):
        return {"request": {"method": "fs/write_text_file",
                            "params": {"sessionId": "fake-1", "path": path, "content": "new"}}}

    async with running(spec) as proc:
        events = await turn_deciding(proc, lambda req: req.tool_name == "Edit notes",
                                     {"request": {"method": "session/request_permission", "params": edit}},
                                     write("notes.txt"), write("notes.txt"), write("other.txt"))
    asked = [e.tool_name for e in events if isinstance(e, PermissionRequest)]
    assert asked == ["Edit notes", "fs/write_text_file", "fs/write_text_file"]
    r = replies(events)
    assert r[0]["result"] == {"outcome": {"outcome": "selected", "optionId": "ok"}}
    assert r[1]["result"] == {}
    assert r[2]["error"]["code"] == -32001 and r[3]["error"]["code"] == -32001
    assert (spec.cwd / "notes.txt").read_text() == "new" and not (spec.cwd / "other.txt").exists()


PERMISSION = {
    "sessionId": "fake-1",
    "toolCall": {"toolCallId": "t1", "title": "Shell", "kind": "execute", "status": "pending",
                 "rawInput": {"command": "make clean"}},
    "options": [
        {"optionId": "always", "name": "Always", "kind": "allow_always"},
        {"optionId": "once", "name": "Once", "kind": "allow_once"},
        {"optionId": "no", "name": "No", "kind": "reject_once"},
    ],
}


async def _permission_round(proc, answer) -> tuple[PermissionRequest, dict]:
    await proc.prompt(json.dumps([{"request": {"method": "session/request_permission", "params": PERMISSION}}]))
    events = await events_until(proc.events(), stop=PermissionRequest)
    req = events[-1]
    # A tool first seen in a permission request is announced (ToolUse) by its next update, not before.
    assert not any(isinstance(e, ToolUse) for e in events)
    await answer(req)
    rest = await events_until(proc.events())
    [reply] = replies(rest)
    return req, reply


@pytest.mark.trio
@pytest.mark.parametrize("allow,always,expected", [
    (True, False, "once"), (True, True, "always"), (False, False, "no")])
async def test_permission_answered_by_kind(tmp_path, allow, always, expected):
    async with running(make_spec(tmp_path)) as proc:
        req, reply = await _permission_round(
            proc, lambda r: proc.answer_permission(r.request_id, allow, always=always))
    assert req.tool_name == "Shell" and req.kind == "execute" and req.summary == "make clean"
    assert req.options == ("always", "once", "no")
    assert reply["result"] == {"outcome": {"outcome": "selected", "optionId": expected}}


@pytest.mark.trio
async def test_interrupt_answers_pending_permission_cancelled(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        req, reply = await _permission_round(proc, lambda r: proc.interrupt())
        assert reply["result"] == {"outcome": {"outcome": "cancelled"}}
    assert any(m.get("method") == "session/cancel" for m in wire(tmp_path))


@pytest.mark.trio
async def test_agent_cancels_its_own_request(tmp_path):
    req = {"jsonrpc": "2.0", "id": 555, "method": "session/request_permission", "params": PERMISSION}
    cancel = {"jsonrpc": "2.0", "method": "$/cancel_request", "params": {"requestId": 555}}
    async with running(make_spec(tmp_path)) as proc:
        events = await turn(proc, {"send": req}, {"send": cancel}, {"await": 555})
    assert isinstance(events[0], PermissionRequest)
    [reply] = replies(events)
    assert reply["error"]["code"] == -32800


@pytest.mark.trio
async def test_prompt_error_reply_and_cancelled_error(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        [result] = await turn(proc, {"error": [-32603, "model exploded"]})
        assert result == TurnResult(stop_reason="error", is_error=True, duration_ms=result.duration_ms,
                                    error="model exploded (code -32603)")
        await proc.prompt(json.dumps([{"wait_cancel": True}, {"error": [-32603, "aborted"]}]))
        await proc.interrupt()
        [result] = [e for e in await events_until(proc.events()) if not isinstance(e, SystemInit)]
        assert result.stop_reason == "cancelled" and not result.is_error
        await proc.interrupt()  # idle: no-op


@pytest.mark.trio
async def test_agent_death_mid_turn_is_agent_error_and_ends_events(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        await proc.prompt(json.dumps([{"stderr": "fatal: out of cheese"}, {"exit": 5}]))
        events = [e async for e in proc.events()]  # the stream ends by itself
    [error] = [e for e in events if not isinstance(e, SystemInit)]
    assert isinstance(error, AgentError)
    assert error.exit_code == 5
    assert "exit code 5" in error.message and FAKE in error.message and "during a turn" in error.message
    assert "out of cheese" in error.stderr_tail


@pytest.mark.trio
async def test_resume_uses_session_resume_when_no_load(tmp_path):
    spec = make_spec(tmp_path, resume_id="old-9",
                     env={"FAKE_ACP_CAPS": json.dumps({"sessionCapabilities": {"resume": {}}})})
    async with running(spec) as proc:
        [init] = await events_until(proc.events(), stop=SystemInit)
        assert init.session_id == "old-9" and proc.session_id == "old-9"
    sent = wire(tmp_path)
    assert sent[1]["method"] == "session/resume" and sent[1]["params"]["sessionId"] == "old-9"


@pytest.mark.trio
async def test_resume_impossible_is_a_clear_error(tmp_path):
    spec = make_spec(tmp_path, resume_id="old-9")
    driver = AcpDriver()
    async with trio.open_nursery() as nursery:
        with pytest.raises(AcpStartError, match="neither loadSession nor sessionCapabilities.resume"):
            await driver.start(spec, driver.build_launch(spec), nursery)


@pytest.mark.trio
async def test_session_new_refused_names_auth_methods(tmp_path):
    spec = make_spec(tmp_path, env={"FAKE_ACP_NEW_ERROR": "1"})
    driver = AcpDriver()
    async with trio.open_nursery() as nursery:
        with pytest.raises(AcpStartError, match="auth required.*needs authentication first: login"):
            await driver.start(spec, driver.build_launch(spec), nursery)


@pytest.mark.trio
async def test_protocol_version_mismatch(tmp_path):
    spec = make_spec(tmp_path, env={"FAKE_ACP_VERSION": "2"})
    driver = AcpDriver()
    async with trio.open_nursery() as nursery:
        with pytest.raises(AcpStartError, match="speaks ACP v2"):
            await driver.start(spec, driver.build_launch(spec), nursery)


@pytest.mark.trio
async def test_exit_during_start_is_a_clear_error(tmp_path):
    spec = make_spec(tmp_path, command=(PY, "-c", "import sys; sys.stderr.write('no licence\\n'); sys.exit(2)"))
    driver = AcpDriver()
    async with trio.open_nursery() as nursery:
        with pytest.raises(AcpStartError) as info:
            await driver.start(spec, driver.build_launch(spec), nursery)
    message = str(info.value)
    assert "exited during start-up (exit code 2)" in message and "no licence" in message and PY in message


@pytest.mark.trio
async def test_silent_agent_times_out_at_start(tmp_path):
    spec = make_spec(tmp_path, command=(PY, "-c", "import time; time.sleep(60)"))
    driver = AcpDriver()
    driver.startup_timeout = 0.5
    async with trio.open_nursery() as nursery:
        with trio.fail_after(10), pytest.raises(AcpStartError, match="did not open a session within 0.5 s"):
            await driver.start(spec, driver.build_launch(spec), nursery)


@pytest.mark.trio
async def test_missing_binary_is_spawn_failed(tmp_path):
    spec = make_spec(tmp_path, command=("/nonexistent/acp-agent", "--acp"))
    driver = AcpDriver()
    async with trio.open_nursery() as nursery:
        with pytest.raises(SpawnFailed, match="/nonexistent/acp-agent --acp"):
            await driver.start(spec, driver.build_launch(spec), nursery)


def test_generic_acp_needs_a_command(tmp_path):
    spec = make_spec(tmp_path)
    spec = SpawnSpec(handle=spec.handle, profile_name="coder", profile=AgentProfile(provider="acp"), cwd=spec.cwd,
                     state_dir=spec.state_dir)
    with pytest.raises(AcpConfigError, match="agents.coder"):
        AcpDriver().build_launch(spec)


def test_build_launch_env_and_cwd(tmp_path):
    spec = make_spec(tmp_path, env={"A": "1"})
    launch = AcpDriver().build_launch(spec)
    assert launch.argv == (PY, FAKE) and launch.env["A"] == "1" and launch.cwd == spec.cwd


@pytest.mark.trio
async def test_close_sends_session_close_when_advertised_and_is_idempotent(tmp_path):
    spec = make_spec(tmp_path, env={"FAKE_ACP_CAPS": json.dumps({"sessionCapabilities": {"close": {}}})})
    async with running(spec) as proc:
        await events_until(proc.events(), stop=SystemInit)
        with trio.fail_after(5):
            await proc.close(grace=1)
            await proc.close(grace=1)
        assert [e async for e in proc.events()] == []  # ended, no AgentError for a deliberate close
    assert wire(tmp_path)[-1]["method"] == "session/close"
    assert proc.proc.returncode is not None


@pytest.mark.trio
async def test_unknown_event_is_never_fatal(tmp_path):
    async with running(make_spec(tmp_path)) as proc:
        events = await turn(proc, {"raw": "\x00\x01garbage"}, {"update": {"sessionUpdate": "agent_message_chunk",
                                                                          "content": {"type": "text", "text": "ok"}}})
        assert isinstance(events[0], Unknown) and events[1] == AssistantText("ok")
        assert isinstance(events[-1], TurnResult)


@pytest.mark.trio
async def test_a_flood_of_requests_is_a_protocol_error_not_unbounded_tasks(tmp_path, monkeypatch):
    monkeypatch.setattr("aegis_acp.client.MAX_SERVING", 3)
    flood = [{"send": {"jsonrpc": "2.0", "id": 500 + i, "method": "fs/read_text_file",
                       "params": {"sessionId": "fake-1", "path": "a.txt"}}} for i in range(5)]
    async with running(make_spec(tmp_path)) as proc:
        await proc.prompt(json.dumps([*flood, {"hang": True}]))
        events = await events_until(proc.events())
    assert sum(isinstance(e, PermissionRequest) for e in events) <= 3  # never more than the cap served
    assert isinstance(events[-1], AgentError) and "more than 3 requests" in events[-1].message


@pytest.mark.trio
async def test_a_read_bigger_than_the_cap_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("aegis_acp.fs.READ_MAX_CHARS", 100)
    spec = make_spec(tmp_path)
    (spec.cwd / "big.txt").write_text("x" * 101)
    (spec.cwd / "lines.txt").write_text("".join(f"{i:09d}\n" for i in range(20)))

    def read(path, **kw):
        return {"request": {"method": "fs/read_text_file", "params": {"sessionId": "fake-1", "path": path, **kw}}}

    async with running(spec) as proc:
        events = await turn_deciding(proc, lambda req: True, read("big.txt"), read("lines.txt", line=1, limit=10),
                                     read("lines.txt", line=1, limit=11))
    r = replies(events)
    assert r[0]["error"]["code"] == -32602 and "more than 100 characters" in r[0]["error"]["message"]
    assert len(r[1]["result"]["content"]) == 100
    assert r[2]["error"]["code"] == -32602
