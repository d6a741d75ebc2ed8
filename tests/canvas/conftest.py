"""Fixtures of the canvas tests (helpers are in canvas_testkit)."""

from __future__ import annotations

import pytest
from canvas_testkit import CONFIG

from aegis_kernel.testing import DriverPlugin, FakeDriver


@pytest.fixture
def fake(write_config, register_plugin):
    """The canvas test config (agents on the in-memory driver ``fake``, no MCP plane), registered."""
    write_config(CONFIG)
    driver = FakeDriver(lambda text: "ok")
    register_plugin(DriverPlugin(driver))
    return driver
