"""Aegis driver for OpenCode (provider key ``opencode``): the ACP driver running ``opencode acp``.

- :mod:`aegis_opencode.driver` — ``OpenCodeDriver`` (argv, model through ``OPENCODE_CONFIG_CONTENT``,
  usage from the prompt result's ``usage`` and ``usage_update``);
- :mod:`aegis_opencode.plugin` — the entry point (``aegis_register_drivers``).
"""

__version__ = "0.1.0"
