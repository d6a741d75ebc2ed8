"""What only a vendor knows comes from its driver, not from a table in the kernel: the agent binary
``aegis doctor`` looks for, the context window metrics count against, and (test_approvals.py) how the
vendor spells Aegis's MCP tools."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from aegis_acp.driver import AcpDriver
from aegis_claude.driver import ClaudeDriver
from aegis_gemini.driver import GeminiDriver
from aegis_kernel.testing import DriverPlugin, FakeDriver
from aegis_opencode.driver import OpenCodeDriver
from aegis_scripted.driver import ScriptedDriver


@pytest.mark.parametrize("driver,binary,window", [
    (ClaudeDriver(), "claude", 200_000), (GeminiDriver(), "gemini", 1_048_576),
    (OpenCodeDriver(), "opencode", 200_000), (AcpDriver(), None, 0), (ScriptedDriver(), None, 0),
])
def test_each_driver_names_its_binary_and_context_window(driver, binary, window):
    assert driver.binary == binary
    assert driver.context_window(None) == window


class WideDriver(FakeDriver):
    def context_window(self, model):
        return {"wide-1": 123_000}.get(model, 0)


@pytest.mark.trio
async def test_a_sessions_context_window_is_its_drivers(write_config, register_plugin, make_kernel):
    write_config("""\
        default_agent: wide
        agents:
          wide: {provider: wide, model: wide-1}
          plain: {provider: fake}
    """)
    register_plugin(DriverPlugin(WideDriver(name="wide"), FakeDriver()))
    async with make_kernel() as kernel:
        wide = await kernel.sessions.spawn("wide", prompt="hi")
        plain = await kernel.sessions.spawn("plain")
        await wide.wait_for(lambda s: s.metrics.turns == 1)
        assert wide.info()["metrics"]["context_size"] == 123_000
        assert wide.info()["metrics"]["context_pct"] is not None
        assert plain.info()["metrics"]["context_size"] == 0  # a driver that does not know says nothing


def aegis(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aegis_kernel.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=60, env={**os.environ, "PATH": "/usr/bin:/bin"})


def test_doctor_looks_for_the_binaries_of_the_enabled_drivers(aegis_project):
    out = aegis("doctor", cwd=aegis_project)
    binaries = [line.split(":")[0].split()[-1] for line in out.stdout.splitlines() if "not on PATH" in line]
    assert binaries == ["claude", "gemini", "opencode"]
    (aegis_project / ".aegis.yaml").write_text("plugins:\n  disabled: [gemini]\nagents:\n  a:\n    provider: scripted\n")
    out = aegis("doctor", cwd=aegis_project)
    assert out.returncode == 0, out.stdout
    assert "claude: not on PATH" in out.stdout and "gemini:" not in out.stdout


def test_doctor_with_a_broken_config_still_lists_the_drivers_binaries(aegis_project):
    (aegis_project / ".aegis.yaml").write_text("agents: 3\n")
    out = aegis("doctor", cwd=aegis_project)
    assert out.returncode == 1 and "✗ config:" in out.stdout
    assert "opencode: not on PATH" in out.stdout
