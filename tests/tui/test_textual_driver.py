"""The TUI's Textual driver (``aegis_tui.textual_driver``: Textual's terminal back end, not an Aegis terminal)
keeps the app able to quit when its terminal is gone."""

from __future__ import annotations

import queue
from pathlib import Path

from tui_testkit import make_app, make_project

from aegis_tui.textual_driver import resilient


class Recording:
    """Stands in for Textual's Linux driver: records what reaches the base class."""

    def __init__(self) -> None:
        self.closed = False

    def close(self) -> None:
        self.closed = True


class Writer:
    def __init__(self, alive: bool, size: int = 10) -> None:
        self._alive = alive
        self._queue: queue.Queue[str] = queue.Queue(size)

    def is_alive(self) -> bool:
        return self._alive


def test_the_app_runs_textuals_linux_driver_wrapped(tmp_path: Path, monkeypatch) -> None:
    from textual.app import App
    from textual.drivers.linux_driver import LinuxDriver

    monkeypatch.setattr(App, "get_driver_class", lambda self: LinuxDriver)  # what Textual picks on Linux
    driver_class = make_app(make_project(tmp_path)).get_driver_class()
    assert driver_class.__name__ == "ResilientLinuxDriver" and issubclass(driver_class, LinuxDriver)


def test_writes_after_the_writer_thread_died_are_dropped_and_close_returns() -> None:
    driver = resilient(Recording)()
    driver._writer_thread = Writer(alive=True)
    driver.write("frame 1")
    assert driver._writer_thread._queue.get_nowait() == "frame 1"
    driver._writer_thread = Writer(alive=False)
    driver.write("frame 2")  # would block forever on a dead writer's queue
    assert driver._terminal_gone
    driver.close()
    assert not driver.closed  # stopping the writer would block too
