"""Fixtures of the workflow tests (helpers are in wkit)."""

from __future__ import annotations

import pytest
from wkit import CONFIG, Flows

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted, aegis-scripted) is not installed")


@pytest.fixture
def flows(write_config, register_plugin):
    """The workflow test config (scripted agents) and the test workflows, registered."""
    write_config(CONFIG)
    register_plugin(Flows())
