"""Aegis driver for Gemini CLI (provider key ``gemini``): the ACP driver running ``gemini --acp``.

- :mod:`aegis_gemini.driver` — ``GeminiDriver`` (argv, env, the ``session/load`` minute-boundary
  workaround, usage from ``_meta.quota.token_count``);
- :mod:`aegis_gemini.plugin` — the entry point (``aegis_register_drivers``).
"""

__version__ = "0.1.0"
