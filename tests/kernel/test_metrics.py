"""Honest metrics: true input with cache, provisional peaks, context = peak single request."""

from aegis_kernel.events import TokenUsage, ToolUse, TurnResult, UsageUpdate
from aegis_kernel.metrics import SessionMetrics, status_line


def test_true_input_counts_cache_and_cached_pct():
    u = TokenUsage(input=100, output=20, cache_read=800, cache_creation=100)
    assert u.true_input == 1000 and u.cached_pct == 80


def test_context_is_the_peak_single_request_not_the_sum():
    m = SessionMetrics(provider="claude-code", context_size=200_000)  # the window its driver gives
    m.begin_turn()
    m.observe(UsageUpdate(usage=TokenUsage(input=10, cache_read=40_000, output=5)))
    m.observe(ToolUse("t1", "Read"))
    m.observe(UsageUpdate(usage=TokenUsage(input=10, cache_read=41_000, output=50)))
    assert m.streaming and status_line(m).startswith("~↑41k")
    m.observe(TurnResult(usage=TokenUsage(input=20, cache_read=81_000, output=55), num_requests=2))
    assert m.context_used == 41_010
    assert m.context_pct == 21  # of the 200k window
    assert m.total.true_input == 81_020 and m.tool_calls == 1
    assert status_line(m) == "↑81k (100% cached) ↓55 · ⚒ 1 · ctx 41k (21%)"


def test_summed_multi_request_usage_never_becomes_context():
    m = SessionMetrics(provider="gemini")
    m.begin_turn()
    m.observe(ToolUse("t1", "echo"))
    m.observe(TurnResult(usage=TokenUsage(input=222, output=44)))  # no per-request usage, two requests
    assert m.context_used == 0
    m.begin_turn()
    m.observe(TurnResult(usage=TokenUsage(input=111, output=22), num_requests=1))
    assert m.context_used == 111


def test_agent_reported_context_and_cost_win():
    m = SessionMetrics(provider="opencode")
    m.begin_turn()
    m.observe(UsageUpdate(context_used=5000, context_size=100_000, cost_usd=0.25))
    m.observe(TurnResult(usage=TokenUsage(input=104, output=22, cache_read=7)))
    assert (m.context_used, m.context_size, m.context_pct) == (5000, 100_000, 5)
    assert status_line(m).endswith("$0.25")
