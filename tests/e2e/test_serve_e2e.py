"""Two real scripted agents under a real ``aegis serve``, reaching each other over the real MCP plane."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.e2e


def tool_results(serve, handle):
    return [e for e in serve.events(handle) if e["t"] == "ToolResult"]


def envelopes(serve, handle):
    return [e for e in serve.events(handle) if e["t"] == "EnvelopeReceived"]


def test_handoff_to_a_busy_peer_lands_at_its_turn_end(serve):
    serve.start()
    serve.cli("spawn", "helper", "--handle", "bee", "--prompt", "@slow 3000 0.1")
    serve.wait(lambda: (serve.session("bee") or {}).get("state") == "working", "bee working")
    handoff = json.dumps({"target_handle": "bee", "context": "hello from ant"})
    serve.cli("spawn", "helper", "--handle", "ant", "--prompt", f"@call aegis_handoff {handoff}")
    results = serve.wait(lambda: tool_results(serve, "ant"), "ant's tool result")
    assert "queued for bee (position 1)" in results[0]["text"]
    assert not envelopes(serve, "bee"), "not delivered while bee works"
    serve.cli("interrupt", "bee")  # end bee's turn (instead of waiting 300 s for it)
    got = serve.wait(lambda: envelopes(serve, "bee"), "bee receives the envelope")
    assert got[0]["sender"] == "agent:ant" and got[0]["body"] == "hello from ant"
    tags = [e["t"] for e in serve.events("bee")]
    assert tags.index("EnvelopeReceived") > tags.index("TurnResult"), "delivered only after bee's turn ended"
    text = serve.cli("transcript", "bee").stdout
    assert "✉ from agent:ant · " in text and "hello from ant" in text
    serve.wait(lambda: "scripted reply to: hello from ant" in serve.cli("transcript", "bee").stdout,
               "bee answers the envelope")


def test_an_agent_cannot_act_as_another(serve):
    serve.start()
    serve.cli("spawn", "helper", "--handle", "bee", "--prompt", "@reply idle")
    forged = json.dumps({"target_handle": "ant", "context": "x", "from_handle": "bee"})
    serve.cli("spawn", "helper", "--handle", "ant", "--prompt", f"@call aegis_handoff {forged}")
    result = serve.wait(lambda: tool_results(serve, "ant"), "ant's tool result")[0]
    assert result["is_error"]
    assert "from_handle 'bee' is not you: you are 'ant'" in result["text"]


def test_unknown_token_is_refused(serve):
    serve.start()
    base = serve.mcp_url
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/list"}).encode()
    request = urllib.request.Request(base + "not-a-real-token", data=body, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream"})
    with pytest.raises(urllib.error.HTTPError) as info:
        urllib.request.urlopen(request, timeout=10)
    assert info.value.code == 403


def test_bad_tool_arguments_come_back_to_the_caller_naming_the_parameter(serve):
    serve.start()
    bad = json.dumps({"target_handle": "nobody-here", "context": "x"})
    wrong_type = json.dumps({"target_handle": "x", "context": 5})
    serve.cli("spawn", "helper", "--handle", "ant", "--prompt",
              f"@call aegis_handoff {bad}\n@call aegis_handoff {wrong_type}")
    results = serve.wait(lambda: len(tool_results(serve, "ant")) >= 2 and tool_results(serve, "ant"), "results")
    assert "no session 'nobody-here' (use aegis_list_sessions)" in results[0]["text"]
    assert "context" in results[1]["text"] and "must be string" in results[1]["text"]
    assert serve.session("ant")["state"] in ("ready", "working")


def test_an_agent_dying_mid_turn_is_a_clear_error_and_serve_keeps_running(serve):
    serve.start()
    serve.cli("spawn", "helper", "--handle", "doomed", "--prompt", "@fail the disk is on fire")
    info = serve.wait(lambda: (s := serve.session("doomed")) and s["state"] == "error" and s, "doomed errors")
    assert "the disk is on fire" in info["error"]
    serve.cli("spawn", "helper", "--handle", "fine", "--prompt", "still here?")
    serve.wait(lambda: "scripted reply to: still here?" in serve.cli("transcript", "fine").stdout, "fine answers")
    serve.cli("close", "doomed")
    assert serve.session("doomed") is None


def test_cli_without_a_running_serve_says_how_to_start_one(serve):
    out = serve.cli("sessions", check=False)
    assert out.returncode == 1
    assert "no running Aegis" in out.stderr and "aegis serve" in out.stderr


def test_kill9_with_a_queued_envelope_delivers_it_exactly_once_after_restart(serve):
    serve.start()
    serve.cli("spawn", "helper", "--handle", "bee", "--prompt", "@slow 3000 0.1")
    serve.wait(lambda: (serve.session("bee") or {}).get("state") == "working", "bee working")
    receipt = serve.cli("send", "bee", "do not lose this one").stdout
    assert "queued" in receipt
    serve.kill9()
    serve.start()
    assert "1 session(s) restored" in serve.ready_line
    got = serve.wait(lambda: [e for e in envelopes(serve, "bee") if e["body"] == "do not lose this one"]
                     or [e for e in serve.events("bee") if e["t"] == "UserTurn"
                         and e["text"] == "do not lose this one"], "bee gets the message")
    serve.wait(lambda: serve.session("bee")["state"] == "ready", "bee idle")
    turns = [e for e in serve.events("bee") if e["t"] == "UserTurn"
             and e["text"] == "do not lose this one"]
    assert len(turns) == 1
    assert got


def test_sigterm_stops_serve_and_reaps_agents(serve):
    serve.start()
    serve.cli("spawn", "helper", "--handle", "bee", "--prompt", "@slow 3000 0.1")
    info = serve.wait(lambda: (s := serve.session("bee")) and s["state"] == "working" and s, "bee working")
    pid = info["pid"]
    assert pid
    assert serve.stop() == 0
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the agent is gone, not orphaned


def test_a_request_the_policy_cannot_decide_waits_for_the_user(serve):
    (serve.project / ".aegis.yaml").write_text(
        "default_agent: careful\nagents:\n  careful:\n    provider: scripted\n    permission: read\n")
    serve.start()
    serve.cli("spawn", "careful", "--handle", "cautious", "--prompt", "@ask execute make deploy")
    serve.wait(lambda: serve.session("cautious")["state"] == "input-required", "input-required")
    serve.cli("approve", "cautious")
    serve.wait(lambda: "permission make deploy → allow" in serve.cli("transcript", "cautious").stdout,
               "the agent got the approval")
    assert serve.session("cautious")["state"] == "ready"
    serve.cli("send", "cautious", "@ask delete rm -rf build")
    serve.wait(lambda: serve.session("cautious")["state"] == "input-required", "second request")
    serve.cli("deny", "cautious")
    serve.wait(lambda: "permission rm -rf build → reject" in serve.cli("transcript", "cautious").stdout,
               "the agent got the refusal")
    answered = [e for e in serve.events("cautious") if e["t"] == "ApprovalAnswered"]
    assert [(a["tool_name"], a["allow"]) for a in answered] == [("make deploy", True), ("rm -rf build", False)]


def test_spawn_resume_brings_a_closed_session_back_with_its_transcript(serve):
    serve.start()
    serve.cli("spawn", "helper", "--handle", "memo", "--prompt", "remember the word lighthouse")
    serve.wait(lambda: "scripted reply to: remember the word lighthouse" in serve.cli("transcript", "memo").stdout,
               "first answer")
    driver_id = serve.session("memo")["driver_session_id"]
    serve.cli("close", "memo")
    assert serve.session("memo") is None
    serve.cli("spawn", "--resume", "memo", "--prompt", "what was the word?")
    serve.wait(lambda: "scripted reply to: what was the word?" in serve.cli("transcript", "memo").stdout,
               "answer after resume")
    info = serve.session("memo")
    assert info["driver_session_id"] == driver_id
    text = serve.cli("transcript", "memo").stdout
    assert text.index("remember the word lighthouse") < text.index("what was the word?"), "the log continues"
    assert text.count("scripted reply to: remember the word lighthouse") == 1, "replayed history is not doubled"
    bad = serve.cli("spawn", "--resume", "nobody", check=False)
    assert bad.returncode == 1 and "no saved session 'nobody' to resume" in bad.stderr


def test_rename_keeps_the_session_and_its_identity(serve):
    serve.start()
    serve.cli("spawn", "helper", "--handle", "first-name", "--prompt", "hi")
    serve.wait(lambda: (serve.session("first-name") or {}).get("state") == "ready", "ready")
    serve.cli("rename", "first-name", "second-name")
    assert serve.session("first-name") is None
    serve.cli("send", "second-name", '@call aegis_list_sessions')
    serve.wait(lambda: any('"you":true' in r["text"].replace(' ', '') and "second-name" in r["text"]
                           for r in tool_results(serve, "second-name")), "the agent's token follows the rename")
    bad = serve.cli("rename", "second-name", "Bad Name", check=False)
    assert bad.returncode == 1 and "invalid handle" in bad.stderr


def test_one_kernel_per_project_a_second_serve_and_an_owning_tui_are_refused_naming_the_owner(serve):
    serve.start()
    owner = serve.proc.pid
    second = subprocess.run([sys.executable, "-m", "aegis_kernel.cli", "serve"], cwd=serve.project,
                            capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"aegis serve (pid {owner}) already owns" in second.stderr and "Traceback" not in second.stderr
    assert serve.cli("call", "aegis_ping").stdout.count(str(owner)) == 1  # the owner keeps serving


def test_aegis_call_reaches_any_operation_and_reports_refusals_as_json(serve):
    serve.start()
    spawned = json.loads(serve.cli("call", "aegis_spawn", "agent=helper", "prompt=hello").stdout)
    listed = json.loads(serve.cli("call", "aegis_list_sessions").stdout)
    assert spawned["handle"] in [s["handle"] for s in listed]
    out = serve.cli("call", "aegis_handoff", "--json",
                    json.dumps({"target_handle": spawned["handle"], "context": "from the user"}))
    assert json.loads(out.stdout)["status"] in ("queued", "delivered")
    bad = serve.cli("call", "aegis_send", "handle=nobody", "text=hi", check=False)
    assert bad.returncode == 1 and json.loads(bad.stdout)["code"] == "refused"
