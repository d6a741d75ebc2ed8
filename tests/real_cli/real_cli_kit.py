"""Shared helpers of the real-CLI tests: finding the binaries, pointing each CLI at the fake model,
and the scenarios every CLI must pass through a real kernel with the real MCP plane.

How each CLI is pointed at the fake model is ``../shared/reference/real-clis.md`` verbatim: a temp
HOME/config folder per test, ``settings.json`` for Gemini, ``opencode.json`` for OpenCode, the
``ANTHROPIC_*`` variables (and ``IS_SANDBOX=1`` as root) for Claude Code.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
from pathlib import Path
from collections.abc import Callable
from typing import Any

import pytest
from aegis_kernel import events as ev
from aegis_kernel.delivery import Envelope
from aegis_testkit.fakemodel import FakeModelServer
from aegis_queue.runtime import QueueRuntime

CLIS = ("claude", "gemini", "opencode")
REQUIRE_ENV = "AEGIS_REQUIRE_REAL_CLIS"
TURN_TIMEOUT = 60


def cli_cache() -> Path:
    """Where ``.ci/run`` installs the pinned CLIs."""
    explicit = os.environ.get("AEGIS_CLI_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aegis-ci" / "clis"


def add_cached_clis_to_path() -> list[str]:
    """Prepend ``<cache>/<cli>/node_modules/.bin`` (when present) to ``PATH``; returns what was added."""
    added = []
    parts = os.environ.get("PATH", "").split(os.pathsep)
    for name in CLIS:
        folder = cli_cache() / name / "node_modules" / ".bin"
        if folder.is_dir() and str(folder) not in parts:
            added.append(str(folder))
    if added:
        os.environ["PATH"] = os.pathsep.join([*added, *parts])
    return added


def require_cli(name: str) -> str:
    """The binary's path; skips the test with a visible reason when it is missing — or fails it when
    ``AEGIS_REQUIRE_REAL_CLIS=1`` (CI)."""
    found = shutil.which(name)
    if found:
        return found
    reason = (f"real `{name}` CLI not found on PATH nor in {cli_cache()}/{name}/node_modules/.bin "
              "(.ci/run installs the pinned versions)")
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{REQUIRE_ENV}=1 but {reason}", pytrace=False)
    pytest.skip(reason)


# --- pointing each CLI at the fake model -------------------------------------------------------------


def claude_env(fm: FakeModelServer, root: Path) -> dict[str, str]:
    home = root / "cc-home"
    home.mkdir(parents=True, exist_ok=True)
    return {
        "ANTHROPIC_BASE_URL": fm.url, "ANTHROPIC_API_KEY": "dummy", "CLAUDE_CONFIG_DIR": str(home),
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1",
        "IS_SANDBOX": "1",  # as root, Claude refuses bypassPermissions without it
    }


def gemini_env(fm: FakeModelServer, root: Path) -> dict[str, str]:
    home = root / "gem-home"
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    settings = {
        # without selectedType, GOOGLE_GEMINI_BASE_URL makes 0.61 infer auth "gateway" and exit 41
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "model": {"name": "gemini-2.5-flash"},  # pinned: no router side request
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"disableAutoUpdate": True, "disableUpdateNag": True},
    }
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    return {
        "GEMINI_CLI_HOME": str(home), "GEMINI_API_KEY": "dummy", "GOOGLE_GEMINI_BASE_URL": fm.url,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }


OPENCODE_CONTEXT = 100_000


def opencode_env(fm: FakeModelServer, root: Path) -> dict[str, str]:
    base = root / "oc"
    for sub in ("data", "config", "cache", "state"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    config = {
        "model": "fake/fake-model", "small_model": "fake/fake-model", "enabled_providers": ["fake"],
        "autoupdate": False, "share": "disabled",
        "provider": {"fake": {
            "npm": "@ai-sdk/openai-compatible", "name": "Fake",
            "options": {"baseURL": fm.url + "/v1", "apiKey": "dummy"},
            "models": {"fake-model": {"name": "Fake Model", "tool_call": True,
                                      "limit": {"context": OPENCODE_CONTEXT, "output": 4096}}},
        }},
    }
    path = base / "opencode.json"
    path.write_text(json.dumps(config))
    return {
        "OPENCODE_CONFIG": str(path), "XDG_DATA_HOME": str(base / "data"), "XDG_CONFIG_HOME": str(base / "config"),
        "XDG_CACHE_HOME": str(base / "cache"), "XDG_STATE_HOME": str(base / "state"),
        "OPENCODE_DISABLE_MODELS_FETCH": "1", "OPENCODE_DISABLE_AUTOUPDATE": "1", "OPENCODE_DISABLE_SHARE": "1",
        "OPENCODE_DISABLE_LSP_DOWNLOAD": "1", "OPENCODE_DISABLE_DEFAULT_PLUGINS": "1",
        "OPENCODE_DISABLE_CLAUDE_CODE": "1",
    }


def write_project_config(write_config: Any, provider: str, binary: str, env: dict[str, str]) -> None:
    """``.aegis.yaml`` (as JSON, which YAML reads): agent ``cli`` on the real CLI, ``peer`` scripted, and
    queue ``work`` whose workers are ``cli``.

    ``permission: write`` so every MCP tool call of ours goes through the approval broker (Claude's
    ``can_use_tool``, Gemini's ``session/request_permission``), which must allow ``aegis_*`` tools.
    """
    config = {
        "default_agent": "cli",
        "agents": {
            "cli": {"provider": provider, "permission": "write", "command": [binary], "env": env},
            "peer": {"provider": "scripted"},
        },
        "queues": {"work": {"agent": "cli", "max_parallel": 2, "timeout": TURN_TIMEOUT}},
    }
    write_config(json.dumps(config, indent=1))


# --- waiting on sessions -------------------------------------------------------------------------------

SETTLED = ("ready", "error", "closed", "input-required")


async def wait_turns(session: Any, turns: int, timeout: float = TURN_TIMEOUT) -> None:
    """Wait until ``turns`` turns have ended and the session is idle again; fail clearly otherwise."""
    await session.wait_for(lambda s: s.state in SETTLED and (s.metrics.turns >= turns or s.state != "ready"),
                           timeout)
    assert session.state == "ready", f"{session.handle} is {session.state}: {session.error}"
    assert session.metrics.turns >= turns


def turn_results(session: Any) -> list[ev.TurnResult]:
    return [e for e in session.history if isinstance(e, ev.TurnResult)]


def say(kernel: Any, session: Any, text: str) -> None:
    kernel.deliver(session.handle, Envelope.new("user", text))


def requests_since(fm: FakeModelServer, mark: int, api: str) -> list[Any]:
    """The model requests of one API since ``mark`` (an index into ``fm.requests``), side requests
    (JSON mode, tool-less title requests) included."""
    return [r for r in fm.requests[mark:] if r.api == api]


def claude_persisted(root: Path) -> Callable[[str], bool]:
    """True once Claude Code's own transcript of a session holds an assistant reply."""
    def check(session_id: str) -> bool:
        for path in (root / "cc-home" / "projects").glob(f"*/{session_id}.jsonl"):
            try:
                if '"type":"assistant"' in path.read_text():
                    return True
            except OSError:
                pass
        return False
    return check


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group (Linux /proc; zombies count as gone)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp …
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def kill_group(pid: int) -> None:
    """kill -9 the agent's whole process group (it leads its own)."""
    os.killpg(pid, signal.SIGKILL)


# --- the scenarios ---------------------------------------------------------------------------------------


async def scenario_plain_turn(kernel: Any, fm: FakeModelServer, api: str, expected: dict[str, Any]) -> Any:
    """(a) one plain turn: the final text and the session metrics the fake model's usage implies."""
    mark = len(fm.requests)
    session = await kernel.sessions.spawn("cli", prompt="hello there")
    await wait_turns(session, 1)
    assert session.final_text == "FAKE_REPLY to: hello there"
    assert session.driver_session_id
    [result] = turn_results(session)
    assert (result.stop_reason, result.is_error) == ("end_turn", False)
    metrics = session.metrics.to_dict()
    got = {k: metrics[k] for k in expected}
    assert got == expected, f"metrics {got} != {expected} (all: {metrics})"
    turn_requests = [r for r in requests_since(fm, mark, api) if r.last_user_text == "hello there"]
    assert turn_requests, [r.last_user_text for r in fm.requests[mark:]]
    assert turn_requests[-1].decision == "text"
    return session


async def scenario_handoff(kernel: Any, fm: FakeModelServer, api: str, tool_prefix: str) -> list[ev.PermissionRequest]:
    """(b) through the injected Aegis MCP plane: aegis_list_sessions, then aegis_handoff to a scripted peer.

    Returns the permission requests the CLI made on the way (all answered by the approval broker)."""
    peer = await kernel.sessions.spawn("peer")
    await peer.wait_for(lambda s: s.state in SETTLED, 30)
    assert peer.state == "ready", peer.error
    mark = len(fm.requests)
    session = await kernel.sessions.spawn("cli", prompt="CALL_TOOL aegis_list_sessions {}")
    await wait_turns(session, 1)
    assert session.final_text.startswith("FAKE_DONE tool_result="), session.final_text
    assert peer.handle in session.final_text and session.handle in session.final_text

    args = {"target_handle": peer.handle, "context": "please review the parser"}
    say(kernel, session, f"CALL_TOOL aegis_handoff {json.dumps(args)}")
    await wait_turns(session, 2)
    assert session.final_text.startswith("FAKE_DONE tool_result="), session.final_text
    assert f"landed at {peer.handle}" in session.final_text or f"queued for {peer.handle}" in session.final_text

    await peer.wait_for(lambda s: s.metrics.turns >= 1 and s.state in SETTLED, 30)
    [received] = [e for e in peer.history if isinstance(e, ev.EnvelopeReceived)]
    assert (received.sender, received.body) == (f"agent:{session.handle}", "please review the parser")
    envelope = Envelope(received.sender, received.body, received.envelope_id, received.ts)
    assert envelope.render().startswith(f"✉ from agent:{session.handle}")

    decisions = [r.decision for r in requests_since(fm, mark, api) if r.decision.startswith("tool:")]
    assert decisions == [f"tool:{tool_prefix}aegis_list_sessions", f"tool:{tool_prefix}aegis_handoff"], decisions
    assert session.metrics.tool_calls == 2
    uses = [e for e in session.history if isinstance(e, ev.ToolUse)]
    results = [e for e in session.history if isinstance(e, ev.ToolResult)]
    assert len(uses) == len(results) == 2 and not any(r.is_error for r in results), (uses, results)
    assert session.pending_permission is None
    # the approval broker allowed our own tools by itself: nobody was asked
    assert not [e for e in session.history if isinstance(e, ev.StateChanged) and e.new == "input-required"]
    return [e for e in session.history if isinstance(e, ev.PermissionRequest)]


async def scenario_interrupt(kernel: Any, fm: FakeModelServer) -> None:
    """(c) interrupt mid-stream: the turn ends cancelled, the stream is aborted, the next turn works."""
    session = await kernel.sessions.spawn("cli")
    await session.wait_for(lambda s: s.state in SETTLED, TURN_TIMEOUT)
    assert session.state == "ready", session.error
    disconnects = sum(1 for e in fm.log if e.get("event") == "client_disconnected")
    # streaming previews (partial deltas) reach live listeners only, not the history: watch them live
    streamed: list[str] = []
    session.subscribe(lambda s, e: streamed.append(e.text) if isinstance(e, ev.AssistantText) else None)
    say(kernel, session, "please be SLOW now")

    def streaming(s: Any) -> bool:
        return any("slow" in text for text in streamed)

    await session.wait_for(lambda s: streaming(s) or s.metrics.turns >= 1 or s.state in ("error", "closed"),
                           TURN_TIMEOUT)
    assert session.state == "working" and streaming(session), \
        f"the turn ended before it streamed: {session.state} {session.error} {session.history[-3:]}"
    session.interrupt()
    await wait_turns(session, 1, timeout=30)
    [result] = turn_results(session)
    assert (result.stop_reason, result.is_error) == ("cancelled", False), result
    import trio

    await trio.to_thread.run_sync(lambda: fm.wait_for(
        lambda f: sum(1 for e in f.log if e.get("event") == "client_disconnected") > disconnects, 15))

    say(kernel, session, "after the interrupt")
    await wait_turns(session, 2)
    assert session.final_text == "FAKE_REPLY to: after the interrupt"
    assert turn_results(session)[-1].stop_reason == "end_turn"


async def scenario_resume_after_kill(kernel: Any, fm: FakeModelServer,
                                     persisted: Callable[[str], bool] | None = None) -> None:
    """(d) kill -9 the agent mid-life; spawn it again with its driver session id: the conversation goes on.

    ``persisted(session_id)`` (optional) tells when the CLI has written the turn to its own session
    store; the kill waits for it (Claude Code writes its transcript a moment after the ``result``).
    """
    session = await kernel.sessions.spawn("cli", prompt="remember the word pelican")
    await wait_turns(session, 1)
    handle, log_id, sid = session.handle, session.log_id, session.driver_session_id
    pid = session.info()["pid"]
    assert sid and pid
    if persisted is not None:
        import trio

        with trio.fail_after(10):
            while not persisted(sid):
                await trio.sleep(0.05)
    kill_group(pid)
    await session.wait_for(lambda s: s.state in ("error", "closed"), 30)
    assert session.state == "error"
    assert "killed by SIGKILL" in (session.error or ""), session.error
    await session.close()

    mark = len(fm.requests)
    resumed = await kernel.sessions.spawn("cli", handle=handle, resume_id=sid, log_id=log_id)
    await resumed.wait_for(lambda s: s.state in SETTLED, TURN_TIMEOUT)
    assert resumed.state == "ready", resumed.error
    assert resumed.driver_session_id == sid
    say(kernel, resumed, "what was the word")
    await wait_turns(resumed, 1)
    assert resumed.final_text == "FAKE_REPLY to: what was the word", (resumed.final_text, resumed.history[-8:])
    [req] = [r for r in fm.requests[mark:] if r.last_user_text == "what was the word"]
    assert req.has_history, req.messages
    assert any("remember the word pelican" in t for t in req.user_texts), req.user_texts
    # the transcript continues in the same log, and the agent's replay of the history is not doubled
    replies = [e for e in resumed.history if isinstance(e, ev.AssistantText) and not e.partial
               and e.text.startswith("FAKE_REPLY to: remember")]  # ACP chunks: the reply's first piece
    assert len(replies) == 1, [type(e).__name__ + ":" + str(getattr(e, "text", ""))[:40] for e in resumed.history]
    assert [e.text for e in resumed.history if isinstance(e, ev.UserTurn)] == [
        "remember the word pelican", "what was the word"]


async def scenario_queue_workers(kernel: Any, fm: FakeModelServer, api: str) -> None:
    """(e) a queue whose workers are the real CLI: each task's result is its worker's whole final
    message (after a tool call through the MCP plane: the message after it only), it calls back the
    producer once, the worker is closed, and its real usage is recorded."""
    import trio
    from aegis_kernel.operations import Caller

    producer = await kernel.sessions.spawn("peer")
    await producer.wait_for(lambda s: s.state in SETTLED, 30)
    # One CLI start first: two OpenCode processes starting at once on a fresh data folder race on
    # its SQLite migration ("Failed query: CREATE TABLE `workspace`"), an OpenCode bug, not ours.
    first = await kernel.sessions.spawn("cli")
    await first.wait_for(lambda s: s.state in SETTLED, TURN_TIMEOUT)
    assert first.state == "ready", first.error
    await first.close()
    rt = kernel.service(QueueRuntime)
    mark = len(fm.requests)
    tasks = []
    for payload in ("CALL_TOOL aegis_list_sessions {}", "summarise the queue"):
        out = await kernel.operations.call(kernel, "aegis_enqueue", {"queue": "work", "payload": payload},
                                           Caller(producer.handle, via="mcp"))
        tasks.append(rt.tasks[out["task_id"]])
    with trio.fail_after(TURN_TIMEOUT * 2):
        for task in tasks:
            await task.finished.wait()
    listing, plain = tasks
    assert (listing.status, plain.status) == ("completed", "completed"), (listing.error, plain.error)
    assert listing.result.startswith("FAKE_DONE tool_result="), listing.result
    assert listing.worker in listing.result and producer.handle in listing.result  # it saw the live sessions
    asked = [r for r in requests_since(fm, mark, api)  # side requests (titles, JSON mode) aside
             if r.last_user_text.endswith("summarise the queue") and r.decision == "text"]
    assert asked and plain.result == f"FAKE_REPLY to: {asked[-1].last_user_text}".strip(), plain.result
    assert plain.usage and plain.usage["output"] > 0 and plain.usage["input"] > 0
    await producer.wait_for(lambda s: len([e for e in s.history if isinstance(e, ev.EnvelopeReceived)]) == 2, 30)
    got = {e.task_id: e for e in producer.history if isinstance(e, ev.EnvelopeReceived)}
    assert {t: (e.sender, e.status, e.body) for t, e in got.items()} == {
        t.id: ("queue:work", "ok", t.result) for t in tasks}
    with trio.fail_after(30):
        while any(kernel.sessions.get(t.worker) for t in tasks):  # closed after their task
            await trio.sleep(0.05)
