"""aegis queue log: rendering a worker's transcript records, and finding them in a shared transcript."""

from __future__ import annotations

import argparse
import json

import pytest
from aegis_queue import cli as qcli
from aegis_queue.cli import render_transcript
from queue_testkit import call, wait_until
from aegis_queue.runtime import QueueRuntime



def rec(at, t, **fields):
    return {"ts": at, "handle": "w", "event": {"t": t, **fields}}


def test_a_message_is_one_line_and_previews_and_sub_agent_text_stay_out():
    lines = render_transcript([
        rec(0.0, "StateChanged", old="starting", new="ready", reason=""),
        rec(1.0, "EnvelopeReceived", envelope_id="e", sender="queue:q", body="do it", ts="t"),
        rec(2.0, "AssistantText", text="par", message_id="m1", partial=True),
        rec(2.0, "AssistantText", text="first ", message_id="m1"),
        rec(3.0, "AssistantText", text="noise", message_id="s", parent_tool_use_id="t0"),
        rec(4.0, "AssistantText", text="second", message_id="m1"),
        rec(5.0, "ToolUse", tool_call_id="t1", name="Read", summary="a.py"),
        rec(6.0, "ToolResult", tool_call_id="t1", text="x" * 400, is_error=True),
        rec(7.0, "TurnResult", stop_reason="end_turn", usage={"input": 10, "output": 5}),
        rec(8.0, "Mystery"),
    ])
    texts = [line.split("  ", 1)[1] for line in lines]
    assert texts[:4] == ["· starting → ready", "✉ from queue:q: do it", "first second", "⏺ Read a.py"]
    assert texts[4].startswith("  └ error: xxx") and texts[4].endswith("…") and len(texts[4]) < 320
    assert texts[5:] == ["= turn ended: end_turn · ↑10 ↓5", "· Mystery"]
    import time

    assert lines[2].startswith(time.strftime("%H:%M:%S", time.localtime(2.0)))  # the message's own time
    assert len(lines) == 7


@pytest.mark.trio
async def test_log_tells_apart_two_workers_that_got_the_same_handle(qdriver, kernel, aegis_project, monkeypatch,
                                                                    capsys):
    import aegis_queue.runtime as qruntime

    monkeypatch.setattr(qruntime, "generate_handle", lambda taken: "same-worker")  # a handle reused over the day
    rt = kernel.service(QueueRuntime)
    ids = []
    for payload in ("first job", "second job", "third job"):
        out = await call(kernel, "aegis_enqueue", None, queue="solo", payload=payload)
        ids.append(out["task_id"])
        await rt.tasks[out["task_id"]].finished.wait()
        await wait_until(lambda: not rt.queues["solo"].inflight)
    assert {rt.tasks[i].worker for i in ids} == {"same-worker"}
    assert qcli._log(argparse.Namespace(task=ids[1], json=False, project=str(aegis_project))) == 0
    shown = capsys.readouterr().out
    assert "done: second job" in shown and "first job" not in shown and "third job" not in shown
    assert qcli._log(argparse.Namespace(task=ids[2], json=True, project=str(aegis_project))) == 0
    raw = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["session"] for r in raw} == {rt.tasks[ids[2]].worker_log} and raw[-1]["event"]["new"] == "closed"


def test_log_says_what_is_missing(aegis_project, capsys):
    queues = aegis_project / ".aegis" / "state" / "queues"
    queues.mkdir(parents=True)
    (queues / "q.jsonl").write_text(json.dumps({"v": 1, "event": "dispatched", "task_id": "t1", "worker": "w",
                                                "transcript": "queue-q-20261124", "session": "t1-w"}) + "\n")
    assert qcli._log(argparse.Namespace(task="t1", json=False, project=str(aegis_project))) == 1
    assert "the transcript of worker w is missing" in capsys.readouterr().err
    assert qcli._log(argparse.Namespace(task="t2", json=False, project=str(aegis_project))) == 1
    assert "no dispatched task 't2'" in capsys.readouterr().err


