"""The approval broker's policy: deny/allow rules, remembered approvals, Aegis tools, permission levels."""

import pytest

from aegis_acp.driver import AcpDriver
from aegis_claude.driver import ClaudeDriver
from aegis_gemini.driver import GeminiDriver
from aegis_kernel.approvals import ApprovalBroker
from aegis_kernel.events import PermissionRequest
from aegis_kernel.profiles import AgentProfile
from aegis_kernel.testing import FakeDriver
from aegis_opencode.driver import OpenCodeDriver


class FakeSession:
    def __init__(self, **profile):
        self.handle = "brisk-curie"
        self.log_id = "log-brisk-curie"
        self.profile = AgentProfile(provider="acp", **profile)


def ask(tool, kind="other", summary=""):
    return PermissionRequest(request_id="r1", tool_name=tool, kind=kind, summary=summary)


@pytest.mark.parametrize("permission,kind,expected", [
    ("read", "read", True), ("read", "search", True), ("read", "edit", None), ("read", "execute", None),
    ("write", "edit", True), ("write", "execute", None), ("write", "delete", None),
    ("full", "execute", True), ("auto", "delete", True),
])
def test_permission_levels(permission, kind, expected):
    assert ApprovalBroker().decide(FakeSession(permission=permission), ask("Tool", kind)) is expected


def test_deny_beats_allow_and_permission():
    session = FakeSession(permission="full", allow=("Bash",), deny=("Bash:rm *",))
    broker = ApprovalBroker()
    assert broker.decide(session, ask("Bash", "execute", "rm -rf build")) is False
    assert broker.decide(session, ask("Bash", "execute", "ls")) is True


def test_allow_patterns_open_what_the_level_would_ask():
    session = FakeSession(permission="read", allow=("Bash:git status*",))
    assert ApprovalBroker().decide(session, ask("Bash", "execute", "git status --short")) is True
    assert ApprovalBroker().decide(session, ask("Bash", "execute", "git push")) is None


CLAUDE, GEMINI, OPENCODE, ACP = ClaudeDriver(), GeminiDriver(), OpenCodeDriver(), AcpDriver()


def broker_of(driver):
    return ApprovalBroker(driver_for={"acp": driver}.get)  # FakeSession's provider is "acp"


@pytest.mark.parametrize("driver,name", [
    (CLAUDE, "mcp__aegis__aegis_handoff"), (CLAUDE, "aegis_handoff"),
    (GEMINI, "mcp_aegis_aegis_handoff"), (GEMINI, "aegis_handoff (aegis MCP Server)"), (GEMINI, "aegis_handoff"),
    (OPENCODE, "aegis_aegis_list_sessions"),
    *((ACP, name) for name in ("aegis_handoff", "mcp__aegis__aegis_handoff", "mcp_aegis_aegis_handoff",
                               "aegis_aegis_list_sessions", "aegis_handoff (aegis MCP Server)")),
])
def test_aegis_own_tools_are_allowed_in_every_vendor_spelling(driver, name):
    assert broker_of(driver).decide(FakeSession(permission="read"), ask(name)) is True


@pytest.mark.parametrize("driver", [CLAUDE, GEMINI, OPENCODE, ACP, None])
@pytest.mark.parametrize("name", ["mcp__evil__aegis_handoff", "mcp_evil_aegis_x", "aegis_x (evil MCP Server)",
                                  "evil_aegis_x", "aegisfoo"])
def test_other_servers_tools_named_like_aegis_are_not_trusted(driver, name):
    assert broker_of(driver).decide(FakeSession(permission="read"), ask(name)) is None


def test_the_spelling_is_the_drivers_knowledge():
    """The broker holds no vendor table: a driver with a spelling of its own is understood, and a
    vendor's spelling means nothing under another vendor's driver."""

    class Colons(FakeDriver):
        def mcp_tool(self, tool_name, server):
            return tool_name.removeprefix(f"{server}::") if tool_name.startswith(f"{server}::") else None

    session = FakeSession(permission="read")
    assert broker_of(Colons()).decide(session, ask("aegis::aegis_handoff")) is True
    assert broker_of(ACP).decide(session, ask("aegis::aegis_handoff")) is None
    assert broker_of(CLAUDE).decide(session, ask("mcp_aegis_aegis_handoff")) is None  # Gemini's spelling
    assert ApprovalBroker().decide(session, ask("aegis_handoff")) is True  # no driver: the bare name only
    assert ApprovalBroker().decide(session, ask("mcp__aegis__aegis_handoff")) is None


def test_always_is_remembered_per_session():
    broker = ApprovalBroker()
    session = FakeSession(permission="read")
    request = ask("Bash", "execute", "make")
    assert broker.decide(session, request) is None
    broker.remember(session, request)
    assert broker.decide(session, request) is True
    other = FakeSession(permission="read")
    other.handle = "wry-hopper"
    other.log_id = "log-wry-hopper"
    assert broker.decide(other, request) is None
