"""OSC 133 command boundaries: a pure, incremental parser of a shell's PTY output.

The shell integration (:mod:`aegis_terminal.integration`) makes the shell print, around every command:

- ``ESC ] 133 ; C BEL`` when a command line starts executing (bash: ``PS0``; zsh: ``preexec``);
- ``ESC ] 133 ; E ; <command line> BEL`` with the command line as the shell recorded it (optional);
- ``ESC ] 133 ; D ; <exit> BEL`` when it finished (bash: first ``PROMPT_COMMAND`` entry; zsh: first
  ``precmd`` function); a ``D`` with no command open is a plain prompt and means nothing;
- ``ESC ] 133 ; A BEL`` when the shell starts drawing its prompt, and ``ESC ] 133 ; B BEL`` where the
  prompt ends (the shell is ready for the next command line).

``ST`` may be ``BEL`` or ``ESC \\``. :class:`OscParser` is fed the bytes of each read, in order, and
returns :class:`Output` chunks (the bytes with **every** OSC sequence removed — 133 or not, so a title
set by a program never lands in a recorded output) and :class:`Mark` events, in stream order. A
sequence split across reads is held back until it is complete (at most :data:`MAX_OSC` bytes: a
longer "sequence" is not one and is passed through as output). Other escape sequences (CSI colours,
cursor moves) are left in the output; :func:`plain` removes them for recorded text.
"""

from __future__ import annotations

import re

from attrs import frozen

ESC = 0x1B
BEL = 0x07
MAX_OSC = 8192


@frozen
class Output:
    """Bytes the shell printed (OSC sequences removed)."""

    data: bytes


@frozen
class Mark:
    """One OSC 133 marker: ``kind`` is ``A``, ``B``, ``C``, ``D`` or ``E``; ``args`` its ``;`` fields
    (``D``: ``("3",)``; ``E``: the whole command line as one field)."""

    kind: str
    args: tuple[str, ...] = ()

    @property
    def exit_code(self) -> int | None:
        """``D``'s exit status, when it carries a number."""
        if self.kind == "D" and self.args:
            try:
                return int(self.args[0])
            except ValueError:
                return None
        return None


Event = Output | Mark


def _mark(payload: bytes) -> Mark | None:
    text = payload.decode("utf-8", "replace")
    if not text.startswith("133;"):
        return None
    body = text[4:]
    kind, _, rest = body.partition(";")
    if kind == "E":
        return Mark("E", (rest,))
    return Mark(kind, tuple(rest.split(";")) if rest else ())


class OscParser:
    """Incremental: ``feed(data) -> list[Event]`` (see the module docstring)."""

    def __init__(self) -> None:
        self._pending = b""

    def feed(self, data: bytes) -> list[Event]:
        buf = self._pending + data
        self._pending = b""
        events: list[Event] = []
        out = bytearray()
        i, n = 0, len(buf)
        while i < n:
            j = buf.find(b"\x1b]", i)
            if j < 0:
                # an ESC at the very end may be the start of a split ``ESC ]``
                if buf.endswith(b"\x1b"):
                    out += buf[i:-1]
                    self._pending = b"\x1b"
                else:
                    out += buf[i:]
                break
            out += buf[i:j]
            end, st_len = _terminator(buf, j + 2)
            if end < 0:
                if n - j > MAX_OSC:  # not a sequence after all: pass the ESC through
                    out += buf[j:j + 2]
                    i = j + 2
                    continue
                self._pending = buf[j:]
                break
            mark = _mark(buf[j + 2:end])
            if mark is not None:
                if out:
                    events.append(Output(bytes(out)))
                    out = bytearray()
                events.append(mark)
            i = end + st_len
        if out:
            events.append(Output(bytes(out)))
        return events

    def flush(self) -> list[Event]:
        """What is still held back (an unfinished sequence at EOF), as output."""
        rest, self._pending = self._pending, b""
        return [Output(rest)] if rest else []


def _terminator(buf: bytes, start: int) -> tuple[int, int]:
    """Where the OSC starting at ``start`` ends: ``(index, len(ST))`` or ``(-1, 0)``."""
    bel = buf.find(b"\x07", start)
    st = buf.find(b"\x1b\\", start)
    if bel < 0 and st < 0:
        return -1, 0
    if st < 0 or (0 <= bel < st):
        return bel, 1
    return st, 2


_CSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[()][A-Za-z0-9]|\x1b[=>78cDEHMNOZ]|\x1bP[^\x1b]*\x1b\\|[\x00-\x08\x0b-\x1f\x7f]")


def plain(data: bytes) -> str:
    """Recorded text: UTF-8 (replacing bad bytes), ``\\r\\n`` → ``\\n``, escape sequences and control
    characters (other than ``\\n`` and ``\\t``) removed; a lone ``\\r`` draws the rest of the line again
    from column 0 over what was there (the line then loses its trailing blanks), as a terminal shows it."""
    text = data.decode("utf-8", "replace").replace("\r\n", "\n")
    text = _CSI.sub(lambda m: "\r" if m.group() == "\r" else "", text)
    lines = []
    for line in text.split("\n"):
        if "\r" in line:
            drawn = ""
            for part in line.split("\r"):  # each part is drawn again from column 0
                drawn = part + drawn[len(part):]
            line = drawn.rstrip()
        lines.append(line)
    return "\n".join(lines)
