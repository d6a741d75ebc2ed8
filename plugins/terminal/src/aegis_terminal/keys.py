"""``aegis_term_keys``: text plus named keys → the bytes a terminal sends.

``keys`` is a string in which ``{name}`` is a named key (``{ctrl-c}``, ``{enter}``, ``{up}``…) and
everything else is typed as is; a ``keys`` that is exactly one key name (``"ctrl-c"``, ``"enter"``)
is that key. ``{{`` types a literal ``{``. Names: ``enter``/``return``, ``tab``, ``esc``/``escape``,
``backspace``, ``space``, ``up``/``down``/``left``/``right``, ``home``/``end``, ``pageup``/``pagedown``,
``delete``, ``insert``, ``f1``–``f12``, ``ctrl-<letter>`` (and ``ctrl-[`` ``ctrl-\\`` ``ctrl-]``
``ctrl-@``), ``alt-<char>``.
"""

from __future__ import annotations

import re

NAMED: dict[str, bytes] = {
    "enter": b"\r", "return": b"\r", "tab": b"\t", "esc": b"\x1b", "escape": b"\x1b", "backspace": b"\x7f",
    "space": b" ", "up": b"\x1b[A", "down": b"\x1b[B", "right": b"\x1b[C", "left": b"\x1b[D",
    "home": b"\x1b[H", "end": b"\x1b[F", "pageup": b"\x1b[5~", "pagedown": b"\x1b[6~", "delete": b"\x1b[3~",
    "insert": b"\x1b[2~", "f1": b"\x1bOP", "f2": b"\x1bOQ", "f3": b"\x1bOR", "f4": b"\x1bOS",
    "f5": b"\x1b[15~", "f6": b"\x1b[17~", "f7": b"\x1b[18~", "f8": b"\x1b[19~", "f9": b"\x1b[20~",
    "f10": b"\x1b[21~", "f11": b"\x1b[23~", "f12": b"\x1b[24~",
}
_CTRL_EXTRA = {"[": 0x1B, "\\": 0x1C, "]": 0x1D, "@": 0x00, "^": 0x1E, "_": 0x1F}
_TOKEN = re.compile(r"\{\{|\{([a-z0-9\-\[\]\\@^_]+)\}", re.IGNORECASE)


class KeyError_(ValueError):
    """An unknown key name."""


def key(name: str) -> bytes | None:
    """The bytes of one named key, or None when ``name`` is not one."""
    low = name.lower()
    if low in NAMED:
        return NAMED[low]
    for prefix in ("ctrl-", "ctrl+", "c-"):
        if low.startswith(prefix) and len(low) == len(prefix) + 1:
            ch = low[-1]
            if "a" <= ch <= "z":
                return bytes([ord(ch) - 0x60])
            if ch in _CTRL_EXTRA:
                return bytes([_CTRL_EXTRA[ch]])
    for prefix in ("alt-", "alt+", "m-"):
        if low.startswith(prefix) and len(name) == len(prefix) + 1:
            return b"\x1b" + name[-1].encode()
    return None


def encode(keys: str) -> bytes:
    """``keys`` → bytes (see the module docstring); raises :class:`KeyError_` on ``{unknown}``."""
    whole = key(keys)
    if whole is not None:
        return whole
    out = bytearray()
    pos = 0
    for m in _TOKEN.finditer(keys):
        out += keys[pos:m.start()].encode()
        if m.group() == "{{":
            out += b"{"
        else:
            b = key(m.group(1))
            if b is None:
                raise KeyError_(f"unknown key {{{m.group(1)}}} (known: {', '.join(sorted(NAMED))}, ctrl-<letter>, "
                                "alt-<char>)")
            out += b
        pos = m.end()
    out += keys[pos:].encode()
    return bytes(out)
