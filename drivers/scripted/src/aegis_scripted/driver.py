"""The ``scripted`` provider: the ACP driver running the embedded deterministic agent."""

from __future__ import annotations

import sys

from aegis_acp.driver import AcpDriver
from aegis_kernel.drivers import SpawnSpec


class ScriptedDriver(AcpDriver):
    """Runs ``[sys.executable, "-m", "aegis_scripted"]`` (a profile ``command`` still overrides it).

    The agent keeps its session history under ``<kernel state>/scripted/`` (``AEGIS_SCRIPTED_STATE``)
    so ``session/load`` works across restarts.
    """

    name = "scripted"
    startup_timeout = 30.0

    def default_command(self, spec: SpawnSpec) -> tuple[str, ...]:
        return (sys.executable, "-m", "aegis_scripted")

    def extra_env(self, spec: SpawnSpec) -> dict[str, str]:
        return {"AEGIS_SCRIPTED_STATE": str(spec.state_dir / "scripted")}
