"""The Gemini CLI driver (provider ``gemini``): :class:`aegis_acp.driver.AcpDriver` with Gemini's quirks.

- **argv** ``gemini --acp [-m <model>]``; ``profile.command`` replaces ``gemini`` (``--acp`` is not
  added twice). **env** ``GEMINI_CLI_NO_RELAUNCH=true`` (else ``gemini`` re-spawns itself as a child
  ``node`` process); the profile's ``env`` is applied on top. The process runs in its own process group
  and close kills the whole group, so nothing is orphaned either way.
- **usage** only comes in the ``session/prompt`` result, ``_meta.quota.token_count``
  ``{input_tokens, output_tokens}`` summed over the turn's requests (``input_tokens`` is Gemini's
  ``promptTokenCount``, cache included: Gemini does not say how much was cached).
- **permissions**: Gemini asks ``session/request_permission`` for MCP tools (titles like
  ``aegis_handoff (aegis MCP Server)``) and for its own write/shell tools; the kernel's approval broker
  answers by option kind (``proceed_once`` / ``proceed_always_*`` / ``cancel``).
- **resume** is ``session/load``, with two workarounds for Gemini CLI 0.61:

  1. *the minute-boundary bug*: loading starts a new chat recording in
     ``<home>/.gemini/tmp/<project>/chats/session-<YYYY-MM-DDTHH-MM>-<id8>.jsonl`` (UTC minute of the
     load) *before* it reads the session back; when that is the very file holding the history (the
     session was created in the same wall-clock minute), the fresh ``$set: messages`` record wipes the
     history and the load fails (``No previous sessions found`` / ``Invalid session identifier``).
     Before loading, the driver moves such a file aside to ``session-<stamp>-aegis-<id8>.jsonl`` (Gemini
     still finds it by id and keeps writing to it). When the chats folder cannot be found but this
     driver created the session in the current minute, it waits past the minute boundary instead.
  2. Gemini replays the history *after* answering ``session/load``; the driver lets that replay
     settle (no update for :attr:`GeminiDriver.replay_quiet` s) before it reports ``SystemInit``, so the
     kernel can tell replayed history from the new turn.
"""

from __future__ import annotations

import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aegis_acp.driver import AcpDriver, title_mcp_tool
from aegis_kernel import Launch, SpawnSpec, bare_tool_name

if TYPE_CHECKING:
    from aegis_acp.agent import AcpAgentProcess

ACP_FLAGS = ("--acp", "--experimental-acp")
MINUTE_FORMAT = "%Y-%m-%dT%H-%M"  # Gemini's chat file stamp: new Date().toISOString().slice(0, 16), ':' → '-'


def chat_stamp(when: float | None = None) -> str:
    """Gemini's chat-file minute stamp (UTC) for the epoch time ``when`` (default: now)."""
    moment = datetime.fromtimestamp(time.time() if when is None else when, tz=timezone.utc)
    return moment.strftime(MINUTE_FORMAT)


def gemini_home(env: dict[str, str] | Any) -> Path:
    """Where Gemini keeps ``.gemini/``: ``GEMINI_CLI_HOME`` (launch env, then ours), else the user's home."""
    home = env.get("GEMINI_CLI_HOME") or os.environ.get("GEMINI_CLI_HOME")
    return Path(home).expanduser() if home else Path.home()


def _session_id_of(path: Path) -> str | None:
    """The ``sessionId`` in a chat file's first record (None if unreadable)."""
    import json

    try:
        with path.open("rb") as f:
            first = f.readline(65536)
        data = json.loads(first)
    except (OSError, ValueError):
        return None
    sid = data.get("sessionId") if isinstance(data, dict) else None
    return sid if isinstance(sid, str) else None


