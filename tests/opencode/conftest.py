"""The capture-replay harness lives in tests/gemini (shared by both ACP vendors' golden tests)."""

import sys
from pathlib import Path

_GEMINI_TESTS = str(Path(__file__).resolve().parents[1] / "gemini")
if _GEMINI_TESTS not in sys.path:
    sys.path.insert(0, _GEMINI_TESTS)
