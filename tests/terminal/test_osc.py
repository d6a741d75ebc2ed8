"""The OSC 133 parser, recorded-text cleaning, named keys and the ledger's rendering — pure functions."""

from __future__ import annotations

import pytest

from aegis_terminal import ledger
from aegis_terminal.keys import KeyError_, encode
from aegis_terminal.osc import Mark, OscParser, Output, plain

STREAM = (b"\x1b]133;A\x07$ \x1b]133;B\x07ls\r\n\x1b]133;C\x07a.txt\r\n"
          b"\x1b]0;my title\x07b.txt \x1b]8;;http://x\x1b\\link\x1b]8;;\x1b\\\r\n"
          b"\x1b]133;E;ls -la\x07\x1b]133;D;3\x07\x1b]133;A\x07$ ")


def collapse(events):
    """Adjacent outputs joined (how a stream is split must not matter)."""
    out = []
    for ev in events:
        if isinstance(ev, Output) and out and isinstance(out[-1], Output):
            out[-1] = Output(out[-1].data + ev.data)
        else:
            out.append(ev)
    return out


WHOLE = [Mark("A"), Output(b"$ "), Mark("B"), Output(b"ls\r\n"), Mark("C"),
         Output(b"a.txt\r\nb.txt link\r\n"), Mark("E", ("ls -la",)), Mark("D", ("3",)), Mark("A"), Output(b"$ ")]


def test_markers_and_foreign_osc_in_one_read():
    events = OscParser().feed(STREAM)
    assert collapse(events) == WHOLE
    assert [e.exit_code for e in events if isinstance(e, Mark) and e.kind == "D"] == [3]


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_a_marker_split_anywhere_across_two_reads_gives_the_same_events(cut):
    parser = OscParser()
    events = parser.feed(STREAM[:cut]) + parser.feed(STREAM[cut:]) + parser.flush()
    assert collapse(events) == WHOLE


def test_byte_by_byte_reads_give_the_same_events():
    parser = OscParser()
    events = [ev for i in range(len(STREAM)) for ev in parser.feed(STREAM[i:i + 1])]
    assert collapse(events) == WHOLE


def test_an_unterminated_escape_is_not_held_forever_and_eof_flushes():
    parser = OscParser()
    junk = b"\x1b]" + b"x" * 10000
    events = parser.feed(junk)
    assert b"".join(e.data for e in events if isinstance(e, Output)).endswith(b"x" * 100)
    tail = OscParser()
    assert tail.feed(b"ok\x1b]133;D") == [Output(b"ok")]
    assert tail.flush() == [Output(b"\x1b]133;D")]


def test_plain_text_drops_escapes_and_draws_carriage_returns_like_a_terminal():
    assert plain(b"\x1b[1;31mred\x1b[0m\r\nnext\r\n") == "red\nnext\n"
    assert plain(b"progress 10%\rprogress 100%\r\n") == "progress 100%\n"
    # zsh's PROMPT_SP: a marker, blanks, then the line drawn over again
    assert plain(b"x\r\n\x1b[1m\x1b[7m%\x1b[27m\x1b[1m\x1b[0m" + b" " * 79 + b"\r \r") == "x\n"
    assert plain(b"caf\xc3\xa9 \xff") == "café \ufffd"


def test_named_keys_and_text():
    assert encode("ctrl-c") == b"\x03"
    assert encode("enter") == b"\r"
    assert encode("up") == b"\x1b[A"
    assert encode("esc") == b"\x1b"
    assert encode("q") == b"q"
    assert encode("echo hi{enter}") == b"echo hi\r"
    assert encode(":wq{esc}{{x}") == b":wq\x1b{x}"
    with pytest.raises(KeyError_, match="unknown key"):
        encode("{nope}")


def test_output_is_capped_head_and_tail_with_the_bytes_cut():
    text, cut = ledger.cap("a" * 10 + "b" * 100 + "c" * 10, head=10, tail=10)
    assert cut == 100 and text.startswith("a" * 10) and text.endswith("c" * 10) and "[100 bytes cut]" in text
    assert ledger.cap("short") == ("short", 0)


def test_a_wake_up_reads_like_the_product_page():
    rec = {"seq": 4, "cmd": "pytest -q", "who": "agent:builder", "exit": 0, "status": "ok", "duration_s": 4.2,
           "output": "".join(f"line {i}\n" for i in range(30)) + "6 passed in 4.18s"}
    body = ledger.render(rec)
    head, _, tail = body.partition("\n──\n")
    assert head == "$ pytest -q · run by agent:builder\nexit 0 · 4.20s"
    assert tail.splitlines()[-1] == "6 passed in 4.18s" and len(tail.splitlines()) == ledger.TAIL_LINES
    killed = ledger.render({**rec, "exit": None, "status": "killed_by_restart", "output": ""})
    assert killed == "$ pytest -q · run by agent:builder\nkilled by restart · 4.20s\n──"