def chat_files(home: Path, session_id: str) -> list[Path]:
    """Gemini's chat files of ``session_id`` (every project folder under ``<home>/.gemini/tmp``)."""
    short = session_id[:8]
    root = home / ".gemini" / "tmp"
    try:
        candidates = sorted(root.glob(f"*/chats/session-*-{short}.jsonl"))
    except OSError:
        return []
    return [p for p in candidates if _session_id_of(p) == session_id]


def unclobber(home: Path, session_id: str, now: float | None = None) -> list[Path]:
    """Move aside the chat files of ``session_id`` that a load right now would write into.

    Returns the new paths (empty when nothing needed moving). Never raises.
    """
    target = f"session-{chat_stamp(now)}-{session_id[:8]}.jsonl"
    moved = []
    for path in chat_files(home, session_id):
        if path.name != target:
            continue
        new = path.with_name(f"session-{chat_stamp(now)}-aegis-{session_id[:8]}.jsonl")
        n = 1
        while new.exists():
            n += 1
            new = path.with_name(f"session-{chat_stamp(now)}-aegis{n}-{session_id[:8]}.jsonl")
        try:
            path.rename(new)
        except OSError:
            continue
        moved.append(new)
    return moved


class GeminiDriver(AcpDriver):
    """Gemini CLI over ACP (``gemini --acp``)."""

    name = "gemini"
    supports_resume = True
    binary = "gemini"
    startup_timeout = 120.0
    replay_quiet: float = 0.3
    replay_max: float = 5.0

    def __init__(self) -> None:
        self._created: dict[str, set[str]] = {}  # session id → chat stamps its creation may carry

    @property  # type: ignore[override]
    def process_class(self) -> type[AcpAgentProcess]:
        from .agent import GeminiAgentProcess  # trio and the ACP client load only when spawning

        return GeminiAgentProcess

    def context_window(self, model: str | None) -> int:
        """Gemini's models take 1M (2**20) tokens of context."""
        return 1_048_576

    def mcp_tool(self, tool_name: str, server: str) -> str | None:
        """Gemini names MCP tools ``mcp_<server>_<tool>``, asks with the title ``<tool> (<server> MCP
        Server)``, and may use the bare ``<tool>``."""
        prefix = f"mcp_{server}_"
        if tool_name.startswith(prefix):
            return bare_tool_name(tool_name[len(prefix):])
        return title_mcp_tool(tool_name, server) or bare_tool_name(tool_name)

    # --- launch -----------------------------------------------------------------------------------

    def build_launch(self, spec: SpawnSpec) -> Launch:
        profile = spec.profile
        argv = list(profile.command or ("gemini",))
        if not any(flag in argv for flag in ACP_FLAGS):
            argv.append("--acp")
        if profile.model and not any(a in ("-m", "--model") or a.startswith("--model=") for a in argv):
            argv += ["-m", profile.model]
        env = {"GEMINI_CLI_NO_RELAUNCH": "true", **profile.env}
        return Launch(argv=tuple(argv), env=env, cwd=spec.cwd)

    # --- start ------------------------------------------------------------------------------------

    async def start(self, spec: SpawnSpec, launch: Launch, nursery: Any) -> AcpAgentProcess:
        if spec.resume_id:
            await self.prepare_load(spec.resume_id, launch)
        before = time.time()
        agent = await super().start(spec, launch, nursery)
        if not spec.resume_id and agent.session_id:
            recent = {chat_stamp(), chat_stamp(time.time() - 60)}
            self._created = {sid: s for sid, s in self._created.items() if s & recent}  # older: no risk
            self._created[agent.session_id] = {chat_stamp(before), chat_stamp()}
        return agent

    async def prepare_load(self, session_id: str, launch: Launch) -> None:
        """Work around the minute-boundary bug before ``session/load`` (see the module docstring)."""
        home = gemini_home(launch.env)
        import trio

        if await trio.to_thread.run_sync(chat_files, home, session_id):
            await trio.to_thread.run_sync(unclobber, home, session_id)
            return
        if chat_stamp() in self._created.get(session_id, ()):
            await trio.sleep(60 - time.time() % 60 + 0.5)
