"""The ``queues:`` config section (owned by aegis-queue).

.. code-block:: yaml

    queues:
      review:
        agent: reviewer          # agent profile spawned once per task
        max_parallel: 4          # at most this many workers alive at once (default 1)
        timeout: 30m             # per-task deadline (s/m/h/d; default 1h; null = none)
        worktree: false          # true: each worker gets its own git worktree + branch
        base: HEAD               # the ref worktrees start from (resolved to a commit at enqueue)
        budgets:                 # enforced by aegis-budget (refused at enqueue when absent)
          - {usd: 1.00, window: 1h}
          - {output_tokens: 500000, window: 1h}

Budget rules are declared here (the section has one owner) and enforced by the budget plugin.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from attrs import frozen

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h|d|w)?\s*$")
_WINDOW_RE = re.compile(r"^(\d+)(m|h|d|w)$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(value: str | int | float | None, *, what: str = "duration") -> float | None:
    """``"90s"``, ``"10m"``, ``"1h"``, ``"2d"``, ``600`` → seconds; None/"none" → None."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"{what} must be a duration like 90s, 10m, 1h, got {value!r}")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        if value.strip().lower() in ("", "none", "null", "off"):
            return None
        match = _DURATION_RE.match(value)
        if not match:
            raise ValueError(f"{what} must be a duration like 90s, 10m, 1h, got {value!r}")
        seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if seconds <= 0:
        raise ValueError(f"{what} must be positive, got {value!r}")
    return seconds


def parse_window(window: str) -> int:
    """A budget window ``<int><m|h|d|w>`` (``30m``, ``1h``, ``24h``, ``7d``) → seconds."""
    match = _WINDOW_RE.match(str(window).strip())
    if not match or int(match.group(1)) <= 0:
        raise ValueError(f"budget window must look like 30m, 1h, 24h or 7d, got {window!r}")
    return int(match.group(1)) * _UNITS[match.group(2)]


@frozen
class BudgetRule:
    """One rolling ceiling: exactly one of ``usd`` / ``output_tokens``, over ``window``.

    ``estimate`` (optional) is the spend assumed for each admitted-but-unfinished task in this
    dimension; without it the budget plugin uses the queue's recent average.
    """

    window: str
    usd: float | None = None
    output_tokens: int | None = None
    estimate: float | None = None

    def __attrs_post_init__(self) -> None:
        given = [name for name in ("usd", "output_tokens") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError("a budget rule has exactly one of 'usd' or 'output_tokens' "
                             f"(got {', '.join(given) or 'neither'})")
        limit = self.usd if self.usd is not None else self.output_tokens
        if limit is None or limit <= 0:
            raise ValueError(f"budget limit must be positive, got {limit!r}")
        if self.estimate is not None and self.estimate < 0:
            raise ValueError(f"budget estimate must be ≥ 0, got {self.estimate!r}")
        parse_window(self.window)

    @property
    def constraint(self) -> str:
        return "usd" if self.usd is not None else "output_tokens"

    @property
    def limit(self) -> float | int:
        return self.usd if self.usd is not None else self.output_tokens  # type: ignore[return-value]

    @property
    def window_s(self) -> int:
        return parse_window(self.window)


@frozen
class QueueSpec:
    """One entry of ``queues:``."""

    agent: str
    max_parallel: int = 1
    timeout: str | float | None = "1h"
    worktree: bool = False
    base: str = "HEAD"
    budgets: tuple[BudgetRule, ...] = ()
    description: str = ""

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.max_parallel, int) or isinstance(self.max_parallel, bool) or self.max_parallel < 1:
            raise ValueError(f"max_parallel must be an integer ≥ 1, got {self.max_parallel!r}")
        parse_duration(self.timeout, what="timeout")
        if not self.agent:
            raise ValueError("agent must name an agent profile")
        seen: set[tuple[str, int]] = set()
        for rule in self.budgets:
            key = (rule.constraint, rule.window_s)
            if key in seen:
                raise ValueError(f"duplicate budget rule: {rule.constraint} over {rule.window}")
            seen.add(key)

    @property
    def timeout_s(self) -> float | None:
        return parse_duration(self.timeout, what="timeout")


def check_queue_name(name: str) -> None:
    """Raise ValueError unless ``name`` is a safe file name (the ledger is ``queues/<name>.jsonl``)."""
    from aegis_kernel import check_safe_name

    problem = check_safe_name(name, "queue")
    if problem is not None:
        raise ValueError(problem)


def check_queues(config: Any) -> Iterator[tuple[tuple[str, ...], str]]:
    """The section's semantic check (run at load, see ``aegis_kernel.config_sections.Section``): every
    queue name is a safe file name and every queue's ``agent`` is a configured agent profile."""
    from aegis_kernel import check_safe_name

    agents = config.get("agents") or {}
    for name, spec in (config.get("queues") or {}).items():
        problem = check_safe_name(name, "queue")
        if problem is not None:
            yield ("queues", name), problem
        if spec.agent not in agents:
            yield (("queues", name, "agent"),
                   f"unknown agent {spec.agent!r} (configured: {', '.join(sorted(agents)) or 'none'})")
