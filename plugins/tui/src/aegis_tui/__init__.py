"""Aegis TUI: the Textual app (:mod:`aegis_tui.app`), ``aegis tui`` and ``aegis demo`` (:mod:`aegis_tui.cli`).

The plugin entry point (:mod:`aegis_tui.plugin`) only registers the CLI verbs; Textual is imported when
a verb runs.
"""

__all__: list[str] = []
