"""Issue 12 findings 1 and 2: an agent's secret MCP URL is never in any process's argv, never in an
error text, a log line or a transcript; a token dies with its session's process (error or close) and a
resumed session gets a new one. Real kernel, real MCP plane, a real scripted agent (ACP) and the fake
claude CLI (stream-json)."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
import sys
from pathlib import Path

import httpx
import pytest

from aegis_kernel.delivery import Envelope
from aegis_kernel.redact import REDACTED, RedactingFormatter, forget_secret, redact, redact_event, register_secret

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted) is not installed")
pytest.importorskip("aegis_claude", reason="the claude driver (drivers/claude) is not installed")
pytest.importorskip("aegis_mcp", reason="the MCP plane (plugins/mcp) is not installed")

FAKE_CLAUDE = Path(__file__).resolve().parent.parent / "claude" / "fake_claude.py"
HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
CONFIG = f"""\
default_agent: scripted
agents:
  scripted:
    provider: scripted
  claude:
    provider: claude-code
    permission: full
    command: [{sys.executable}, {FAKE_CLAUDE}]
"""


@pytest.fixture
def project(write_config, aegis_project):
    write_config(CONFIG)
    return aegis_project


def identities(kernel):
    """The MCP plane's token table (found through the hooks it registered on the kernel)."""
    from aegis_mcp.identities import SpawnHooks

    [hooks] = [p for p in kernel.plugins.pm.get_plugins() if isinstance(p, SpawnHooks)]
    return hooks.identities, hooks.base_url


