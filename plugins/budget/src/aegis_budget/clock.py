"""Time for budget windows comes from the kernel clock (``kernel.clock``, :mod:`aegis_kernel.clock`),
which tests drive with trio's ``MockClock``; this module keeps the budget's ISO spellings."""

from __future__ import annotations

from aegis_kernel import iso_utc as iso, parse_iso

__all__ = ["iso", "parse_iso"]
