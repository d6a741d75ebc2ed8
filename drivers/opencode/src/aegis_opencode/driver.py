"""The OpenCode driver (provider ``opencode``): :class:`aegis_acp.driver.AcpDriver` running ``opencode acp``.

- **argv** ``opencode acp``; ``profile.command`` replaces ``opencode`` (``acp`` is not added twice).
- **model**: OpenCode has no model flag in ACP mode; ``profile.model`` (``provider/model``, e.g.
  ``anthropic/claude-sonnet-4-5``) goes into ``OPENCODE_CONFIG_CONTENT`` as ``{"model": …}``, merged
  into whatever config JSON is already there (the profile's ``env``, else our own environment).
  OpenCode layers that inline config over its config files.
- **usage**: the ``session/prompt`` result carries ``usage {inputTokens, outputTokens, totalTokens,
  cachedReadTokens, cachedWriteTokens?, thoughtTokens?}`` with ``inputTokens`` *excluding* the cache
  (OpenAI ``prompt_tokens`` − ``cached_tokens``) — exactly the kernel's ``TokenUsage`` split; the
  ``usage_update {used, size, cost}`` notifications become context-window ``UsageUpdate`` events.
  Both mappings live in :mod:`aegis_acp.codec`; this driver keeps them (``usage_from_result``).
- **permissions**: OpenCode runs MCP tools (ours included) without asking; what its own permission
  config says ``ask`` for arrives as ``session/request_permission`` and goes to the approval broker.
- **resume** is ``session/load`` (OpenCode replays the history before answering it).
"""

from __future__ import annotations

import json
import os
from typing import Any

from aegis_acp.driver import AcpConfigError, AcpDriver
from aegis_kernel import Launch, SpawnSpec, bare_tool_name

CONFIG_ENV = "OPENCODE_CONFIG_CONTENT"


def config_content(model: str | None, existing: str | None) -> str | None:
    """``OPENCODE_CONFIG_CONTENT`` with ``model`` set, keeping every other key of ``existing``.

    Returns ``existing`` unchanged when there is no model to set. Raises ``ValueError`` when
    ``existing`` is not a JSON object (a model cannot be merged into it).
    """
    if not model:
        return existing
    config: dict[str, Any] = {}
    if existing and existing.strip():
        loaded = json.loads(existing)
        if not isinstance(loaded, dict):
            raise ValueError(f"{CONFIG_ENV} is not a JSON object")
        config = loaded
    config["model"] = model
    return json.dumps(config, separators=(",", ":"))


class OpenCodeDriver(AcpDriver):
    """OpenCode over ACP (``opencode acp``)."""

    name = "opencode"
    supports_resume = True
    binary = "opencode"
    startup_timeout = 120.0

    def context_window(self, model: str | None) -> int:
        """200k tokens unless the agent says otherwise (OpenCode reports its model's size in ``usage_update``)."""
        return 200_000

    def mcp_tool(self, tool_name: str, server: str) -> str | None:
        """OpenCode names MCP tools ``<server>_<tool>`` (it runs them without asking, though)."""
        prefix = f"{server}_"
        return bare_tool_name(tool_name[len(prefix):]) if tool_name.startswith(prefix) else None

    def build_launch(self, spec: SpawnSpec) -> Launch:
        profile = spec.profile
        argv = list(profile.command or ("opencode",))
        if "acp" not in argv[1:]:
            argv.append("acp")
        env = dict(profile.env)
        existing = env.get(CONFIG_ENV, os.environ.get(CONFIG_ENV))
        try:
            content = config_content(profile.model, existing)
        except ValueError as exc:
            raise AcpConfigError(
                f"agent '{spec.profile_name}': cannot set model {profile.model!r}: {exc} "
                f"(got {existing[:200]!r})") from None
        if content is not None and content != existing:
            env[CONFIG_ENV] = content
        return Launch(argv=tuple(argv), env=env, cwd=spec.cwd)
