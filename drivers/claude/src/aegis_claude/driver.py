"""The Claude Code driver (provider ``claude-code``): a thin trio shell around :mod:`aegis_claude.codec`.

- :meth:`ClaudeDriver.build_launch` — :func:`~aegis_claude.codec.build_argv` /
  :func:`~aegis_claude.codec.build_env`, cwd = the spec's; pure.
- :meth:`ClaudeDriver.start` — writes ``Launch.mcp`` (the secret MCP URL) to a 0600 file in the
  state's private folder and passes only its path (``--mcp-config <path>``: never the URL in argv),
  spawns the CLI in its own process group (:mod:`aegis_kernel.process`),
  writes the control-protocol ``initialize`` first when permission prompts are brokered, and starts
  the reader in the given nursery. Claude prints nothing until it gets a user turn, so the process
  "accepts prompts" as soon as it is spawned (the process side lives in :mod:`aegis_claude.agent`,
  imported only here, so registering the driver stays cheap); a binary that cannot be started raises
  :class:`~aegis_kernel.process.SpawnFailed` at once.
- The reader feeds every stdout line to one :class:`~aegis_claude.codec.ClaudeParser`, forwards the
  events, writes the parser's automatic replies (errors for unsupported control requests), and when
  stdout ends without :meth:`ClaudeAgentProcess.close` emits an ``AgentError`` (argv, exit code,
  stderr tail) and ends the event stream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from aegis_kernel import Driver, Launch, SpawnSpec

from . import codec

if TYPE_CHECKING:
    import trio

    from .agent import ClaudeAgentProcess


class ClaudeDriver(Driver):
    """Claude Code over stream-json (``claude -p --input-format stream-json …``)."""

    name = "claude-code"
    supports_resume = True
    binary = "claude"

    def context_window(self, model: str | None) -> int:
        """Claude's models take 200k tokens of context."""
        return 200_000

    def mcp_tool(self, tool_name: str, server: str) -> str | None:
        """Claude names MCP tools ``mcp__<server>__<tool>``."""
        prefix = f"mcp__{server}__"
        if tool_name.startswith(prefix):
            return tool_name[len(prefix):]
        return super().mcp_tool(tool_name, server)

    def build_launch(self, spec: SpawnSpec) -> Launch:
        return Launch(argv=tuple(codec.build_argv(spec)), env=codec.build_env(spec), cwd=spec.cwd)

    async def start(self, spec: SpawnSpec, launch: Launch, nursery: trio.Nursery) -> ClaudeAgentProcess:
        from .agent import start_agent

        return await start_agent(spec, launch, nursery)
