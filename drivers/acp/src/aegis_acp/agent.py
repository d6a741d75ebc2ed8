"""The running ACP agent (heavy: trio, the JSON-RPC client). Imported by :meth:`AcpDriver.start` only,
so registering the driver stays cheap."""

from __future__ import annotations

import functools

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import trio
from aegis_kernel import (
    AgentError,
    AgentProcess,
    AgentSubprocess,
    Launch,
    SpawnSpec,
    SubprocessAgent,
    SystemInit,
    TurnResult,
    open_agent_process,
)
from attrs import evolve

from . import codec
from .client import AcpClient, ConnectionLost, Reply, RpcError
from .driver import STDERR_TAIL_BYTES, AcpStartError
from .jsonrpc import AUTH_REQUIRED, ErrorResponse, Response

if TYPE_CHECKING:
    from .driver import AcpDriver


def _tail_block(proc: AgentSubprocess, limit: int = 2000) -> str:
    tail = proc.stderr_tail(limit).strip()
    return f"\nstderr (last lines):\n{tail}" if tail else "\nstderr: (empty)"


def _model_from_session(result: Any) -> str | None:
    """The current model named in a session/new|load result (Gemini ``models``, OpenCode ``configOptions``)."""
    if not isinstance(result, dict):
        return None
    models = result.get("models")
    if isinstance(models, dict) and isinstance(models.get("currentModelId"), str):
        return models["currentModelId"]
    for opt in result.get("configOptions") or ():
        if isinstance(opt, dict) and opt.get("category") == "model" and isinstance(opt.get("currentValue"), str):
            return opt["currentValue"]
    return None


class _Turn:
    __slots__ = ("started", "cancelled", "rid", "ended")

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.cancelled = False
        self.rid: int | None = None  # the session/prompt request id, once sent
        self.ended = trio.Event()


