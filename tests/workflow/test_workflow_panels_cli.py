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


ASKING = [{"run_id": "r1", "name": "asker", "status": "running", "elapsed_s": 4, "step": "0 ask_human",
           "started_at": 1, "awaiting_human": {"question": "ship it?", "options": ["yes", "no"]}}]


def test_the_ask_strip_rings_once_per_new_question_and_f8_answers_it():
    pytest.importorskip("textual")
    import asyncio

    from textual.app import App

    from aegis_workflow import panels

    runs: list = []
    calls = []

    class Host(App):
        remote = object()  # attached: the panels poll the owner
        bells = 0

        def compose(self):
            yield panels.ask_strip(self, None)

        def bell(self):
            self.bells += 1

        async def call_op(self, operation, **args):
            calls.append((operation, args))
            return {"runs": list(runs)} if operation == "aegis_workflow_list" else {}

        def in_kernel(self, fn):
            asyncio.get_running_loop().create_task(fn())
            return True

    async def until(pilot, predicate):
        import time

        deadline = time.monotonic() + 30  # generous; fails only if it never happens
        while time.monotonic() < deadline:
            await pilot.pause(0.02)
            if predicate():
                return
        raise AssertionError("never happened")

    async def main() -> None:
        app = Host()
        async with app.run_test() as pilot:
            strip = app.query_one(".workflow-ask-strip")
            await until(pilot, lambda: calls)
            assert not strip.display and app.bells == 0
            runs[:] = ASKING
            await until(pilot, lambda: strip.display)
            assert str(strip.render()) == "⚑ run#r1 (asker) asks: ship it? [yes / no] · F8 answers"
            assert app.bells == 1
            n = len(calls)
            await until(pilot, lambda: len(calls) > n + 1)  # polled again: the same question rings no more
            assert app.bells == 1
            await app.push_screen(_modal(panels.answer_panel(app, None)))
            await until(pilot, lambda: "ship it?" in str(app.screen.query_one("#workflow-question").render()))
            await pilot.press("1", "enter")
            await until(pilot, lambda: ("aegis_workflow_answer", {"run_id": "r1", "text": "1"}) in calls)

    asyncio.run(main())


def _modal(widget):
    from textual.screen import ModalScreen

    class Modal(ModalScreen):
        def compose(self):
            yield widget

    return Modal()
