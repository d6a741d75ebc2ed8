"""The transcript model: session events folded into display blocks (pure, no Textual).

One :class:`Block` per thing the user reads: a user turn (``› text``), an envelope
(``✉ from agent:x · 17:42:03Z`` + a 4-line preview), assistant text (markdown once final), thinking
(collapsed), a tool call ``⏺ Name(summary)`` with its result ``└ …`` folded in, a plan, an approval
request, errors and notices. :meth:`TranscriptModel.apply` takes one event and returns the block it
added or changed (None when the event is not shown), bumping that block's ``version`` so renderers
can cache by ``(id, version, width)``.

Streaming: ``AssistantText(partial=True)`` pieces are a preview; the first non-partial text of the same
message replaces the preview, and further non-partial pieces concatenate (ACP chunks). Events that
carry content but arrive outside a turn (a driver replaying history on ``session/load``) are skipped,
so a resumed transcript is not shown twice.
"""

from __future__ import annotations

import itertools
from typing import Any

from attrs import define, field

from aegis_kernel import events as ev

PREVIEW_LINES = 4
_ids = itertools.count(1)


@define(eq=False)
class Block:
    kind: str  # user | envelope | assistant | thinking | tool | plan | permission | error | notice
    text: str = ""
    title: str = ""
    detail: str = ""
    is_error: bool = False
    streaming: bool = False
    expanded: bool = False
    message_id: str | None = None
    tool_call_id: str | None = None
    version: int = 0
    id: int = field(factory=lambda: next(_ids))
    _final: list[str] = field(factory=list)
    _preview: list[str] = field(factory=list)

    def touch(self) -> None:
        self.version += 1

    def copy_text(self) -> str:
        """What a click on the block copies."""
        if self.kind == "envelope":
            return f"{self.title}\n{self.text}"
        if self.kind == "tool":
            return self.title + (f"\n{self.detail}" if self.detail else "")
        if self.kind in ("permission", "notice") and self.title:
            return self.title + (f"\n{self.text}" if self.text else "")
        return self.text

    # --- assistant streaming ------------------------------------------------------------------

    def add_text(self, text: str, partial: bool) -> None:
        if partial:
            self._preview.append(text)
        else:
            self._preview.clear()
            self._final.append(text)
        self.streaming = bool(self._preview)
        self.text = "".join(self._final) + "".join(self._preview)
        self.touch()


def hhmmss(ts: str) -> str:
    """``2026-05-01T17:42:03Z`` → ``17:42:03Z`` (anything else unchanged)."""
    if "T" in ts:
        return ts.split("T", 1)[1]
    return ts


def envelope_title(e: ev.EnvelopeReceived) -> str:
    parts = [f"✉ from {e.sender}"]
    if e.task_id:
        parts.append(f"task#{e.task_id}")
    if e.status:
        parts.append(e.status)
    parts.append(hhmmss(e.ts))
    return " · ".join(parts)


def preview(body: str, lines: int = PREVIEW_LINES) -> str:
    rows = body.rstrip("\n").splitlines() or [""]
    if len(rows) <= lines:
        return "\n".join(rows)
    return "\n".join(rows[:lines] + [f"… (+{len(rows) - lines} more lines)"])


def first_line(text: str, limit: int = 200) -> str:
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    return line if len(line) <= limit else line[: limit - 1] + "…"


