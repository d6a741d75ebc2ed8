"""Aegis scripted agent: a deterministic ACP agent subprocess (``python -m aegis_scripted``) and the
``scripted`` driver that runs it. This package imports nothing at import time: the agent's start-up
must stay fast and ``aegis plugins list`` must stay light."""

__version__ = "0.1.0"
