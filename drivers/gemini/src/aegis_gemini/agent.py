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
        self._holding = False
        self._held: tuple[str, str | None] | None = None

    def _set_session(self, sid: str, model: str | None) -> None:
        if self._holding:
            self.session_id = self.client.session_id = sid
            self._held = (sid, model)
            return
        super()._set_session(sid, model)

    async def _start_session(self) -> None:
        self._holding = bool(self.spec.resume_id)
        try:
            await super()._start_session()
            if self._held is not None:
                await self._replay_settled()
        finally:
            self._holding = False
        if self._held is not None:
            held, self._held = self._held, None
            super()._set_session(*held)

    async def _replay_settled(self) -> None:
        """Return once no ``session/update`` came for ``replay_quiet`` s (at most ``replay_max`` s)."""
        quiet = self.driver.replay_quiet
        begun = time.monotonic()
        deadline = begun + self.driver.replay_max
        while (now := time.monotonic()) < deadline:
            idle = now - max(begun, self._translator.last_update)
            if idle >= quiet:
                return
            await trio.sleep(quiet - idle)
