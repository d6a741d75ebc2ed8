"""Fixtures of the queue unit tests (helpers are in queue_testkit)."""

from __future__ import annotations

import pytest
from queue_testkit import CONFIG, QDriver

from aegis_kernel.testing import DriverPlugin


@pytest.fixture
def qdriver(write_config, register_plugin):
    """The queue test config and its in-memory driver (``qfake``), registered."""
    write_config(CONFIG)
    driver = QDriver()
    register_plugin(DriverPlugin(driver))
    return driver
