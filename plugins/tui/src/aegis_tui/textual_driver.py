"""A Textual driver (Textual's own sense of the word: its terminal I/O back end) that survives losing its terminal.

When the terminal goes away (the window closed, ``tmux kill-session``, SSH dropped) every write to it
fails; Textual's writer thread dies on the first failure and the next write blocks forever on its full
queue, so the app can never exit and its agents would never be reaped. This driver drops output once
the writer thread is gone (or stuck) instead, so quitting on SIGHUP always finishes.
"""

from __future__ import annotations

import queue
from typing import Any

WRITE_TIMEOUT = 2.0


def resilient(driver_class: type) -> type:
    """A subclass of ``driver_class`` (Textual's Linux driver) whose writes never block forever."""

    class ResilientDriver(driver_class):  # type: ignore[misc, valid-type]
        _terminal_gone = False

        def write(self, data: str) -> None:
            writer: Any = getattr(self, "_writer_thread", None)
            if self._terminal_gone or writer is None:
                return
            if not writer.is_alive():
                self._terminal_gone = True
                return
            try:
                writer._queue.put(data, timeout=WRITE_TIMEOUT)
            except queue.Full:
                self._terminal_gone = True
            except AttributeError:  # a Textual without the queue: plain write
                writer.write(data)

        def close(self) -> None:
            if self._terminal_gone:
                return  # stopping the writer thread would block on its full queue
            writer: Any = getattr(self, "_writer_thread", None)
            if writer is not None and not writer.is_alive():
                return
            super().close()

    ResilientDriver.__name__ = f"Resilient{driver_class.__name__}"
    return ResilientDriver