class AcpAgentProcess(SubprocessAgent, AgentProcess):
    """A running ACP agent with one session. See :class:`aegis_kernel.drivers.AgentProcess`."""

    #: seconds an agent gets to end its turn after ``session/cancel``; then Aegis ends it itself
    interrupt_grace: float = 10.0

    def __init__(self, driver: AcpDriver, spec: SpawnSpec, launch: Launch, proc: AgentSubprocess) -> None:
        self.driver = driver
        self.spec = spec
        self.launch = launch
        self.proc = proc
        self.pid = proc.pid
        self.session_id: str | None = None
        self.info: codec.AgentInfo | None = None
        self.cwd = Path(launch.cwd or spec.cwd).absolute()
        self.client = AcpClient(proc, cwd=self.cwd, private=spec.state_dir)  # Aegis state: never served
        self._turn: _Turn | None = None
        self._turn_lost = False
        self._send_system_prompt = bool(spec.system_prompt)
        self._closing = False
        self._ended = trio.Event()

    # --- AgentProcess ---------------------------------------------------------------------------

    def events(self) -> Any:
        """The event stream (a trio receive channel; ends after ``AgentError`` or :meth:`close`)."""
        return self.client.events

    @property
    def turn_running(self) -> bool:
        return self._turn is not None

    async def prompt(self, text: str) -> None:
        """Send ``session/prompt``; returns once written. The reply becomes a ``TurnResult``."""
        if self._turn is not None:
            raise RuntimeError("a turn is already running; interrupt it or wait for its TurnResult")
        system = self.spec.system_prompt if self._send_system_prompt else ""
        self._send_system_prompt = False
        turn = self._turn = _Turn()
        params = {"sessionId": self.session_id, "prompt": codec.prompt_blocks(text, system)}
        try:
            turn.rid = await self.client.start_request("session/prompt", params,
                                                       lambda reply: self._end_turn(turn, reply))
        except ConnectionLost as exc:
            # The process is going away; its AgentError follows. End the turn so nobody waits.
            self._turn = None
            self.client.emit(TurnResult(stop_reason="error", is_error=True, error=f"cannot send the prompt: {exc}"))

    def _end_turn(self, turn: _Turn, reply: Reply | ConnectionLost) -> None:
        """Runs in the reader: emits the turn's last events in wire order."""
        turn.ended.set()
        if self._turn is turn:
            self._turn = None
        if isinstance(reply, ConnectionLost):
            self._turn_lost = True
            return  # the AgentError ends the turn
        for event in self.client.translator.flush():
            self.client.emit(event)
        duration_ms = int((time.monotonic() - turn.started) * 1000)
        if isinstance(reply, Response):
            try:
                usage = self.driver.usage_from_result(reply.result)
            except Exception:  # noqa: BLE001 - a vendor quirk must not lose the turn end
                usage = None
            self.client.emit(codec.turn_result(reply.result, duration_ms=duration_ms, usage=usage,
                                               cancelled=turn.cancelled))
        else:
            assert isinstance(reply, ErrorResponse)
            self.client.emit(codec.turn_error(reply.code, reply.message, duration_ms=duration_ms,
                                              cancelled=turn.cancelled))

    async def interrupt(self) -> None:
        """``session/cancel`` and answer pending permission requests ``cancelled``; no-op when idle.

        Returns once the turn has ended. An agent that does not end it within :attr:`interrupt_grace`
        seconds (it lost track of it, or ignores the cancel) has the turn ended for it: Aegis stops
        waiting for the ``session/prompt`` reply and emits ``TurnResult(stop_reason="cancelled")``, so
        an interrupt always gets the session out of ``working``.
        """
        turn = self._turn
        if turn is None:
            return
        turn.cancelled = True
        self.client.cancel_permissions()
        try:
            await self.client.notify("session/cancel", {"sessionId": self.session_id})
        except ConnectionLost:
            return  # the process is going away; its AgentError ends the turn
        with trio.move_on_after(self.interrupt_grace):
            await turn.ended.wait()
        if not turn.ended.is_set() and self._turn is turn and turn.rid is not None:
            self.client.abandon(turn.rid)
            turn.ended.set()
            self._turn = None
            for event in self.client.translator.flush():
                self.client.emit(event)
            duration_ms = int((time.monotonic() - turn.started) * 1000)
            self.client.emit(TurnResult(
                stop_reason="cancelled", duration_ms=duration_ms,
                error=f"the agent did not end its turn within {self.interrupt_grace:g} s of session/cancel; "
                      "Aegis stopped waiting for it"))

    async def answer_permission(self, request_id: str, allow: bool, *, always: bool = False) -> None:
        """Pick the option whose kind matches (allow_always / allow_once / reject_once), never option 0."""
        self.client.answer_permission(request_id, allow, always=always)

    async def _say_goodbye(self, grace: float) -> None:
        """``session/close`` if advertised, and any waiting permission request answered cancelled."""
        if self.info is not None and self.info.session_close and self.session_id and self.proc.returncode is None:
            with trio.move_on_after(min(0.5, grace / 2)):
                try:
                    await self.client.request("session/close", {"sessionId": self.session_id})
                except (RpcError, ConnectionLost):
                    pass
        self.client.cancel_permissions()

    def _end_events(self) -> None:
        self.client.close_events()

    # --- life -----------------------------------------------------------------------------------

    async def _main(self) -> None:
        """Read until the end; an unexpected end becomes ``AgentError`` and ends the event stream."""
        try:
            await self.client.run()
            if not self._closing:
                if self.client.protocol_error is None:
                    await self.proc.settle_after_eof()
                if not self._closing:
                    self.client.emit(self._death_event())
                if self.proc.returncode is None:
                    await self.proc.close(1.0)
        finally:
            self.client.close_events()
            self._ended.set()

    def _death_event(self) -> AgentError:
        if self.client.protocol_error is not None:
            return AgentError(message=self.client.protocol_error, exit_code=self.proc.returncode,
                              stderr_tail=self.proc.stderr_tail(STDERR_TAIL_BYTES))
        return self.proc.death_event(during_turn=self._turn_lost or self._turn is not None, tail_bytes=STDERR_TAIL_BYTES)

    async def _start_session(self) -> None:
        """initialize → session/new | session/load | session/resume; emits SystemInit."""
        spec, client = self.spec, self.client
        init = await client.request("initialize", codec.initialize_params("aegis", _version()))
        try:
            info = self.info = codec.parse_initialize(init)
        except ValueError as exc:
            raise AcpStartError(f"agent {self.proc.describe}: bad initialize reply: {exc}") from None
        if info.protocol_version != codec.PROTOCOL_VERSION:
            raise AcpStartError(
                f"agent {self.proc.describe} speaks ACP v{info.protocol_version}; "
                f"Aegis speaks v{codec.PROTOCOL_VERSION}")
        mcp = spec.mcp
        servers = codec.mcp_servers_param(mcp.url if mcp else None, mcp.name if mcp else "aegis",
                                          mcp.headers if mcp else {}, info)
        cwd = str(self.cwd)
        if spec.resume_id:
            sid = spec.resume_id
            if info.load_session:
                method = "session/load"
            elif info.session_resume:
                method = "session/resume"
            else:
                raise AcpStartError(
                    f"cannot resume session {sid}: agent {info.name or self.proc.describe} advertises neither "
                    "loadSession nor sessionCapabilities.resume (start a new session instead)")
            self.session_id = client.session_id = sid
            self._send_system_prompt = False  # the resumed session already has it
            result = await client.request(method, {"sessionId": sid, "cwd": cwd, "mcpServers": servers})
            await self.settle_replay()
            # SystemInit after the load reply (and the settled replay): the history the agent replayed
            # comes before it, which is how the kernel tells replayed history from the new turn.
            self._set_session(sid, _model_from_session(result))
        else:
            result = await client.request("session/new", {"cwd": cwd, "mcpServers": servers})
            sid = result.get("sessionId") if isinstance(result, dict) else None
            if not isinstance(sid, str) or not sid:
                raise AcpStartError(f"agent {self.proc.describe}: session/new reply has no sessionId: {result!r:.200}")
            self._set_session(sid, _model_from_session(result))

    async def settle_replay(self) -> None:
        """Called after the ``session/load`` (or ``session/resume``) reply, before ``SystemInit`` is
        emitted. An agent that streams its history *after* that reply overrides this to wait until
        the replay is over (default: the replay came before the reply, as ACP says)."""

    def _set_session(self, sid: str, model: str | None) -> None:
        self.session_id = self.client.session_id = sid
        info = self.info
        self.client.emit(SystemInit(session_id=sid, model=model or self.spec.profile.model,
                                    version=info.version if info else None))


