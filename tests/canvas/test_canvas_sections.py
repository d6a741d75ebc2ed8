"""Sections found by a real markdown parser, section edits that keep the rest, and real line diffs."""

from __future__ import annotations

import difflib

import pytest

from aegis_canvas.sections import (
    PREAMBLE,
    SectionError,
    append_section,
    body,
    check_section_name,
    line_diff,
    parse_headings,
    replace_section,
    section_changes,
    splice,
)

DOC = """\
# Q3 report
intro line

## data
old 1
old 2

```md
## not a heading (inside a fence)
```

## notes ##
n1
"""


def test_sections_are_atx_level_two_headings_outside_code_blocks():
    assert parse_headings(DOC) == ["data", "notes"]
    assert body(DOC, PREAMBLE) == "# Q3 report\nintro line\n"
    assert body(DOC, "data") == "old 1\nold 2\n\n```md\n## not a heading (inside a fence)\n```\n"
    assert body(DOC, "missing") is None
    # setext, indented-code and quoted '## ' lines are not sections either
    assert parse_headings("Title\n-----\n\n    ## code\n\n> ## quoted\n") == []


def test_replacing_a_section_changes_only_its_lines():
    new = replace_section(DOC, "data", "new 1\nold 2\n")
    assert new == DOC.replace("old 1\nold 2\n\n```md\n## not a heading (inside a fence)\n```\n", "new 1\nold 2\n")
    assert body(new, "notes") == "n1\n" and body(new, PREAMBLE) == body(DOC, PREAMBLE)
    again = replace_section(new, "data", "new 1\nold 2")
    assert again == new  # same content: same bytes


def test_a_missing_section_is_appended_and_append_extends_a_section():
    new = replace_section(DOC, "risks", "r1")
    assert new == DOC + "\n## risks\nr1\n"
    assert parse_headings(new) == ["data", "notes", "risks"]
    assert body(append_section(new, "notes", "n2"), "notes") == "n1\nn2\n"
    assert replace_section("", "data", "x") == "## data\nx\n"
    assert replace_section("## data", "data", "x") == "## data\nx\n"  # a heading without a line end


def test_line_diff_counts_what_a_unified_diff_marks():
    old = "".join(f"line {i}\n" for i in range(40))
    new_lines = [f"line {i}\n" for i in range(40) if i not in (3, 4, 5)]
    new_lines[10:10] = [f"added {i}\n" for i in range(18)]
    new = "".join(new_lines)
    diff = line_diff(old, new)
    unified = list(difflib.unified_diff(old.splitlines(), new.splitlines(), lineterm=""))
    plus = sum(1 for ln in unified if ln.startswith("+") and not ln.startswith("+++"))
    minus = sum(1 for ln in unified if ln.startswith("-") and not ln.startswith("---"))
    assert (diff.added, diff.removed) == (plus, minus) == (18, 3)
    assert diff.added_lines[0] == "added 0"


def test_section_changes_name_each_changed_section():
    edited = DOC.replace("n1\n", "n1 edited\nn2\n").replace("intro line", "intro")
    changes = section_changes(DOC, edited)
    assert {name: (d.added, d.removed) for name, d in changes.items()} == {PREAMBLE: (1, 1), "notes": (2, 1)}


@pytest.mark.parametrize("name", ["a\nb", "a\rb", "", "   ", "x" * 201])
def test_bad_section_names_are_refused(name):
    with pytest.raises(SectionError):
        check_section_name(name)


def test_section_names_are_trimmed():
    assert check_section_name("  data ") == "data"


# --- the line-by-line shortcut agrees with the parser ------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from aegis_canvas.sections import _fast_headings, _parsed_headings  # noqa: E402

LINES = ["## a", "## b ##", "##", "## ###", "##x", "## a#", "##\tc", "# h1", "### h3", "text", "", "- item",
         "  - nested", "> quote", "1. one", "    code", "  ## indented", "```", "~~~", "<div>", "[r]: /u 'title",
         "---", "===", "para ## not", "\\## escaped", "## a \\#", "  text"]


@settings(max_examples=400, deadline=None)
@given(st.lists(st.sampled_from(LINES), max_size=14))
def test_the_shortcut_finds_the_headings_the_parser_finds(lines):
    doc = "\n".join(lines) + "\n"
    fast = _fast_headings(doc)
    if fast is not None:
        assert fast == _parsed_headings(doc)


