"""The WORKFLOWS panel's text and the CLI's argument parsing (pure functions)."""

from __future__ import annotations

import pytest

from aegis_workflow.cli import parse_args
from aegis_workflow.panels import EMPTY, runs_text


def test_the_band_puts_runs_waiting_for_a_person_first_with_their_options():
    runs = [
        {"run_id": "a1", "name": "prompt", "status": "ok", "elapsed_s": 3, "step": "", "started_at": 3,
         "awaiting_human": None},
        {"run_id": "b2", "name": "tdd_cycle", "status": "running", "elapsed_s": 125, "step": "4 bash pytest",
         "started_at": 1, "awaiting_human": {"question": "ship it?", "options": ["yes", "no"]}},
    ]
    lines = runs_text(runs).splitlines()
    assert lines[0] == "WORKFLOWS"
    assert "run#b2 tdd_cycle" in lines[1] and "2m05s" in lines[1] and "4 bash pytest" in lines[1]
    assert lines[2].strip() == "? awaiting: ship it?  [yes / no]"
    assert "run#a1 prompt" in lines[3]
    assert runs_text([]) == EMPTY


def test_arg_values_are_json_or_else_strings():
    assert parse_args(['agent="helper"', "n=3", "flags=[1, 2]", "word=hello"]) == {
        "agent": "helper", "n": 3, "flags": [1, 2], "word": "hello"}
    with pytest.raises(ValueError, match="KEY=JSON"):
        parse_args(["novalue"])
