"""Fixtures of the terminal tests (helpers are in terminal_testkit)."""

from __future__ import annotations

import pytest
from terminal_testkit import CONFIG

from aegis_kernel.testing import DriverPlugin, FakeDriver


@pytest.fixture
def fake(write_config, register_plugin, monkeypatch, tmp_path):
    """The terminal test config (agents on the in-memory driver ``fake``, no MCP plane), registered; the
    shells see an empty home (no user rc files) unless a test writes some."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("ZDOTDIR", raising=False)
    monkeypatch.delenv("PROMPT_COMMAND", raising=False)
    write_config(CONFIG)
    driver = FakeDriver(lambda text: "ok")
    register_plugin(DriverPlugin(driver))
    return driver
