"""Fixtures of the groups unit tests (helpers are in gkit)."""

from __future__ import annotations

import pytest
from gkit import CONFIG, GDriver

from aegis_kernel.testing import DriverPlugin


@pytest.fixture
def gdriver(write_config, register_plugin):
    """The groups test config and its in-memory driver (``gfake``), registered."""
    write_config(CONFIG)
    driver = GDriver()
    register_plugin(DriverPlugin(driver))
    return driver
