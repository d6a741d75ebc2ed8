"""The generic ACP driver (provider ``acp``) and the running agent it returns.

Start-up (:meth:`AcpDriver.start`): spawn (own process group) → ``initialize`` (protocol 1, fs
read/write, no terminal, clientInfo aegis) → ``session/load`` when resuming and the agent has
``loadSession`` (else ``session/resume`` if ``sessionCapabilities.resume``, else a clear error) or
``session/new`` with ``cwd`` and our MCP server as ``{type: "http", name, url, headers}`` (left out only
if the agent says ``mcpCapabilities.http: false``). ``SystemInit(session_id)`` is emitted as soon as
the id is known. Start-up failures raise :class:`AcpStartError` naming argv, exit code and stderr tail.

Subclassing (gemini, opencode, scripted): override :meth:`AcpDriver.default_command` (argv when the
profile has no ``command``), :meth:`AcpDriver.extra_env`, :meth:`AcpDriver.build_launch` as a whole,
or :meth:`AcpDriver.usage_from_result` for vendor usage quirks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aegis_kernel import Driver, Launch, SpawnSpec, bare_tool_name

if TYPE_CHECKING:
    import trio
    from aegis_kernel import TokenUsage

    from .agent import AcpAgentProcess

STDERR_TAIL_BYTES = 8192


def title_mcp_tool(tool_name: str, server: str) -> str | None:
    """The tool named by a permission title ``<tool> (<server> MCP Server)`` (Gemini's), else None."""
    suffix = f" ({server} MCP Server)"
    if tool_name.endswith(suffix):
        return bare_tool_name(tool_name.removesuffix(suffix))
    return None


class AcpConfigError(ValueError):
    """The profile cannot be launched as configured (e.g. generic ``acp`` without ``command``)."""


class AcpStartError(RuntimeError):
    """The agent did not get to a usable session (died, timed out, refused initialize/session)."""


class AcpDriver(Driver):
    """Any ACP agent from a configured command line (``command: [...]`` in the profile)."""

    name = "acp"
    supports_resume = True
    startup_timeout: float = 120.0
    process_class: type[AcpAgentProcess] | None = None  # default: aegis_acp.agent.AcpAgentProcess

    def mcp_tool(self, tool_name: str, server: str) -> str | None:
        """ACP leaves the spelling of an MCP tool's name to the agent, and this driver runs any agent:
        each spelling known from ACP agents counts — ``mcp__<server>__<tool>``, ``mcp_<server>_<tool>``,
        ``<server>_<tool>``, the title ``<tool> (<server> MCP Server)`` and the bare ``<tool>``. A prefixed
        reading is taken only for an ``aegis_*`` tool (the only ones the broker asks about), since
        ``<server>_x`` could as well be a bare name. Drivers for one agent override this with its spelling."""
        for prefix in (f"mcp__{server}__", f"mcp_{server}_", f"{server}_"):
            if tool_name.startswith(prefix + "aegis_"):
                return tool_name[len(prefix):]
        return title_mcp_tool(tool_name, server) or super().mcp_tool(tool_name, server)

    # --- hooks for subclasses ---------------------------------------------------------------------

    def default_command(self, spec: SpawnSpec) -> tuple[str, ...] | None:
        """argv when the profile sets no ``command`` (None: the profile must set one)."""
        return None

    def extra_env(self, spec: SpawnSpec) -> dict[str, str]:
        """Environment this driver adds (the profile's ``env`` is applied on top)."""
        return {}

    def usage_from_result(self, result: Any) -> TokenUsage | None:
        """Token usage of a ``session/prompt`` result (default: OpenCode ``usage`` or Gemini ``_meta.quota``)."""
        from . import codec

        return codec.usage_from_prompt_result(result)

    # --- Driver -----------------------------------------------------------------------------------

    def build_launch(self, spec: SpawnSpec) -> Launch:
        command = tuple(spec.profile.command) if spec.profile.command else self.default_command(spec)
        if not command:
            raise AcpConfigError(
                f"agent '{spec.profile_name}' uses provider '{self.name}' but has no command: set "
                f"`command: [my-agent, --acp]` under agents.{spec.profile_name} in .aegis.yaml")
        return Launch(argv=command, env={**self.extra_env(spec), **spec.profile.env}, cwd=spec.cwd)

    async def start(self, spec: SpawnSpec, launch: Launch, nursery: trio.Nursery) -> AcpAgentProcess:
        from .agent import start_agent

        return await start_agent(self, spec, launch, nursery)
