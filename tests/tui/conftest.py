"""The ``tui_mode`` fixture: a test that takes it runs once owning the kernel and once attached to a serve."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import tui_testkit


@pytest.fixture(params=["owning", "attached"])
def tui_mode(request: pytest.FixtureRequest) -> Iterator[str]:
    tui_testkit.MODE["mode"] = request.param
    try:
        yield request.param
    finally:
        tui_testkit.MODE["mode"] = "owning"
        tui_testkit.stop_serves()