def cmdlines() -> dict[int, bytes]:
    """``/proc/<pid>/cmdline`` of every process we can see (what any local user reads with ``ps``)."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                out[int(entry)] = Path(f"/proc/{entry}/cmdline").read_bytes()
            except OSError:
                continue
    return out


async def tools_list(url: str) -> int:
    async with httpx.AsyncClient(timeout=10) as client:
        r = await client.post(url, headers=HEADERS, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
    return r.status_code


# --- the redaction helper -------------------------------------------------------------------------


def test_redact_replaces_live_secrets_and_every_mcp_path_shape():
    token = "Zx9-live_secret_token_0001"
    register_secret(token)
    try:
        assert redact(f"argv ['claude', '{token}'] and x{token}y") == f"argv ['claude', '{REDACTED}'] and x{REDACTED}y"
    finally:
        forget_secret(token)
    # a forgotten (revoked) or never registered token is still caught in its URL shape
    assert redact(f"the app failed on POST /mcp/{token}") == f"the app failed on POST /mcp/{REDACTED}"
    assert redact("Authorization: Bearer abcdefgh12345") == f"Authorization: Bearer {REDACTED}"
    text = "nothing secret here: /mcp/ short /mcp/abc"
    assert redact(text) is text
    assert redact(None) is None


def test_redact_event_rewrites_nested_text_fields():
    from aegis_kernel.events import AgentError, ToolResult

    event = AgentError(message="agent died: http://127.0.0.1:1/mcp/AAAAAAAAAAAAAAAA", exit_code=1,
                       stderr_tail="GET /mcp/BBBBBBBBBBBBBBBB failed")
    clean = redact_event(event)
    assert "AAAA" not in clean.message and "BBBB" not in clean.stderr_tail and clean.exit_code == 1
    plain = ToolResult(tool_call_id="t1", text="fine")
    assert redact_event(plain) is plain
    nested = {"entries": [("GET /mcp/GGGGGGGGGGGG", 1)], "event": event}
    clean = redact_event(nested)
    assert "GGGG" not in repr(clean) and "AAAA" not in clean["event"].message


def test_the_log_formatter_redacts_messages_arguments_and_tracebacks():
    formatter = RedactingFormatter("%(message)s")
    try:
        raise RuntimeError("boom at /mcp/CCCCCCCCCCCCCCCCCCCC")
    except RuntimeError:
        record = logging.LogRecord("aegis_mcp", logging.ERROR, __file__, 1, "the app failed on POST %s",
                                   ("/mcp/DDDDDDDDDDDDDDDDDDDD",), sys.exc_info())
    text = formatter.format(record)
    assert "CCCC" not in text and "DDDD" not in text
    assert text.startswith(f"the app failed on POST /mcp/{REDACTED}") and f"RuntimeError: boom at /mcp/{REDACTED}" in text


def test_a_launch_or_spec_shown_in_a_log_or_error_does_not_carry_the_url():
    from aegis_kernel.drivers import Launch, McpEndpoint

    launch = Launch(argv=("agent",), mcp=McpEndpoint(url="http://127.0.0.1:1/mcp/EEEEEEEEEEEE",
                                                     headers={"Authorization": "Bearer FFFFFFFFFFFF"}))
    assert "EEEE" not in repr(launch) and "FFFF" not in repr(launch) and "McpEndpoint(name='aegis')" in repr(launch)


# --- finding 1: never in argv ---------------------------------------------------------------------


@pytest.mark.trio
async def test_no_agent_process_has_its_mcp_url_in_argv(project, kernel):
    scripted = await kernel.sessions.spawn("scripted", prompt="@call aegis_list_sessions")
    claude = await kernel.sessions.spawn("claude", prompt="MCP")
    for session in (scripted, claude):
        await session.wait_for(lambda s: s.metrics.turns == 1 or s.state == "error", timeout=30)
        assert session.state == "ready", session.error
    table, base_url = identities(kernel)
    tokens = {s.handle: table.token_of(s) for s in (scripted, claude)}
    assert all(tokens.values()) and len(set(tokens.values())) == 2

    # both agents reached the plane with their own URL …
    assert "tool aegis_list_sessions →" in scripted.final_text and '"isError"' not in scripted.final_text
    sha = hashlib.sha256((base_url + tokens[claude.handle]).encode()).hexdigest()
    assert claude.final_text == f"mcp aegis sha256={sha} mode=0o600"
    # … which no process on the machine shows in its command line
    seen = cmdlines()
    assert scripted.info()["pid"] in seen and claude.info()["pid"] in seen
    for pid, line in seen.items():
        for token in tokens.values():
            assert token.encode() not in line, f"pid {pid} has a token in argv: {line!r}"
    # claude got a path to a private file instead
    argv = seen[claude.info()["pid"]].split(b"\0")
    config = Path(argv[argv.index(b"--mcp-config") + 1].decode())
    assert stat.S_IMODE(config.stat().st_mode) == 0o600 and stat.S_IMODE(config.parent.stat().st_mode) == 0o700
    assert config.is_relative_to(kernel.state.root)

    await kernel.sessions.close(claude.handle)
    assert not config.exists()  # nothing secret stays on disk once the CLI is gone
    await kernel.sessions.close(scripted.handle)


# --- finding 2: errors, transcripts, logs; revocation ---------------------------------------------


@pytest.mark.trio
async def test_a_failed_agent_leaks_nothing_its_token_dies_and_a_resume_gets_a_new_one(project, kernel):
    claude = await kernel.sessions.spawn("claude", prompt="MCP")
    await claude.wait_for(lambda s: s.metrics.turns == 1, timeout=30)
    table, base_url = identities(kernel)
    token = table.token_of(claude)
    assert await tools_list(base_url + token) == 200

    kernel.deliver(claude.handle, Envelope.new("user", "LEAK"))
    await claude.wait_for(lambda s: s.state == "error", timeout=30)
    # the CLI printed its MCP URL to stderr: the error text shows where, not the secret
    assert "cannot reach MCP at http://127.0.0.1:" in claude.error and REDACTED in claude.error
    assert token not in claude.error
    transcript = Path(claude.info()["transcript"]).read_text()
    assert "cannot reach MCP" in transcript and token not in transcript
    # the token died with the session
    assert table.token_of(claude) is None and table.resolve(token) is None
    assert await tools_list(base_url + token) == 403

    # the serve's log file never holds it either (a line as the HTTP layer writes on a failure)
    logging.getLogger("aegis_mcp.http11").error("the app failed on POST /mcp/%s", token)
    for handler in logging.getLogger().handlers:
        handler.flush()
    log_text = kernel.state.path("aegis.log").read_text()
    assert "the app failed on POST /mcp/" in log_text and token not in log_text

    # resume: a new process, a new token; the old one stays dead
    handle, log_id, sid = claude.handle, claude.log_id, claude.driver_session_id
    await kernel.sessions.close(handle)
    resumed = await kernel.sessions.spawn("claude", handle=handle, resume_id=sid, log_id=log_id, prompt="MCP")
    await resumed.wait_for(lambda s: s.metrics.turns == 1 or s.state == "error", timeout=30)
    assert resumed.state == "ready", resumed.error
    new_token = table.token_of(resumed)
    assert new_token and new_token != token
    sha = hashlib.sha256((base_url + new_token).encode()).hexdigest()
    assert resumed.final_text.startswith(f"mcp aegis sha256={sha}")
    assert await tools_list(base_url + new_token) == 200 and await tools_list(base_url + token) == 403
    await kernel.sessions.close(handle)
    assert await tools_list(base_url + new_token) == 403  # closed: revoked
