"""The driver seam: how the kernel starts an agent and talks to it.

A driver is registered under a provider key (``claude-code``, ``acp``, ``gemini``, ``opencode``,
``scripted``) through ``aegis_register_drivers(register)``. Spawning goes:

1. the kernel builds a :class:`SpawnSpec` from the agent profile;
2. ``driver.build_launch(spec)`` returns a :class:`Launch` (argv, env, cwd) — pure, no I/O;
3. ``aegis_pre_spawn(spec, launch)`` hooks may rewrite the launch or refuse it (the MCP plugin sets
   :attr:`Launch.mcp` there: the kernel itself knows no MCP endpoint);
4. ``await driver.start(spec, launch, nursery)`` starts the process inside ``nursery`` and returns a
   running :class:`AgentProcess`.

Secrets: :attr:`Launch.mcp` carries the agent's secret MCP URL. A driver hands it over without putting
it in argv (``/proc/<pid>/cmdline`` is readable by every local user): over the protocol (ACP
``session/new``), in the environment, or in a file of :func:`private_dir` (0600 in a 0700 folder).

Above this seam every provider looks the same.
"""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from attrs import evolve, field, frozen

if TYPE_CHECKING:
    import trio

    from .events import DriverEvent
    from .profiles import AgentProfile


@frozen
class McpEndpoint:
    """Where the agent reaches the Aegis MCP plane; the token in the URL is its identity (a secret:
    ``repr`` shows neither the URL nor the headers, so a logged launch or spec never carries it)."""

    url: str = field(repr=False)
    name: str = "aegis"
    headers: Mapping[str, str] = field(factory=dict, repr=False)


@frozen
class SpawnSpec:
    """What the kernel asks a driver to start. ``mcp`` is for callers driving a driver directly (the
    kernel leaves it None; the MCP plugin puts the endpoint in :attr:`Launch.mcp`)."""

    handle: str
    profile_name: str
    profile: AgentProfile
    cwd: Path
    state_dir: Path
    mcp: McpEndpoint | None = None
    resume_id: str | None = None
    system_prompt: str = ""


@frozen
class Launch:
    """How an agent process is started. ``mcp``: the MCP server the agent is to reach (a secret, never
    to be put in ``argv``; see the module docstring), set by ``aegis_pre_spawn`` hooks."""

    argv: tuple[str, ...]
    env: Mapping[str, str] = field(factory=dict)
    cwd: Path | None = None
    mcp: McpEndpoint | None = None

    def with_env(self, **extra: str) -> Launch:
        return evolve(self, env={**self.env, **extra})

    def with_mcp(self, mcp: McpEndpoint | None) -> Launch:
        return evolve(self, mcp=mcp)


def private_dir(state_dir: Path, *parts: str) -> Path:
    """``<state_dir>/private/<parts…>``, created owner-only (0700, each level; an existing folder's
    mode is fixed): where drivers put files holding secrets (mode 0600), e.g. an MCP config.

    Each level below ``state_dir`` must be a real folder of ours: a symlink, a non-folder or another
    user's folder there raises :class:`PermissionError` naming it (a secret file is never written, nor a
    mode changed, behind something someone else planted). Checked on ``O_NOFOLLOW`` descriptors."""
    import os
    import stat

    path = Path(state_dir, "private", *parts)
    Path(state_dir).mkdir(mode=0o700, parents=True, exist_ok=True)
    level = Path(state_dir)
    for part in ("private", *parts):
        level = level / part
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:
            pass
        try:
            fd = os.open(level, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0))
        except OSError as exc:
            kind = "a symlink" if level.is_symlink() else f"not a folder ({exc.strerror})"
            raise PermissionError(f"refusing the private folder {level}: it is {kind}; remove it") from None
        try:
            st = os.fstat(fd)
            if st.st_uid != os.geteuid():
                raise PermissionError(f"refusing the private folder {level}: it belongs to uid {st.st_uid}, "
                                      f"not to you (uid {os.geteuid()}); remove it")
            if stat.S_IMODE(st.st_mode) != 0o700:
                os.fchmod(fd, 0o700)
        finally:
            os.close(fd)
    return path


def bare_tool_name(tool_name: str) -> str | None:
    """``tool_name`` when it can be an unqualified MCP tool name (non-empty, no spaces), else None."""
    return tool_name if tool_name and " " not in tool_name else None


class SpawnRefused(Exception):
    """Raised by an ``aegis_pre_spawn`` hook (or a driver) to refuse a spawn with a reason."""


class AgentProcess(abc.ABC):
    """A running agent. Owned by the nursery passed to :meth:`Driver.start`.

    Contract:
    - :meth:`events` yields every event for the life of the process; each turn started with
      :meth:`prompt` ends with exactly one ``TurnResult``; when the process dies an ``AgentError``
      (argv, exit code, stderr tail) is yielded (ending any open turn) and the iterator ends.
    - :meth:`prompt` only starts a turn; it returns once the agent has the text.
    - :meth:`interrupt` asks the agent to stop the current turn; the turn still ends with a
      ``TurnResult`` (``stop_reason="cancelled"``) and the agent stays usable.
    - :meth:`close` is polite → terminate → kill the process group; it never hangs past ``grace``×2.
    """

    session_id: str | None = None
    pid: int | None = None

    @abc.abstractmethod
    def events(self) -> AsyncIterator[DriverEvent]: ...

    @abc.abstractmethod
    async def prompt(self, text: str) -> None: ...

    @abc.abstractmethod
    async def interrupt(self) -> None: ...

    async def answer_permission(self, request_id: str, allow: bool, *, always: bool = False) -> None:
        """Answer a ``PermissionRequest``; drivers that never ask may keep this default."""
        raise NotImplementedError

    @abc.abstractmethod
    async def close(self, grace: float = 2.0) -> None: ...


class Driver(abc.ABC):
    """One provider. Subclass, set :attr:`name`, implement both methods.

    What only the vendor knows is asked of its driver too (each has a default, so overriding is
    optional): :attr:`binary` (``aegis doctor``), :meth:`context_window` (the metrics' context use) and
    :meth:`mcp_tool` (how the approval broker recognises Aegis's own tools). The kernel has no table of
    vendors.
    """

    name: str = ""
    supports_resume: bool = False
    #: The agent CLI this driver runs (looked up on ``PATH`` by ``aegis doctor``); None when it needs no
    #: installed binary (an embedded agent, a generic protocol whose command the user configures).
    binary: str | None = None

    def context_window(self, model: str | None) -> int:
        """Tokens in the context window of ``model`` (None: the agent's default model); 0 when unknown.

        The session's metrics show context use against it until the agent reports its own size."""
        return 0

    def mcp_tool(self, tool_name: str, server: str) -> str | None:
        """The tool of MCP server ``server`` that ``tool_name`` names in this agent's spelling (as the
        agent puts it in a ``PermissionRequest``), else None (a built-in tool or another server's).

        The approval broker always allows Aegis's own tools: those of the Aegis server named ``aegis_*``.
        Default: :func:`bare_tool_name` (agents that ask with the tool's own name)."""
        return bare_tool_name(tool_name)

    @abc.abstractmethod
    def build_launch(self, spec: SpawnSpec) -> Launch:
        """Argv, env and cwd for this spec. Pure: no I/O, no process."""

    @abc.abstractmethod
    async def start(self, spec: SpawnSpec, launch: Launch, nursery: trio.Nursery) -> AgentProcess:
        """Start the process in ``nursery`` and return it once it accepts prompts."""
