"""Aegis driver for Claude Code (provider key ``claude-code``): stream-json over stdio.

- :mod:`aegis_claude.codec` — the sans-I/O stream-json codec (frames → events, messages, argv);
- :mod:`aegis_claude.driver` — the trio driver (``ClaudeDriver``) built on it;
- :mod:`aegis_claude.plugin` — the entry point (``aegis_register_drivers``).
"""

__version__ = "0.1.0"
