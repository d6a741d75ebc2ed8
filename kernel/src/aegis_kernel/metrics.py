"""Honest per-session metrics, folded from driver events.

- true input = uncached + cache read + cache write; cached % = cache read / true input.
- committed totals change only at turn end (from the ``TurnResult``); while a turn streams, the
  provisional figures are the max of its single requests (shown with ``~``).
- context use = the *peak single request* true input of the last turn against the model window
  (never the sum of a turn's requests); an agent-reported ``context_used/size`` wins. The window
  (``context_size``) starts as the driver's :meth:`~aegis_kernel.drivers.Driver.context_window`.
"""

from __future__ import annotations

import time

from attrs import define, field

from .events import CompactBoundary, TokenUsage, ToolUse, TurnResult, UsageUpdate


@define
class SessionMetrics:
    provider: str = ""
    total: TokenUsage = field(factory=TokenUsage)
    turn_peak: TokenUsage = field(factory=TokenUsage)
    turn_output: int = 0
    turn_tools: int = 0
    turn_context_reported: bool = False
    tool_calls: int = 0
    turns: int = 0
    cost_usd: float | None = None
    context_used: int = 0
    context_size: int = 0
    compactions: int = 0
    streaming: bool = False
    started_at: float = field(factory=time.monotonic)
    turn_started_at: float | None = None
    last_turn_s: float = 0.0

    def begin_turn(self) -> None:
        self.streaming = True
        self.turn_peak = TokenUsage()
        self.turn_output = 0
        self.turn_tools = 0
        self.turn_context_reported = False
        self.turn_started_at = time.monotonic()

    def observe(self, event: object) -> None:
        if isinstance(event, ToolUse):
            self.tool_calls += 1
            self.turn_tools += 1
        elif isinstance(event, UsageUpdate):
            if event.usage is not None:
                u = event.usage
                if u.true_input >= self.turn_peak.true_input:
                    self.turn_peak = TokenUsage(u.input, max(u.output, self.turn_peak.output), u.cache_read,
                                                u.cache_creation)
                self.turn_output += u.output
                self.context_used = max(self.context_used if self.streaming else 0, u.true_input)
            if event.context_used is not None:
                self.context_used = event.context_used
                self.turn_context_reported = True
            if event.context_size:
                self.context_size = event.context_size
            if event.cost_usd is not None:
                self.cost_usd = event.cost_usd
        elif isinstance(event, CompactBoundary):
            self.compactions += 1
            self.context_used = event.post_tokens
        elif isinstance(event, TurnResult):
            self.end_turn(event)

    def end_turn(self, result: TurnResult) -> None:
        self.streaming = False
        self.turns += 1
        if result.usage is not None:
            self.total = self.total + result.usage
            single_request = result.num_requests == 1 or (result.num_requests is None and not self.turn_tools)
            if not self.turn_peak.true_input and not self.turn_context_reported and single_request:
                # a turn's summed usage is one request's only when the turn made one request
                self.context_used = result.usage.true_input
        if result.cost_usd is not None:
            self.cost_usd = (self.cost_usd or 0.0) + result.cost_usd
        if self.turn_started_at is not None:
            self.last_turn_s = time.monotonic() - self.turn_started_at
        self.turn_started_at = None

    @property
    def shown(self) -> TokenUsage:
        """Committed totals plus, while streaming, the current turn's provisional peak."""
        if self.streaming:
            return self.total + self.turn_peak
        return self.total

    @property
    def context_pct(self) -> int | None:
        return round(100 * self.context_used / self.context_size) if self.context_size else None

    def to_dict(self) -> dict[str, object]:
        u = self.shown
        return {
            "input": u.true_input, "cached_pct": u.cached_pct, "output": u.output, "cache_read": u.cache_read,
            "tool_calls": self.tool_calls, "turns": self.turns, "cost_usd": self.cost_usd,
            "context_used": self.context_used, "context_size": self.context_size,
            "context_pct": self.context_pct, "provisional": self.streaming,
            "turn_s": round(time.monotonic() - self.turn_started_at, 2) if self.turn_started_at else round(self.last_turn_s, 2),
            "session_s": round(time.monotonic() - self.started_at, 1),
        }


def format_tokens(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:.1f}M"
    if n >= 1000:
        return f"{round(n / 1000)}k"
    return str(n)


def status_line(m: SessionMetrics) -> str:
    """``↑128k (94% cached) ↓1k · ⚒ 3 · ctx 40k (20%) · $0.12``; ``~`` prefix while provisional."""
    u = m.shown
    mark = "~" if m.streaming else ""
    parts = [f"{mark}↑{format_tokens(u.true_input)} ({u.cached_pct}% cached) ↓{format_tokens(u.output)}"]
    if m.tool_calls:
        parts.append(f"⚒ {m.tool_calls}")
    if m.context_size and m.context_used:
        parts.append(f"ctx {format_tokens(m.context_used)} ({m.context_pct}%)")
    if m.cost_usd is not None:
        parts.append(f"${m.cost_usd:.2f}")
    return " · ".join(parts)
