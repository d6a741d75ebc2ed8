"""Session handles: readable, unique, alliterating ``adjective-scientist`` pairs (``brisk-curie``)."""

from __future__ import annotations

import random
import re
from collections.abc import Container

HANDLE_RE = re.compile(r"^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$")
MAX_HANDLE_LEN = 40

_SCIENTISTS = (
    "babbage bohr boole bose carson cori curie darwin dijkstra einstein euler faraday fermi feynman gauss "
    "goodall hamilton hawking hopper hubble kepler knuth lamarr lovelace maxwell meitner mendel newton noether "
    "pascal pasteur planck ramanujan ritchie sagan shannon tesla thompson turing volta wiles wu yalow"
).split()
_ADJECTIVES = (
    "agile airy amber bold brave breezy bright brisk calm candid clever cool crisp curious daring deft eager "
    "earnest easy fair fancy fearless fleet fond frank gentle gleeful glad grand hardy happy hearty honest "
    "jolly jovial keen kind lively lucid lucky merry mellow nimble noble neat patient plucky polite proud "
    "quick quiet radiant rapid ready sage serene sharp shiny snappy spry steady sturdy swift tidy vivid "
    "warm wise witty wry young zesty zealous"
).split()


def is_valid_handle(handle: str) -> bool:
    return bool(HANDLE_RE.match(handle)) and len(handle) <= MAX_HANDLE_LEN


def check_handle(handle: str) -> str:
    """Return ``handle`` or raise ValueError saying what a handle may contain."""
    if not is_valid_handle(handle):
        raise ValueError(
            f"invalid handle {handle!r}: use lowercase letters, digits and single dashes, "
            f"starting with a letter, at most {MAX_HANDLE_LEN} characters (e.g. 'reviewer-2')"
        )
    return handle


def generate_handle(taken: Container[str], rng: random.Random | None = None) -> str:
    """A fresh alliterating handle not in ``taken``; falls back to a numbered suffix."""
    rng = rng or random.Random()
    for _ in range(200):
        scientist = rng.choice(_SCIENTISTS)
        adjectives = [a for a in _ADJECTIVES if a[0] == scientist[0]] or _ADJECTIVES
        handle = f"{rng.choice(adjectives)}-{scientist}"
        if handle not in taken:
            return handle
    n = 2
    while f"{handle}-{n}" in taken:
        n += 1
    return f"{handle}-{n}"
