"""The event bus: filtered subscriptions with bounded buffers and a `lagged` marker for laggards."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from aegis_kernel.bus import BusEvent, EventBus, Lagged


def test_a_subscriber_gets_only_its_topics_and_session():
    bus = EventBus()
    everything = bus.subscribe()
    states = bus.subscribe(topics=["session.state"])
    sessions = bus.subscribe(topics=["session"])  # the first part of a topic matches too
    one = bus.subscribe(session="ada")
    bus.publish("session.state", {"new": "working"}, "ada")
    bus.publish("session.event", {"t": "AssistantText"}, "bob")
    bus.publish("queue", {"task": "t1"})
    assert [e.topic for e in everything.drain()] == ["session.state", "session.event", "queue"]
    assert [e.topic for e in states.drain()] == ["session.state"]
    assert [e.topic for e in sessions.drain()] == ["session.state", "session.event"]
    assert [(e.topic, e.session) for e in one.drain()] == [("session.state", "ada")]


def test_a_laggard_keeps_a_bounded_buffer_and_learns_what_it_missed():
    bus = EventBus()
    sub = bus.subscribe(buffer=10)
    for i in range(1000):
        bus.publish("queue", {"i": i})
    assert len(sub._items) == 10  # memory stays flat however far behind the subscriber is
    batch = sub.drain()
    assert batch[0] == Lagged(missed=990, first_seq=1, last_seq=990)
    assert [e.payload["i"] for e in batch[1:]] == list(range(990, 1000))
    bus.publish("queue", {"i": 1000})
    assert [type(x) for x in sub.drain()] == [BusEvent]  # caught up: no marker any more


def test_closed_subscriptions_stop_receiving():
    bus = EventBus()
    with bus.subscribe() as sub:
        bus.publish("queue", {})
    bus.publish("queue", {})
    assert len(sub.drain()) == 1
    assert not bus._subscribers


@pytest.mark.trio
async def test_next_batch_waits_for_items_and_ends_when_closed():
    bus = EventBus()
    sub = bus.subscribe()
    batches = []

    async def reader():
        while batch := await sub.next_batch():
            batches.append([e.payload for e in batch])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader)
        await trio.testing.wait_all_tasks_blocked()
        assert batches == []
        bus.publish("queue", 1)
        bus.publish("queue", 2)
        await trio.testing.wait_all_tasks_blocked()
        sub.close()
    assert batches == [[1, 2]]


def test_events_are_serialised_on_read():
    from aegis_kernel.events import AssistantText

    bus = EventBus()
    sub = bus.subscribe()
    bus.publish("session.event", AssistantText(text="hi", message_id="m"), "ada")
    out = sub.drain()[0].to_dict()
    assert out["topic"] == "session.event" and out["session"] == "ada"
    assert out["data"]["text"] == "hi" and out["seq"] == 1
