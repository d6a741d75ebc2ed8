"""The pure parts: transcript blocks, fuzzy file matching, the workspace file, and a 10,000-block transcript."""

from __future__ import annotations

from pathlib import Path

import pytest
from tui_testkit import make_app, make_project, run, screen_text, wait_until

from aegis_kernel import events as ev
from aegis_tui.blocks import Block, TranscriptModel
from aegis_tui.fileindex import rank, scan
from aegis_tui.workspace import WorkspaceError, load_workspace, save_workspace


def fold(*events: object) -> list[str]:
    model = TranscriptModel()
    for e in events:
        model.apply(e)
    return [f"{b.kind}:{b.title + ' ' if b.title else ''}{b.text}" for b in model.blocks]


def test_streaming_preview_is_superseded_by_the_final_text() -> None:
    model = TranscriptModel()
    model.apply(ev.UserTurn(text="hi"))
    block = model.apply(ev.AssistantText(text="Hel", message_id="m", partial=True))
    model.apply(ev.AssistantText(text="lo", message_id="m", partial=True))
    assert block.text == "Hello" and block.streaming
    model.apply(ev.AssistantText(text="Hello, world.", message_id="m"))
    assert block.text == "Hello, world." and not block.streaming
    assert len(model) == 2


def test_acp_chunks_concatenate_and_a_tool_call_starts_a_new_message() -> None:
    assert fold(ev.UserTurn(text="q"), ev.AssistantText(text="a "), ev.AssistantText(text="b"),
                ev.ToolUse(tool_call_id="1", name="Read", summary="x.py"),
                ev.ToolResult(tool_call_id="1", text="first\nsecond"),
                ev.AssistantText(text="after"), ev.TurnResult()) == [
        "user:q", "assistant:a b", "tool:⏺ Read(x.py) first", "assistant:after"]


def test_envelope_preview_and_header() -> None:
    body = "\n".join(f"line {i}" for i in range(1, 8))
    blocks = fold(ev.EnvelopeReceived(envelope_id="e", sender="agent:impl", body=body, ts="2026-05-01T17:42:03Z",
                                      task_id="01HK", status="ok"))
    assert blocks == ["envelope:✉ from agent:impl · task#01HK · ok · 17:42:03Z "
                      "line 1\nline 2\nline 3\nline 4\n… (+3 more lines)"]


def test_errors_interrupts_permissions_and_replayed_history() -> None:
    blocks = fold(
        ev.AssistantText(text="replayed by session/load"),  # outside a turn: not shown twice
        ev.UserEcho(text="old"),
        ev.UserTurn(text="go"), ev.StateChanged(old="ready", new="working"),
        ev.PermissionRequest(request_id="r", tool_name="Bash", summary="ls"),
        ev.ApprovalAnswered(request_id="r", tool_name="Bash", allow=True, always=True),
        ev.TurnResult(stop_reason="cancelled"),
        ev.UserTurn(text="again"),
        ev.AgentError(message="the agent process exited with code 3", stderr_tail="boom"),
        ev.StateChanged(old="working", new="error", reason="the agent process exited with code 3\nboom"),
    )
    assert blocks == ["user:go", "permission:⚠ approval needed: Bash(ls) ✓ allowed (always)", "notice:⊘ interrupted",
                      "user:again", "error:the agent process exited with code 3\nboom"]


def test_thinking_is_one_collapsed_block_and_plans_update_in_place() -> None:
    model = TranscriptModel()
    model.apply(ev.UserTurn(text="q"))
    model.apply(ev.Thinking(text="a b "))
    model.apply(ev.Thinking(text="c"))
    model.apply(ev.Plan(entries=(ev.PlanEntry("one", "completed"), ev.PlanEntry("two", "in_progress"))))
    model.apply(ev.Plan(entries=(ev.PlanEntry("one", "completed"), ev.PlanEntry("two", "completed"))))
    assert [b.kind for b in model.blocks] == ["user", "thinking", "plan"]
    assert model.blocks[1].text == "a b c"
    assert model.blocks[2].text == "☑ one\n☑ two"


def test_copy_text_of_blocks() -> None:
    tool = Block("tool", title="⏺ Read(x)", text="ok", detail="ok\nmore")
    assert tool.copy_text() == "⏺ Read(x)\nok\nmore"
    assert Block("user", text="hi").copy_text() == "hi"


def test_fuzzy_rank_prefers_file_names_and_segment_starts(tmp_path: Path) -> None:
    paths = ["docs/workflow.md", "src/aegis/worker.py", "tests/test_worker.py", "src/network/wrapper.py", "README.md"]
    assert rank("worker", paths)[0] == "src/aegis/worker.py"
    assert rank("tw", paths)[0] == "tests/test_worker.py"
    assert rank("zzz", paths) == []
    assert rank("", paths) == paths
    (tmp_path / ".git").mkdir()
    (tmp_path / ".git" / "HEAD").write_text("x")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "a.js").write_text("x")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "a.py").write_text("x")
    assert scan(tmp_path) == ["src/a.py"]


def test_workspace_round_trip_and_corruption(tmp_path: Path) -> None:
    path = tmp_path / "workspace.json"
    assert load_workspace(path)["tabs"] == []
    save_workspace(path, [{"kind": "agent", "handle": "brisk-curie", "agent": "a"}, {"kind": "file", "path": "x"}], 1)
    data = load_workspace(path)
    assert data["active"] == 1 and [t["kind"] for t in data["tabs"]] == ["agent", "file"]
    for bad in ("{oops", '{"v": 9, "tabs": []}', '{"v": 1, "tabs": [{"kind": "agent"}]}', "[]"):
        path.write_text(bad)
        with pytest.raises(WorkspaceError) as info:
            load_workspace(path)
        assert "workspace.json" in str(info.value)


def test_a_10000_block_transcript_renders_only_what_is_visible(tmp_path: Path) -> None:
    async def body() -> None:
        app = make_app(make_project(tmp_path))
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.kernel_ready)
            from aegis_tui.app import AgentView

            model = TranscriptModel()
            for i in range(5000):
                model.apply(ev.UserTurn(text=f"question {i}"))
                model.apply(ev.AssistantText(text=f"answer **{i}** " + "lorem ipsum " * (i % 20)))
                model.apply(ev.TurnResult())
            assert len(model) == 10000
            view = AgentView(None, model)
            view.working.session = None
            await app.query_one("#content").mount(view)
            app.query_one("#content").current = None
            for child in app.query_one("#content").children:
                child.display = child is view
            await pilot.pause()
            transcript = view.transcript
            transcript.flush()
            await pilot.pause()
            assert len(transcript._cache) < 60  # only the visible blocks were rendered
            await wait_until(pilot, lambda: "answer 4999" in screen_text(app))
            for y in (0, 5000, 20000, transcript.max_scroll_y // 2, 100):  # scrolling renders what is seen,
                transcript.scroll_to(y=y, animate=False, immediate=True)     # never the whole transcript (its
                await pilot.pause()                                          # speed: contrib/bench/bench_tui.py)
                assert len(transcript._cache) < 5 * 60, len(transcript._cache)
            transcript.scroll_to(y=0, animate=False, immediate=True)
            await wait_until(pilot, lambda: "question 0" in screen_text(app))
            await pilot.press("ctrl+q")

    run(body())