class TranscriptModel:
    """The blocks of one session, built incrementally from its events."""

    def __init__(self) -> None:
        self.blocks: list[Block] = []
        self._tools: dict[str, Block] = {}
        self._assistant: Block | None = None
        self._thinking: Block | None = None
        self._plan: Block | None = None
        self.in_turn = False
        self.pending_permission: Block | None = None

    def __len__(self) -> int:
        return len(self.blocks)

    def add(self, block: Block) -> Block:
        self.blocks.append(block)
        return block

    def notice(self, text: str, title: str = "") -> Block:
        self._break()
        return self.add(Block("notice", text=text, title=title))

    def _break(self) -> None:
        """The next assistant/thinking text starts a new block."""
        self._assistant = None
        self._thinking = None

    def apply(self, event: Any) -> Block | None:  # noqa: C901 - one dispatch on event type
        if isinstance(event, ev.UserTurn):
            self._start_turn()
            return self.add(Block("user", text=event.text))
        if isinstance(event, ev.EnvelopeReceived):
            self._start_turn()
            return self.add(Block("envelope", title=envelope_title(event), text=preview(event.body),
                                  detail=event.body))
        if isinstance(event, ev.StateChanged):
            if event.new == "working":
                self.in_turn = True
            elif event.new in ("ready", "closed"):
                self.in_turn = False
            elif event.new == "error":
                self.in_turn = False
                reason = event.reason.strip()
                last = self.blocks[-1] if self.blocks else None
                if reason and not (last is not None and last.kind == "error"):
                    self._break()
                    return self.add(Block("error", text=reason, is_error=True))
            return None
        if isinstance(event, ev.TurnResult):
            self.in_turn = False
            self._break()
            self._plan = None
            if event.stop_reason == "cancelled":
                return self.add(Block("notice", text="⊘ interrupted"))
            if event.is_error:
                return self.add(Block("error", text=f"turn ended: {event.error or event.stop_reason}",
                                      is_error=True))
            if event.stop_reason not in ("end_turn", "", None):
                return self.add(Block("notice", text=f"turn ended: {event.stop_reason}"))
            return None
        if isinstance(event, ev.AgentError):
            self._break()
            text = event.message + (f"\n{event.stderr_tail.strip()}" if event.stderr_tail.strip() else "")
            return self.add(Block("error", text=text, is_error=True))
        if isinstance(event, ev.ApprovalAnswered):
            if self.pending_permission is not None:
                block = self.pending_permission
                self.pending_permission = None
                verdict = ("✓ allowed" + (" (always)" if event.always else "")) if event.allow else "✗ denied"
                block.text = verdict
                block.touch()
                return block
            return None
        if isinstance(event, ev.PermissionRequest):
            self._break()
            title = f"⚠ approval needed: {event.tool_name}" + (f"({event.summary})" if event.summary else "")
            block = self.add(Block("permission", title=title, text="y allow · n deny · a always allow"))
            self.pending_permission = block
            return block
        if isinstance(event, ev.CompactBoundary):
            return self.add(Block("notice", text=f"✂ context compacted ({event.trigger or 'auto'})"))
        # content events: only inside a turn (outside one they are a driver replaying history)
        if not self.in_turn or getattr(event, "parent_tool_use_id", None) is not None:
            return None
        if isinstance(event, ev.AssistantText):
            block = self._assistant
            if block is None or (event.message_id and block.message_id and event.message_id != block.message_id):
                block = self._assistant = self.add(Block("assistant", message_id=event.message_id))
                self._thinking = None
            block.add_text(event.text, event.partial)
            return block
        if isinstance(event, ev.Thinking):
            block = self._thinking
            if block is None:
                block = self._thinking = self.add(Block("thinking", message_id=event.message_id))
                self._assistant = None
            block.add_text(event.text, event.partial)
            return block
        if isinstance(event, ev.ToolUse):
            self._break()
            block = self.add(Block("tool", title=f"⏺ {event.name}({event.summary})", tool_call_id=event.tool_call_id))
            self._tools[event.tool_call_id] = block
            return block
        if isinstance(event, ev.ToolResult):
            block = self._tools.pop(event.tool_call_id, None)
            if block is None:
                return None
            block.detail = ("error: " if event.is_error else "") + (event.text.strip() or "ok")
            block.text = first_line(block.detail) or "ok"
            block.is_error = event.is_error
            block.touch()
            return block
        if isinstance(event, ev.Plan):
            marks = {"completed": "☑", "in_progress": "◐"}
            text = "\n".join(f"{marks.get(e.status, '☐')} {e.content}" for e in event.entries)
            if self._plan is None:
                self._break()
                self._plan = self.add(Block("plan", title="plan", text=text))
            else:
                self._plan.text = text
                self._plan.touch()
            return self._plan
        return None

    def _start_turn(self) -> None:
        self._break()
        self._plan = None
        self.in_turn = True
