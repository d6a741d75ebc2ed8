"""Golden-test harness: drive a real driver (GeminiDriver, OpenCodeDriver) against ``capture_agent.py``
playing a captured session, the way the captured client drove the real CLI, and return the events.

Shared with ``tests/opencode`` (its conftest puts this folder on ``sys.path``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import attrs
import trio
from aegis_kernel import events as ev
from aegis_kernel.drivers import Driver, SpawnSpec
from aegis_kernel.profiles import AgentProfile

AGENT = Path(__file__).with_name("capture_agent.py")


def load(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def loaded_session(records: list[dict[str, Any]]) -> str | None:
    """The session id the captured client asked to ``session/load`` (None: a new session)."""
    return next((r["msg"]["params"]["sessionId"] for r in records if r["msg"].get("method") == "session/load"), None)


def incoming(records: list[dict[str, Any]]) -> list[bytes]:
    """The agent's frames of a capture, as the wire lines the client read."""
    return [json.dumps(r["msg"]).encode() for r in records if r["dir"] == "in"]


def translate(driver: Any, records: list[dict[str, Any]]) -> tuple[list[Any], list[Any]]:
    """Sans-I/O: every agent frame of a capture through the ACP codec; returns (events, the usage the
    driver reads from each ``session/prompt`` result). A frame that does not parse fails the test."""
    from aegis_acp import codec
    from aegis_acp.jsonrpc import Invalid, Notification, Request, Response, parse_line

    translator = codec.UpdateTranslator()
    prompt_ids = {r["msg"]["id"] for r in records if r["msg"].get("method") == "session/prompt"}
    usages, events = [], []
    for raw in incoming(records):
        msg = parse_line(raw)
        assert not isinstance(msg, Invalid), raw
        if isinstance(msg, Notification):
            events += translator.update(msg.params, raw)
        elif isinstance(msg, Request):
            events += translator.permission(str(msg.id), msg.params, raw)
        elif isinstance(msg, Response) and msg.id in prompt_ids:
            usages.append(driver.usage_from_result(msg.result))
    return events, usages


def normalize(event: Any) -> Any:
    """Comparable events: no wall-clock durations; long replayed texts cut at their first line."""
    if isinstance(event, ev.TurnResult):
        return attrs.evolve(event, duration_ms=None)
    if isinstance(event, ev.UserEcho) and "\n" in event.text:
        return attrs.evolve(event, text=event.text.split("\n", 1)[0] + "…")
    return event


async def replay(driver: Driver, records: list[dict[str, Any]], tmp_path: Path, *,
                 env: dict[str, str] | None = None, resume_id: str | None = None,
                 provider: str = "") -> tuple[list[Any], list[dict[str, Any]]]:
    """Run the capture through ``driver``; returns (events, the client's replies to agent requests)."""
    capture = tmp_path / "capture.jsonl"
    capture.write_text("".join(json.dumps(r) + "\n" for r in records))
    log = tmp_path / "replies.jsonl"
    profile = AgentProfile(provider=provider or driver.name, command=(sys.executable, str(AGENT), str(capture)),
                           env={"CAPTURE_AGENT_LOG": str(log), **(env or {})})
    spec = SpawnSpec(handle="brisk-curie", profile_name="golden", profile=profile, cwd=tmp_path,
                     state_dir=tmp_path, resume_id=resume_id)
    prompts = []  # (text, cancel after the first text?)
    for i, r in enumerate(records):
        msg = r["msg"]
        if r["dir"] == "out" and msg.get("method") == "session/prompt":
            later = [x["msg"].get("method") for x in records[i + 1:] if x["dir"] == "out"]
            cancel = bool(later) and later[0] == "session/cancel"
            prompts.append((msg["params"]["prompt"][-1]["text"], cancel))
    events: list[Any] = []
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            agent = await driver.start(spec, driver.build_launch(spec), nursery)
            stream = agent.events()
            for text, cancel in prompts:
                await agent.prompt(text)
                async for event in stream:
                    events.append(normalize(event))
                    if isinstance(event, ev.PermissionRequest):
                        await agent.answer_permission(event.request_id, True)
                    elif isinstance(event, ev.AssistantText) and cancel:
                        cancel = False
                        await agent.interrupt()
                    elif isinstance(event, (ev.TurnResult, ev.AgentError)):
                        break
            await agent.close(grace=1)
            async for event in stream:  # whatever was still queued
                events.append(normalize(event))
    replies = [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []
    return events, replies
