"""The kernel's own configuration records: agent profiles and the plugins section."""

from __future__ import annotations

from attrs import field, frozen

PERMISSIONS = ("read", "write", "full", "auto")


@frozen
class AgentProfile:
    """One entry of ``agents:`` in ``.aegis.yaml``.

    ``command`` overrides the binary / argv prefix (wrappers, pinned binaries, any ACP agent);
    ``env`` adds environment (gateway base URLs, keys); ``prompt`` is a persona file path.
    """

    provider: str
    model: str | None = None
    effort: str | None = None
    permission: str = "write"
    prompt: str | None = None
    cwd: str | None = None
    command: tuple[str, ...] | None = None
    env: dict[str, str] = field(factory=dict)
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()
    worktree: bool = False
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if self.permission not in PERMISSIONS:
            raise ValueError(f"permission must be one of {', '.join(PERMISSIONS)}, got {self.permission!r}")


@frozen
class PluginsSection:
    disabled: tuple[str, ...] = ()
