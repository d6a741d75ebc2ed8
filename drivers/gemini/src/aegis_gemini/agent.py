"""The running Gemini agent (heavy: trio, the ACP client); imported only when a Gemini agent starts."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import trio
from aegis_acp.agent import AcpAgentProcess
from aegis_acp.codec import UpdateTranslator

if TYPE_CHECKING:
    from .driver import GeminiDriver


class _TimedTranslator(UpdateTranslator):
    """The ACP translator, noting when the last ``session/update`` arrived."""

    def __init__(self) -> None:
        super().__init__()
        self.last_update = time.monotonic()

    def update(self, params: Any, raw: Any = None) -> list[Any]:
        self.last_update = time.monotonic()
        return super().update(params, raw)


class GeminiAgentProcess(AcpAgentProcess):
    """Reports ``SystemInit`` of a loaded session only once Gemini's history replay has settled.

    Gemini 0.61 answers ``session/load`` first and streams the history after it; the kernel takes the
    ``SystemInit`` as the end of the replayed history, so it must come after the replay.
    """

    driver: GeminiDriver

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client.translator = self._translator = _TimedTranslator()

    async def settle_replay(self) -> None:
        """Return once no ``session/update`` came for ``replay_quiet`` s (at most ``replay_max`` s)."""
        quiet = self.driver.replay_quiet
        begun = time.monotonic()
        deadline = begun + self.driver.replay_max
        while (now := time.monotonic()) < deadline:
            idle = now - max(begun, self._translator.last_update)
            if idle >= quiet:
                return
            await trio.sleep(quiet - idle)