def test_the_shortcut_leaves_risky_documents_to_the_parser():
    assert _fast_headings("```\n## in a fence\n```\n") is None
    assert _fast_headings("- item\n  ## in the item\n") is None
    assert parse_headings("```\n## in a fence\n```\n## real\n") == ["real"]


def test_lines_end_at_newlines_only_as_the_parser_counts_them():
    doc = "intro\x0cstill the preamble\u2028too\n## data\nd\r\n## notes\r\nn\rsame line\n"
    assert parse_headings(doc) == ["data", "notes"]
    assert body(doc, PREAMBLE) == "intro\x0cstill the preamble\u2028too\n"
    assert body(doc, "data") == "d\n"  # trailing whitespace (the \r) is trimmed from a body
    new = replace_section(doc, "data", "changed")
    assert body(new, "notes") == "n\rsame line\n" and parse_headings(new) == ["data", "notes"]


SECTION_LINES = ["text", "", "- item", "> quote", "# h1", "### h3", "    code", "more text"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]),
                          st.lists(st.sampled_from(SECTION_LINES), max_size=5)), max_size=4, unique_by=lambda t: t[0]),
       st.lists(st.sampled_from(SECTION_LINES), max_size=3),
       st.sampled_from(["a", "b", "c", "new"]),
       st.lists(st.sampled_from(SECTION_LINES), max_size=5))
def test_writing_a_section_changes_only_that_section(sections, preamble, target, content_lines):
    doc = "".join(line + "\n" for line in preamble) + "".join(
        f"## {name}\n" + "".join(line + "\n" for line in lines) for name, lines in sections)
    content = "\n".join(content_lines)
    new = replace_section(doc, target, content)
    names = [name for name, _ in sections]
    assert parse_headings(new) == (names if target in names else [*names, target])
    assert body(new, target) == (content.rstrip("\n") + "\n" if content.strip() else "")
    for name in [PREAMBLE, *names]:
        if name != target:
            assert body(new, name) == body(doc, name)  # every other section reads back as it was


RISKY_LINES = [*SECTION_LINES, "```", "~~~", "<div>", "[ref]: /url", " ## indented", "## inner", "x\ry"]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]),
                          st.lists(st.sampled_from(SECTION_LINES), max_size=5)), max_size=4, unique_by=lambda t: t[0]),
       st.lists(st.sampled_from(SECTION_LINES), max_size=3),
       st.lists(st.tuples(st.sampled_from(["a", "b", "new", PREAMBLE]), st.booleans(),
                          st.lists(st.sampled_from(RISKY_LINES), max_size=4)), min_size=1, max_size=6))
def test_the_section_index_a_write_keeps_is_the_one_a_full_parse_finds(sections, preamble, writes):
    """A write records the new text's lines and headings from the previous text's (no second parse);
    a chain of writes, some with lines that need the real parser, must read exactly as parsed afresh."""
    from aegis_canvas import sections as sec_module

    text = "".join(line + "\n" for line in preamble) + "".join(
        f"## {name}\n" + "".join(line + "\n" for line in lines) for name, lines in sections)
    for target, append, lines in writes:
        old_body = body(text, target) or ""
        result = splice(text, target, "\n".join(lines), append=append)
        kept_lines, kept_heads = sec_module._lines(result.new), sec_module._headings(result.new)
        sec_module._LINES.clear()
        sec_module._INDEX.clear()  # what a fresh process would find in the same text
        assert kept_lines == sec_module._lines(result.new) and kept_heads == sec_module._headings(result.new)
        expected = parse_headings(text) + ([] if target == PREAMBLE or target in parse_headings(text) else [target])
        if parse_headings(result.new) != expected:  # the content made or hid a heading: a write refuses it
            continue
        assert (result.old_body, result.new_body) == (old_body, body(result.new, target) or "")
        text = result.new


def test_an_edit_made_elsewhere_is_indexed_as_its_own_text():
    """The caches are keyed by the text itself: the same section names over other lines (an edit
    made outside Aegis) are never answered from what a write recorded for the text before it."""
    ours = splice("## a\nx\n\n## b\ny\n", "a", "x2").new
    assert parse_headings(ours) == ["a", "b"]
    edited = "```\n" + ours + "```\n"  # by hand: the whole document fenced, no heading left
    assert parse_headings(edited) == [] and body(edited, "b") is None
    after = splice(edited, "b", "z")
    assert parse_headings(after.new) == ["b"] and after.old_body == ""
