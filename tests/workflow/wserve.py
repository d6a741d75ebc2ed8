"""A real ``aegis serve`` subprocess for the workflow end-to-end tests, and CLI helpers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aegis_testkit.serve import ServeProcess, wait_for


class Serve(ServeProcess):
    """:class:`aegis_testkit.serve.ServeProcess` whose ``kill9`` kills the serve's process group (the
    serve only: agents are in their own groups)."""

    def kill9(self, *, group: bool = True) -> None:
        super().kill9(group=group)


def wait(predicate: Any, what: str, timeout: float = 60, poll: float = 0.1) -> Any:
    """Poll until ``predicate()`` is truthy (observing real processes); fail after ``timeout`` s."""
    return wait_for(predicate, what, timeout=timeout, poll=poll)


def runs_dir(project: Path) -> Path:
    return project / ".aegis" / "state" / "workflows" / "runs"


def records(project: Path, run_id: str) -> list[dict[str, Any]]:
    path = runs_dir(project) / f"{run_id}.jsonl"
    if not path.exists():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            pass  # a line being written
    return out


def inbox(project: Path, handle: str) -> list[dict[str, Any]]:
    """The envelopes ever queued for ``handle`` (its inbox ledger)."""
    path = project / ".aegis" / "state" / "inboxes" / f"{handle}.jsonl"
    if not path.exists():
        return []
    recs = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r["envelope"] for r in recs if r.get("op") == "queued"]
