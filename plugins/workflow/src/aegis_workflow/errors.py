"""The errors of workflow runs (stdlib only).

A step's failure is journaled with its class name and message; a replay raises the same class again
(:func:`error_from_record`) so a workflow that catches it takes the same path the second time.
"""

from __future__ import annotations

from typing import Any


class WorkflowError(Exception):
    """A workflow cannot go on: unknown workflow or profile, a missing plugin, bad arguments."""


class StepFailed(WorkflowError):
    """An engine step failed (an agent's turn ended with an error, a session is gone, …)."""


class PredicateFailed(StepFailed):
    """``bash_predicate``'s command still failed after the last retry; ``result`` is its last run."""

    def __init__(self, message: str, result: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.result = result or {}


class HumanTimeout(StepFailed):
    """``ask_human`` got no answer within its timeout."""


class ReplayDiverged(WorkflowError):
    """A resumed run called something other than what its journal recorded at a step."""


_KINDS: dict[str, type[WorkflowError]] = {c.__name__: c for c in (
    WorkflowError, StepFailed, PredicateFailed, HumanTimeout, ReplayDiverged)}


def error_record(exc: BaseException) -> dict[str, Any]:
    """What the journal keeps of a step's failure."""
    out: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    if isinstance(exc, PredicateFailed):
        out["result"] = exc.result
    return out


def error_from_record(rec: dict[str, Any]) -> WorkflowError:
    """The exception a replayed failed step raises: the recorded class when it is one of ours, else
    :class:`StepFailed` with the recorded ``Type: message``."""
    kind, message = str(rec.get("type") or "StepFailed"), str(rec.get("message") or "")
    if kind == "PredicateFailed":
        return PredicateFailed(message, rec.get("result"))
    cls = _KINDS.get(kind)
    return cls(message) if cls is not None else StepFailed(f"{kind}: {message}")
