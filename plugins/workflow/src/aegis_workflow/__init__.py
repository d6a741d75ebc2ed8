"""aegis-workflow: deterministic Python orchestration of agents, durable across crashes.

``from aegis_workflow import workflow`` then ``@workflow("name")`` on ``async def fn(engine, **kwargs)``.
The errors a workflow may catch or raise are importable from here too. Import-light: the engine
(trio) is imported only when a run starts.
"""

from __future__ import annotations

from .decorator import WorkflowDef, workflow
from .errors import HumanTimeout, PredicateFailed, ReplayDiverged, StepFailed, WorkflowError

__all__ = ["HumanTimeout", "PredicateFailed", "ReplayDiverged", "StepFailed", "WorkflowDef", "WorkflowError",
           "workflow"]
