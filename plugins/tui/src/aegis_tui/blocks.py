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


PREVIEW_LINES = 4
_ids = itertools.count(1)


class Block:
    """One thing the user reads. ``version`` changes whenever the block does (renderers cache on it);
    ``live`` is True while an assistant/thinking message is still arriving (rendered as plain text,
    incrementally; markdown once it is complete)."""

    def __init__(self, kind: str, text: str = "", title: str = "", detail: str = "", *, is_error: bool = False,
                 message_id: str | None = None, tool_call_id: str | None = None) -> None:
        self.kind = kind  # user | envelope | assistant | thinking | tool | plan | permission | error | notice
        self._text = text
        self.title = title
        self.detail = detail
        self.is_error = is_error
        self.message_id = message_id
        self.tool_call_id = tool_call_id
        self.streaming = False
        self.live = False
        self.expanded = False
        self.version = 0
        self.id = next(_ids)
        self._final: list[str] = []
        self._preview: list[str] = []
        self._joined = True

    def __repr__(self) -> str:
        return f"<Block {self.kind} v{self.version} {self.text[:40]!r}>"

    @property
    def text(self) -> str:
        if not self._joined:
            self._text = "".join(self._final) + "".join(self._preview)
            self._joined = True
        return self._text

    @text.setter
    def text(self, value: str) -> None:
        self._text = value
        self._joined = True

    def touch(self) -> None:
        self.version += 1

    def copy_text(self) -> str:
        """What a click on the block copies."""
        if self.kind == "envelope":
            return f"{self.title}\n{self.detail or self.text}"
        if self.kind == "tool":
            return self.title + (f"\n{self.detail}" if self.detail else "")
        if self.kind in ("permission", "notice") and self.title:
            return self.title + (f"\n{self.text}" if self.text else "")
        return self.text

    # --- assistant streaming ------------------------------------------------------------------

    def add_text(self, text: str, partial: bool) -> None:
        """O(1): the whole text is joined lazily when someone reads :attr:`text`."""
        if partial:
            self._preview.append(text)
        else:
            if self._preview:
                self._preview.clear()
            self._final.append(text)
        self.streaming = bool(self._preview)
        self._joined = False
        self.touch()

    def finish(self) -> None:
        """The message is complete: render it in full (markdown) from now on."""
        if self.live:
            self.live = False
            self.touch()


def hhmmss(ts: str) -> str:
    """``2026-05-01T17:42:03Z`` → ``17:42:03Z`` (anything else unchanged)."""
    if "T" in ts:
        return ts.split("T", 1)[1]
    return ts


def envelope_title(e: Any) -> str:
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

    def _stream(self, kind: str, event: Any) -> Block:
        """Streamed text (``assistant`` or ``thinking``) goes into the open block of its kind; a new block
        (a new assistant message, or the first text after the other kind) finishes the open ones."""
        block, other = (self._assistant, self._thinking) if kind == "assistant" else (self._thinking, self._assistant)
        new_message = (kind == "assistant" and block is not None and event.message_id and block.message_id
                       and event.message_id != block.message_id)
        if block is None or new_message:
            for open_block in (block, other):
                if open_block is not None:
                    open_block.finish()
            block = self.add(Block(kind, message_id=event.message_id))
            block.live = True
            self._assistant, self._thinking = (block, None) if kind == "assistant" else (None, block)
        block.add_text(event.text, event.partial)
        return block

    def _break(self) -> None:
        """The next assistant/thinking text starts a new block; the current ones are complete."""
        for block in (self._assistant, self._thinking):
            if block is not None:
                block.finish()
        self._assistant = None
        self._thinking = None

    def apply(self, event: Any) -> Block | None:  # noqa: C901 - one dispatch on event type
        kind = type(event).__name__  # by name: no import of the kernel's event module (first frame)
        if kind == "UserTurn":
            self._start_turn()
            return self.add(Block("user", text=event.text))
        if kind == "EnvelopeReceived":
            self._start_turn()
            return self.add(Block("envelope", title=envelope_title(event), text=preview(event.body),
                                  detail=event.body))
        if kind == "StateChanged":
            if event.new == "working":
                self.in_turn = True
            elif event.new in ("ready", "closed"):
                self.in_turn = False
                self._break()
            elif event.new == "error":
                self.in_turn = False
                reason = event.reason.strip()
                last = self.blocks[-1] if self.blocks else None
                if reason and not (last is not None and last.kind == "error"):
                    self._break()
                    return self.add(Block("error", text=reason, is_error=True))
            return None
        if kind == "TurnResult":
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
        if kind == "AgentError":
            self._break()
            text = event.message + (f"\n{event.stderr_tail.strip()}" if event.stderr_tail.strip() else "")
            return self.add(Block("error", text=text, is_error=True))
        if kind == "ApprovalAnswered":
            if self.pending_permission is not None:
                block = self.pending_permission
                self.pending_permission = None
                verdict = ("✓ allowed" + (" (always)" if event.always else "")) if event.allow else "✗ denied"
                block.text = verdict
                block.touch()
                return block
            return None
        if kind == "PermissionRequest":
            self._break()
            title = f"⚠ approval needed: {event.tool_name}" + (f"({event.summary})" if event.summary else "")
            block = self.add(Block("permission", title=title, text="y allow · n deny · a always allow"))
            self.pending_permission = block
            return block
        if kind == "CompactBoundary":
            return self.add(Block("notice", text=f"✂ context compacted ({event.trigger or 'auto'})"))
        if kind == "UnknownEvent":  # a record whose plugin is not installed: kept, and said so
            return self.add(Block("notice", text=f"? {event.describe()}"))
        # content events: only inside a turn (outside one they are a driver replaying history)
        if not self.in_turn or getattr(event, "parent_tool_use_id", None) is not None:
            return None
        if kind == "AssistantText":
            return self._stream("assistant", event)
        if kind == "Thinking":
            return self._stream("thinking", event)
        if kind == "ToolUse":
            self._break()
            summary = event.summary if event.summary and event.summary != event.name else ""
            title = f"⏺ {event.name}({summary})" if summary else f"⏺ {event.name}"
            block = self.add(Block("tool", title=title, tool_call_id=event.tool_call_id))
            self._tools[event.tool_call_id] = block
            return block
        if kind == "ToolResult":
            block = self._tools.pop(event.tool_call_id, None)
            if block is None:
                return None
            block.detail = ("error: " if event.is_error else "") + (event.text.strip() or "ok")
            block.text = first_line(block.detail) or "ok"
            block.is_error = event.is_error
            block.touch()
            return block
        if kind == "Plan":
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
