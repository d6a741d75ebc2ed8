"""Fixtures of the scheduler tests (helpers are in skit)."""

from __future__ import annotations

import pytest
from skit import Flows

pytest.importorskip("aegis_scripted", reason="the scripted agent (drivers/scripted, aegis-scripted) is not installed")


@pytest.fixture
def flows(register_plugin):
    """The test workflows (``tick``, ``slow``, ``boom``) registered, and the calls they saw."""
    return register_plugin(Flows())


@pytest.fixture
def pin_wall(monkeypatch):
    """``pin_wall(iso)``: kernels built afterwards read the wall clock from ``iso``, moved only by the
    run's trio clock (the test takes ``autojump_clock``)."""
    from aegis_kernel import Clock

    def pin(start: str) -> None:
        monkeypatch.setattr("aegis_kernel.kernel.Clock", lambda: Clock(wall_start=start))

    return pin
