"""Aegis kernel. Plugin authors need only :data:`hookimpl` (and the records they register)."""

import pluggy

__version__ = "0.1.0"

hookimpl = pluggy.HookimplMarker("aegis")

__all__ = ["hookimpl", "__version__"]
