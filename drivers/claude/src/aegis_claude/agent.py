"""The running Claude Code process (heavy: trio). Imported by :meth:`ClaudeDriver.start` only, so
registering the driver stays cheap."""

from __future__ import annotations

import itertools
import math
import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import trio
from aegis_kernel import (
    AgentError,
    AgentProcess,
    AgentStdinClosed,
    AgentSubprocess,
    Launch,
    McpEndpoint,
    SpawnSpec,
    SubprocessAgent,
    SystemInit,
    TurnResult,
    open_agent_process,
    private_dir,
)
from attrs import evolve

from . import codec

STDERR_TAIL_BYTES = 8192


class ClaudeAgentProcess(SubprocessAgent, AgentProcess):
    """A running ``claude -p`` in stream-json mode. See :class:`aegis_kernel.drivers.AgentProcess`.

    Several prompts may be written back to back: the CLI runs them as consecutive turns, one
    ``TurnResult`` each. :meth:`interrupt` is a no-op when no turn is open.
    """

    def __init__(self, spec: SpawnSpec, launch: Launch, proc: AgentSubprocess) -> None:
        self.spec = spec
        self.launch = launch
        self.proc = proc
        self.pid = proc.pid
        self.session_id: str | None = spec.resume_id
        self.parser = codec.ClaudeParser()
        self._send, self._receive = trio.open_memory_channel[Any](math.inf)
        self._open_turns = 0
        self._ids = itertools.count(1)
        self._closing = False
        self._ended = trio.Event()
        self.mcp_config: Path | None = None  # the private MCP config file, removed when the process ends

    # --- AgentProcess -----------------------------------------------------------------------------

    def events(self) -> AsyncIterator[Any]:
        """The event stream (a trio receive channel); ends after an ``AgentError`` or :meth:`close`."""
        return self._receive  # type: ignore[return-value]

    @property
    def turn_running(self) -> bool:
        return self._open_turns > 0

    async def prompt(self, text: str) -> None:
        """Write one user turn; returns once the CLI has the line."""
        self._open_turns += 1
        try:
            await self._write(codec.user_turn(text))
        except AgentStdinClosed as exc:
            self._open_turns -= 1
            # The process is going away (its AgentError follows); end this turn so nobody waits.
            self._emit(TurnResult(stop_reason="error", is_error=True, error=f"cannot send the prompt: {exc}"))

    async def interrupt(self) -> None:
        """``control_request{subtype: interrupt}``; the turn ends with ``TurnResult(stop_reason="cancelled")``."""
        if not self._open_turns:
            return
        request_id = f"aegis_interrupt_{next(self._ids)}"
        self.parser.interrupt_sent(request_id)
        try:
            await self._write(codec.interrupt_request(request_id))
        except AgentStdinClosed:
            pass

    async def answer_permission(self, request_id: str, allow: bool, *, always: bool = False) -> None:
        """Answer a ``can_use_tool`` request (allow with the tool's own input, or deny).

        ``always`` is remembered by the kernel's approval broker, not by Claude.
        """
        tool_input = self.parser.permission_input(request_id)
        try:
            await self._write(codec.permission_response(request_id, allow, tool_input))
        except AgentStdinClosed:
            pass

    def _end_events(self) -> None:
        self._send.close()
        self._remove_mcp_config()

    # --- internals --------------------------------------------------------------------------------

    def _emit(self, event: Any) -> None:
        try:
            self._send.send_nowait(event)
        except (trio.ClosedResourceError, trio.BrokenResourceError):
            pass

    async def _write(self, message: dict[str, Any]) -> None:
        await self.proc.send_line(codec.encode(message))

    async def _read(self) -> None:
        """Lines → events until EOF; an end we did not ask for becomes an ``AgentError``."""
        try:
            async for line in self.proc.lines():
                for event in self.parser.feed(line):
                    if isinstance(event, SystemInit) and event.session_id:
                        self.session_id = event.session_id
                    elif isinstance(event, TurnResult) and self._open_turns:
                        self._open_turns -= 1
                    self._emit(event)
                if self.parser.outbox:
                    replies, self.parser.outbox = self.parser.outbox, []
                    for reply in replies:
                        try:
                            await self._write(reply)
                        except AgentStdinClosed:
                            break
            if not self._closing:
                await self.proc.settle_after_eof()
                if not self._closing:
                    self._emit(self._death_event())
                    self._open_turns = 0
                if self.proc.returncode is None:
                    await self.proc.close(1.0)
        finally:
            self._send.close()
            self._ended.set()
            self._remove_mcp_config()

    def _remove_mcp_config(self) -> None:
        """The CLI is done with its MCP config file (read at start): nothing secret stays on disk."""
        if self.mcp_config is not None:
            try:
                self.mcp_config.unlink(missing_ok=True)
            except OSError:
                pass
            self.mcp_config = None

    def _death_event(self) -> AgentError:
        return self.proc.death_event(during_turn=bool(self._open_turns), tail_bytes=STDERR_TAIL_BYTES)


def write_mcp_config(spec: SpawnSpec, mcp: McpEndpoint) -> Path:
    """Write ``mcp``'s claude config to a fresh 0600 file in ``<state>/private/mcp/`` (0700); return it.

    The file name is random (not the handle), created with ``O_EXCL`` so nothing pre-placed is reused."""
    text = codec.mcp_config_json(mcp)
    assert text is not None
    folder = private_dir(spec.state_dir, "mcp")
    path = folder / f"claude-{secrets.token_hex(8)}.json"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0),
                 0o600)
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)
    return path


async def start_agent(spec: SpawnSpec, launch: Launch, nursery: trio.Nursery) -> ClaudeAgentProcess:
    """Spawn the CLI, write the control handshake when approvals are brokered, start the reader.

    ``launch.mcp`` (or ``spec.mcp``) is written to a private file (:func:`write_mcp_config`) named by
    ``--mcp-config <path>``; the file is removed when the process has ended."""
    mcp = launch.mcp or spec.mcp
    config: Path | None = None
    if mcp is not None:
        config = await trio.to_thread.run_sync(write_mcp_config, spec, mcp)
        launch = evolve(launch, argv=(*launch.argv, *codec.mcp_config_argv(str(config))))
    try:
        proc = await open_agent_process(nursery, launch.argv, launch.env, launch.cwd or spec.cwd)
    except BaseException:
        if config is not None:
            config.unlink(missing_ok=True)
        raise
    agent = ClaudeAgentProcess(spec, launch, proc)
    agent.mcp_config = config
    if "--permission-prompt-tool" in launch.argv:
        try:  # the control-protocol handshake comes first; its reply needs no waiting for
            await agent._write(codec.initialize_request("aegis_initialize"))
        except AgentStdinClosed:
            pass  # the reader reports the death
    nursery.start_soon(agent._read)
    return agent
