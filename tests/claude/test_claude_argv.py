"""aegis_claude.codec.build_argv / build_env: the spawn line, pure."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aegis_claude.codec import brokers_permissions, build_argv, build_env, mcp_config_argv, mcp_config_json
from aegis_kernel.drivers import McpEndpoint, SpawnSpec
from aegis_kernel.profiles import AgentProfile

BASE = ["claude", "-p", "--input-format", "stream-json", "--output-format", "stream-json", "--verbose",
        "--include-partial-messages"]


def spec(resume_id: str | None = None, mcp: McpEndpoint | None = None, system_prompt: str = "",
         **profile: object) -> SpawnSpec:
    profile.setdefault("provider", "claude-code")
    return SpawnSpec(handle="brisk-curie", profile_name="coder", profile=AgentProfile(**profile),
                     cwd=Path("/proj"), state_dir=Path("/proj/.aegis/state"), mcp=mcp, resume_id=resume_id,
                     system_prompt=system_prompt)


def flag(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def test_default_profile():
    # permission defaults to "write": acceptEdits, and the broker answers what Claude would ask a human.
    assert build_argv(spec()) == [*BASE, "--permission-mode", "acceptEdits", "--permission-prompt-tool", "stdio"]


def test_full_profile_lets_claude_decide():
    assert build_argv(spec(permission="full")) == [*BASE, "--permission-mode", "bypassPermissions"]


@pytest.mark.parametrize("permission,mode,brokered", [
    ("read", "plan", True), ("write", "acceptEdits", True), ("full", "bypassPermissions", False), ("auto", "auto", False),
])
def test_permission_mapping(permission: str, mode: str, brokered: bool):
    argv = build_argv(spec(permission=permission))
    assert flag(argv, "--permission-mode") == mode
    assert (flag(argv, "--permission-prompt-tool") == "stdio") is brokered
    assert brokers_permissions(spec(permission=permission)) is brokered


def test_rules_route_prompts_to_the_broker():
    argv = build_argv(spec(permission="full", deny=("Bash:rm *",)))
    assert flag(argv, "--permission-mode") == "default"  # bypassPermissions would never ask
    assert flag(argv, "--permission-prompt-tool") == "stdio"
    argv = build_argv(spec(permission="auto", allow=("Bash:git *",)))
    assert flag(argv, "--permission-mode") == "auto"
    assert flag(argv, "--permission-prompt-tool") == "stdio"


def test_resume_model_effort():
    argv = build_argv(spec(resume_id="9794ddb6-5cc2", model="opus", effort="high", permission="full"))
    assert argv == [*BASE, "--resume", "9794ddb6-5cc2", "--model", "opus", "--effort", "high",
                    "--permission-mode", "bypassPermissions"]


def test_mcp_config_is_a_private_file_never_argv():
    """The MCP URL holds the session's secret token: build_argv never carries it (the agent writes
    mcp_config_json to a 0600 file and passes mcp_config_argv(path))."""
    mcp = McpEndpoint(url="http://127.0.0.1:41234/mcp/tok3n-secret", headers={"Authorization": "Bearer tok3n"})
    argv = build_argv(spec(mcp=mcp, permission="full"))
    assert "--mcp-config" not in argv and not any("tok3n" in a for a in argv)
    assert json.loads(mcp_config_json(mcp)) == {"mcpServers": {"aegis": {
        "type": "http", "url": "http://127.0.0.1:41234/mcp/tok3n-secret", "headers": {"Authorization": "Bearer tok3n"}}}}
    bare = json.loads(mcp_config_json(McpEndpoint(url="http://h/mcp", name="plane")))
    assert bare == {"mcpServers": {"plane": {"type": "http", "url": "http://h/mcp"}}}
    assert mcp_config_json(None) is None
    assert mcp_config_argv("/s/private/mcp/c.json") == ["--mcp-config", "/s/private/mcp/c.json", "--strict-mcp-config"]


def test_system_prompt():
    argv = build_argv(spec(system_prompt="You are brisk-curie.\nUse aegis_meta."))
    assert argv[-2:] == ["--append-system-prompt", "You are brisk-curie.\nUse aegis_meta."]
    assert "--append-system-prompt" not in build_argv(spec())


def test_command_override_replaces_the_binary():
    argv = build_argv(spec(command=("/opt/cc/claude", "--debug-to-stderr"), permission="full"))
    assert argv[:2] == ["/opt/cc/claude", "--debug-to-stderr"]
    assert argv[2:] == [*BASE[1:], "--permission-mode", "bypassPermissions"]


def test_env():
    assert build_env(spec()) == {"CLAUDE_CODE_ENTRYPOINT": "sdk-py", "CLAUDECODE": ""}
    env = build_env(spec(env={"ANTHROPIC_BASE_URL": "http://127.0.0.1:8700", "CLAUDE_CODE_ENTRYPOINT": "custom"}))
    assert env == {"CLAUDE_CODE_ENTRYPOINT": "custom", "CLAUDECODE": "", "ANTHROPIC_BASE_URL": "http://127.0.0.1:8700"}


def test_pure():
    s = spec(model="opus", mcp=McpEndpoint(url="http://x/mcp"))
    assert build_argv(s) == build_argv(s)
