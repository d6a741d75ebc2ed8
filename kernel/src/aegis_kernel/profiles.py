"""The kernel's own configuration records (agent profiles, the plugins section) and their semantic checks."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from attrs import field, frozen

if TYPE_CHECKING:
    from .config import Config
    from .config_sections import Issue

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
    """``plugins:`` — ``disabled`` plugin names; ``dirs``: plugin folders (each ``*.py`` in them is a plugin;
    relative paths are from the project folder)."""

    disabled: tuple[str, ...] = ()
    dirs: tuple[str, ...] = ()


def check_default_agent(config: Config) -> Iterator[Issue]:
    """``default_agent`` names a configured agent."""
    default = config.get("default_agent")
    agents = config.get("agents") or {}
    if default is not None and default not in agents:
        yield ("default_agent",), f"unknown agent {default!r} (configured: {', '.join(sorted(agents)) or 'none'})"


def check_agents(config: Config) -> Iterator[Issue]:
    """Each agent's ``provider`` is a registered driver that accepts the profile.

    The driver is asked through its pure ``build_launch`` on a dry spec: a driver refuses a profile by
    raising ``ValueError`` (the generic ``acp`` driver without ``command``). Skipped when the config
    was loaded without the plugin host (``config.drivers`` is None).
    """
    if config.drivers is None:
        return
    from .drivers import SpawnSpec

    for name, profile in (config.get("agents") or {}).items():
        driver = config.drivers.get(profile.provider)
        if driver is None:
            known = ", ".join(sorted(config.drivers)) or "none"
            yield (("agents", name, "provider"), f"unknown provider {profile.provider!r} (installed: {known}); "
                   "is the driver plugin installed and enabled?")
            continue
        spec = SpawnSpec(handle="config-check", profile_name=name, profile=profile, cwd=config.project_dir,
                         state_dir=config.project_dir / ".aegis" / "state")
        try:
            driver.build_launch(spec)
        except ValueError as exc:
            yield ("agents", name), str(exc)
