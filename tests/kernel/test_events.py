"""Open events: plugins register event types; their events round-trip through transcripts; a record
whose plugin is not installed is kept verbatim (UnknownEvent), never dropped."""

from __future__ import annotations

import json

import attrs
import pytest

from aegis_kernel import EventTypeError, UnknownEvent, hookimpl, register_event_type
from aegis_kernel.events import AssistantText, TokenUsage, TurnResult, event_from_dict, event_to_dict
from aegis_kernel.state import Ledger
from aegis_kernel.testing import DriverPlugin, FakeDriver


@attrs.frozen
class Point:
    x: int
    y: int


@attrs.frozen
class Stroke:
    """A plugin's event: nested records, a tuple of them, an optional one."""

    canvas: str
    points: tuple[Point, ...]
    origin: Point | None = None
    tags: tuple[str, ...] = ()


class CanvasPlugin:
    @hookimpl
    def aegis_register_event_types(self, register):
        register(Stroke, "test-canvas.Stroke")


STROKE = Stroke("main", (Point(0, 0), Point(3, 4)), origin=Point(1, 1), tags=("ink", "bold"))
ALIEN = {"t": "uninstalled.Widget", "id": 7, "nested": {"a": [1, 2, {"b": None}]}, "text": "ünï"}


@pytest.fixture
def fake(write_config, register_plugin):
    write_config("default_agent: fake\nagents:\n  fake:\n    provider: fake\n")
    register_plugin(DriverPlugin(FakeDriver()))
    register_plugin(CanvasPlugin())


@pytest.mark.trio
async def test_a_plugins_events_and_an_unknown_record_survive_a_transcript_round_trip(fake, make_kernel,
                                                                                      aegis_project):
    log_id = "20260101T000000000000Z-ada"
    path = aegis_project / ".aegis" / "state" / "sessions" / f"{log_id}.jsonl"
    path.parent.mkdir(parents=True)
    async with make_kernel(entry_points=False) as kernel:
        assert kernel.event_type_problems == []
        with Ledger(path) as ledger:
            for event in (AssistantText("before"), STROKE, TurnResult(usage=TokenUsage(1, 2))):
                ledger.append({"ts": 0, "event": event_to_dict(event)})
            ledger.append({"ts": 0, "event": ALIEN})
        # a resumed session replays its transcript into its history
        session = await kernel.sessions.spawn(handle="ada", log_id=log_id)
        await session.wait_for(lambda s: s.state == "ready")
        assert session.history[:4] == [AssistantText("before"), STROKE, TurnResult(usage=TokenUsage(1, 2)),
                                       UnknownEvent("uninstalled.Widget", {k: v for k, v in ALIEN.items()
                                                                         if k != "t"})]
        await session.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert records[1]["event"]["t"] == "test-canvas.Stroke"
    assert records[3]["event"] == ALIEN  # nothing rewrote or dropped it


def test_an_unknown_record_is_preserved_verbatim_and_says_what_it_is():
    event = event_from_dict(dict(ALIEN))
    assert isinstance(event, UnknownEvent) and event.type == "uninstalled.Widget"
    assert event_to_dict(event) == ALIEN
    assert json.dumps(event_to_dict(event)) == json.dumps(ALIEN)  # same keys, same order
    assert "uninstalled.Widget" in event.describe() and "not installed" in event.describe()
    untagged = event_from_dict({"x": 1})
    assert untagged == UnknownEvent("", {"x": 1}) and event_to_dict(untagged) == {"x": 1}


def test_a_registered_type_whose_record_no_longer_fits_is_kept_not_crashed():
    register_event_type(Stroke, "test-canvas.Stroke")
    odd = {"t": "test-canvas.Stroke", "points": [{"x": 1}]}  # missing fields: an older/newer shape
    event = event_from_dict(dict(odd))
    assert isinstance(event, UnknownEvent) and event_to_dict(event) == odd


def test_registration_refuses_taken_tags_and_non_attrs_classes_and_is_idempotent():
    assert register_event_type(Stroke, "test-canvas.Stroke") == "test-canvas.Stroke"
    assert register_event_type(Stroke, "test-canvas.Stroke") == "test-canvas.Stroke"
    with pytest.raises(EventTypeError, match="kernel"):
        register_event_type(Point, "TurnResult")
    with pytest.raises(EventTypeError, match="attrs"):
        register_event_type(dict, "test.Dict")
    with pytest.raises(EventTypeError, match="invalid event tag"):
        register_event_type(Point, "has space")
    assert event_from_dict(event_to_dict(STROKE)) == STROKE


def test_a_refused_registration_is_reported_and_never_stops_the_kernel(aegis_project):
    from aegis_kernel.kernel import build_kernel

    @attrs.frozen
    class Impostor:
        x: int = 0

    class Bad:
        @hookimpl
        def aegis_register_event_types(self, register):
            register(Impostor, "TurnResult")
            register(Point, "test-bad.Point")

    scripted = DriverPlugin(FakeDriver(name="scripted"))  # the test project's agents
    kernel = build_kernel(aegis_project, entry_points=False, extra_plugins=[("bad", Bad()), ("drivers", scripted)])
    [problem] = kernel.event_type_problems
    assert "Impostor" in problem and "TurnResult" in problem
    assert event_from_dict(event_to_dict(Point(1, 2))) == Point(1, 2)  # its other type registered


def test_an_unknown_record_is_shown_as_such_in_transcripts_and_the_tui():
    from aegis_kernel.sessions import transcript_lines

    unknown = event_from_dict(dict(ALIEN))
    assert transcript_lines([AssistantText("hi"), unknown]) == [
        "hi", "? uninstalled.Widget event (kept as recorded: its plugin is not installed or not loaded here)"]
    blocks = pytest.importorskip("aegis_tui.blocks", reason="aegis-tui is not installed")
    model = blocks.TranscriptModel()
    block = model.apply(unknown)
    assert block is not None and "uninstalled.Widget" in block.text and "not installed" in block.text