@functools.cache
def _version() -> str:
    """This distribution's version, for ``clientInfo`` (read once: metadata lookups cost ~1 ms)."""
    try:
        from importlib.metadata import version

        return version("aegis-acp")
    except Exception:  # noqa: BLE001
        return "0.1.0"


async def start_agent(driver: AcpDriver, spec: SpawnSpec, launch: Launch, nursery: trio.Nursery) -> AcpAgentProcess:
    """Spawn, open the ACP session, return the running agent (or raise a clear AcpStartError).

    The MCP endpoint (``launch.mcp``, set by the MCP plugin, else ``spec.mcp``) travels in
    ``session/new|load|resume`` over the agent's stdin, never in argv or the environment."""
    spec = evolve(spec, mcp=launch.mcp or spec.mcp)
    # A failed exec raises aegis_kernel.process.SpawnFailed (argv + OS error) as is.
    proc = await open_agent_process(nursery, launch.argv, launch.env, launch.cwd or spec.cwd)
    agent = (driver.process_class or AcpAgentProcess)(driver, spec, launch, proc)
    nursery.start_soon(agent._main)
    try:
        with trio.fail_after(driver.startup_timeout):
            await agent._start_session()
    except BaseException as exc:
        failure = await _start_failure(driver, agent, exc)
        if failure is None:
            raise
        raise failure from exc
    return agent

async def _start_failure(driver: AcpDriver, agent: AcpAgentProcess, exc: BaseException) -> Exception | None:
    """Close the half-started agent; the clear error to raise (None: re-raise ``exc`` as is)."""
    proc = agent.proc
    if isinstance(exc, ConnectionLost):
        with trio.CancelScope(shield=True), trio.move_on_after(2):
            await proc.wait()
        await proc.stderr_settled(0.5)
    await agent.close(grace=1.0)
    argv = proc.describe
    if isinstance(exc, ConnectionLost):
        return AcpStartError(f"agent {argv} exited during start-up ({proc.exit_description()}){_tail_block(proc)}")
    if isinstance(exc, trio.TooSlowError):
        return AcpStartError(f"agent {argv} did not open a session within {driver.startup_timeout:g} s"
                             f"{_tail_block(proc)}")
    if isinstance(exc, RpcError):
        hint = ""
        if exc.code == AUTH_REQUIRED and agent.info and agent.info.auth_methods:
            hint = f" (the agent needs authentication first: {', '.join(agent.info.auth_methods)})"
        return AcpStartError(f"agent {argv} refused to start a session: {exc}{hint}{_tail_block(proc)}")
    if isinstance(exc, AcpStartError):
        return AcpStartError(f"{exc}{_tail_block(proc)}")
    return None
