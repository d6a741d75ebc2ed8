"""Aegis ACP driver: the provider ``acp`` (any Agent Client Protocol agent) and the shared ACP pieces
the gemini, opencode and scripted drivers build on.

Modules: :mod:`~aegis_acp.jsonrpc` (framing), :mod:`~aegis_acp.codec` (ACP ↔ kernel events, pure),
:mod:`~aegis_acp.client` (trio JSON-RPC client), :mod:`~aegis_acp.fs` (cwd-confined fs methods),
:mod:`~aegis_acp.driver` (:class:`~aegis_acp.driver.AcpDriver`). Import them directly; this package
imports nothing on purpose (plugin discovery must stay fast).
"""

__version__ = "0.1.0"
