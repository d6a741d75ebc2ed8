"""Aegis kernel. Plugin authors need only :data:`hookimpl` (and the records they register).

``hookimpl`` is created on first use so that ``aegis --version`` does not pay for importing pluggy.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["hookimpl", "__version__"]


def __getattr__(name: str) -> Any:
    if name == "hookimpl":
        import pluggy

        marker = pluggy.HookimplMarker("aegis")
        globals()["hookimpl"] = marker
        return marker
    raise AttributeError(f"module 'aegis_kernel' has no attribute {name!r}")
