"""The transcript view: a virtualised Line-API widget over a :class:`TranscriptModel`.

Only visible blocks are rendered. Each block's height starts as a cheap estimate (line lengths over the
width) and becomes exact the first time the block is drawn; a prefix-sum of heights maps a screen row
to its block with a bisect, so a 10,000-block transcript scrolls as fast as a short one. Rendered
strips are cached per ``(block id, version, width)``. Changes are applied in batches by
:meth:`Transcript.flush` (the app calls it once per burst of events), which also keeps the view pinned
to the bottom while the user has not scrolled up. A click copies the block under the pointer
(thinking blocks also expand/collapse).
"""

from __future__ import annotations

from bisect import bisect_right
from itertools import accumulate

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual import events
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from .blocks import Block, TranscriptModel

S_USER = Style(bold=True)
S_PROMPT = Style(color="cyan", bold=True)
S_ENV = Style(color="magenta", bold=True)
S_DIM = Style(dim=True)
S_THINK = Style(dim=True, italic=True)
S_TOOL_OK = Style(color="green")
S_TOOL_ERR = Style(color="red")
S_TOOL_RUN = Style(color="yellow")
S_ERR = Style(color="red")
S_WARN = Style(color="yellow", bold=True)
MARGIN_KINDS = ("user", "envelope", "assistant", "permission", "error")
MARKDOWN_LIMIT = 50_000  # longer messages render as plain text (markdown of huge text is slow)


def block_margin(block: Block, index: int) -> int:
    return 1 if index > 0 and block.kind in MARGIN_KINDS else 0


def wrap_rows(text: str, width: int) -> list[tuple[str, int]]:
    """Greedy word wrap of plain text: ``[(row, consumed)]`` where ``consumed`` counts the row's
    characters plus the space or newline it broke at. Always at least one row (possibly empty)."""
    out: list[tuple[str, int]] = []
    width = max(1, width)
    i, n = 0, len(text)
    while i < n:
        nl = text.find("\n", i, i + width + 1)
        if nl != -1:
            out.append((text[i:nl], nl + 1 - i))
            i = nl + 1
            if i == n:
                out.append(("", 0))
            continue
        if n - i <= width:
            out.append((text[i:], n - i))
            break
        cut = text.rfind(" ", i, i + width + 1)
        if cut <= i:
            out.append((text[i:i + width], width))
            i += width
        else:
            out.append((text[i:cut], cut + 1 - i))
            i = cut + 1
    return out or [("", 0)]


class LiveText:
    """Incremental rendering of a message that only grows: complete rows are wrapped once, only the
    tail is re-wrapped when text arrives (streaming stays O(new text), not O(message))."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.pos = 0  # text[:pos] is in complete rows
        self.rows: list[Strip] = []
        self.prefix_len = 0

    def update(self, text: str) -> list[Strip]:
        wrapped = wrap_rows(text[self.pos:], self.width)
        for row, consumed in wrapped[:-1]:
            self.rows.append(Strip([Segment(row)], len(row)))
            self.pos += consumed
        tail = wrapped[-1][0]
        return [*self.rows, Strip([Segment(tail)], len(tail))]


def estimate_height(block: Block, width: int, index: int) -> int:
    """A cheap guess of the rendered height (exact for most plain-text blocks)."""
    w = max(1, width - 2)
    if block.kind == "thinking" and not block.expanded:
        body = 1
    elif block.kind == "tool":
        body = 1 + (1 if block.text else 0)
    else:
        text = block.text
        if block.kind in ("envelope", "permission", "plan") or (block.kind == "notice" and block.title):
            text = f"{block.title}\n{text}"
        body = sum(max(1, -(-len(line) // w)) for line in text.split("\n")) if text else 1
        if block.kind == "assistant" and not block.streaming:
            body += text.count("```")  # fences add a little
    return block_margin(block, index) + body


def renderable_for(block: Block) -> RenderableType:
    kind = block.kind
    if kind == "user":
        return Text.assemble(("› ", S_PROMPT), (block.text, S_USER))
    if kind == "envelope":
        body = Padding(Text(block.text, style=S_DIM), (0, 0, 0, 2))
        return Group(Text(block.title, style=S_ENV), body)
    if kind == "assistant":
        if block.live or block.streaming or len(block.text) > MARKDOWN_LIMIT:
            return Text(block.text)
        from rich.markdown import Markdown  # imported on first use: keeps the first frame fast

        return Markdown(block.text or " ", code_theme="monokai")
    if kind == "thinking":
        if block.expanded:
            return Text("✻ " + block.text, style=S_THINK)
        words = len(block.text.split())
        return Text(f"✻ thinking · {words} words (click to expand)", style=S_THINK)
    if kind == "tool":
        style = S_TOOL_ERR if block.is_error else (S_TOOL_OK if block.text else S_TOOL_RUN)
        head = Text.assemble(("⏺ ", style), (block.title.removeprefix("⏺ "), ""))
        if not block.text:
            return head
        result = Text("  └ " + block.text, style=S_TOOL_ERR if block.is_error else S_DIM, no_wrap=True,
                      overflow="ellipsis")
        return Group(head, result)
    if kind == "plan":
        return Group(Text("☰ plan", style=S_DIM), Text(block.text))
    if kind == "permission":
        return Group(Text(block.title, style=S_WARN), Text("  " + block.text, style=S_DIM))
    if kind == "error":
        return Text("✗ " + block.text, style=S_ERR)
    if block.title:
        return Group(Text(block.title, style=S_DIM), Text(block.text, style=S_DIM))
    return Text(block.text, style=S_DIM)


class Transcript(ScrollView, can_focus=True):
    """A virtualised view of one session's blocks."""

    DEFAULT_CSS = """
    Transcript { height: 1fr; padding: 0 1; scrollbar-size-vertical: 1; overflow-x: hidden; }
    """

    class Copied(Message):
        def __init__(self, text: str) -> None:
            self.text = text
            super().__init__()

    def __init__(self, model: TranscriptModel | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        self.model = model or TranscriptModel()
        self._heights: list[int] = []
        self._offsets: list[int] = [0]
        self._index: dict[int, int] = {}
        self._cache: dict[int, tuple[int, int, list[Strip]]] = {}
        self._live: dict[int, LiveText] = {}
        self._changed: set[int] = set()
        self._width = 0
        self.follow = True

    # --- model changes ------------------------------------------------------------------------

    def note_change(self, block: Block | None) -> None:
        """Remember that ``block`` changed (or that blocks were appended); applied by :meth:`flush`."""
        if block is not None and block.id in self._index:
            self._changed.add(block.id)

    def replace_model(self, model: TranscriptModel) -> None:
        """Show ``model`` instead (every block measured and drawn again)."""
        self.model = model
        self._width = 0  # flush() then re-measures everything
        self._cache.clear()
        self._live.clear()
        self._changed.clear()
        self.flush()

    def flush(self) -> None:
        """Apply pending changes: heights, virtual size, follow-the-bottom, repaint."""
        width = self._content_width()
        if width <= 0:
            return
        was_at_end = self.follow or self.scroll_y >= self.max_scroll_y - 1
        if width != self._width:
            self._width = width
            self._heights = [estimate_height(b, width, i) for i, b in enumerate(self.model.blocks)]
            self._live.clear()
            self._index = {b.id: i for i, b in enumerate(self.model.blocks)}
            self._changed.clear()
            self._offsets = [0, *accumulate(self._heights)]
        else:
            first = len(self._heights)
            blocks = self.model.blocks
            for i in range(first, len(blocks)):
                self._index[blocks[i].id] = i
                self._heights.append(estimate_height(blocks[i], width, i))
            low = first
            for block_id in self._changed:
                i = self._index.get(block_id)
                if i is None:
                    continue
                block = blocks[i]
                if block.live and block.kind == "assistant":
                    self._heights[i] = len(self._render_live(block, i))  # exact and cheap
                else:
                    self._heights[i] = estimate_height(block, width, i)
                low = min(low, i)
            self._changed.clear()
            self._recompute(low)
        self.virtual_size = Size(width, self._offsets[-1])
        if was_at_end:
            self.follow = True
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            self.call_after_refresh(self._stick)
        self.refresh()

    def _stick(self) -> None:
        if self.follow and self.scroll_y < self.max_scroll_y:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def _recompute(self, low: int) -> None:
        offsets = self._offsets
        n = len(self._heights)
        if low >= n and len(offsets) == n + 1:
            return
        del offsets[low + 1:]
        total = offsets[low]
        for h in self._heights[low:]:
            total += h
            offsets.append(total)

    def _content_width(self) -> int:
        return self.scrollable_content_region.width

    def on_resize(self, event: events.Resize) -> None:
        self.flush()

    def on_mount(self) -> None:
        self.flush()

    # --- rendering ----------------------------------------------------------------------------

    def _render_live(self, block: Block, i: int) -> list[Strip]:
        cached = self._cache.get(block.id)
        if cached is not None and cached[0] == block.version and cached[1] == self._width:
            return cached[2]
        live = self._live.get(block.id)
        if live is None or live.width != self._width:
            live = self._live[block.id] = LiveText(self._width)
        strips = live.update(block.text)
        if block_margin(block, i):
            strips.insert(0, Strip.blank(0))
        self._cache[block.id] = (block.version, self._width, strips)
        return strips

    def _strips(self, i: int) -> list[Strip]:
        block = self.model.blocks[i]
        width = self._width
        cached = self._cache.get(block.id)
        if cached is not None and cached[0] == block.version and cached[1] == width:
            return cached[2]
        if block.live and block.kind == "assistant":
            strips = self._render_live(block, i)
        else:
            self._live.pop(block.id, None)
            console = self.app.console
            options = console.options.update_width(max(1, width))
            lines = console.render_lines(renderable_for(block), options, pad=False)
            strips = [Strip(line) for line in lines] or [Strip.blank(0)]
            if block_margin(block, i):
                strips.insert(0, Strip.blank(0))
            self._cache[block.id] = (block.version, width, strips)
        if len(self._cache) > 600:  # keep memory bounded on huge transcripts
            for key in list(self._cache)[:200]:
                if key not in self._live:
                    del self._cache[key]
        if len(strips) != self._heights[i]:
            self._heights[i] = len(strips)
            self._recompute(i)
            self.virtual_size = Size(width, self._offsets[-1])
            if self.follow:
                self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
            self.refresh()
        return strips

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        scroll_y = int(self.scroll_offset.y)
        absolute = scroll_y + y
        style = self.rich_style
        offsets = self._offsets
        n = len(self._heights)
        if n == 0 or absolute >= offsets[-1] or self._width <= 0:
            return Strip.blank(width, style)
        i = bisect_right(offsets, absolute) - 1
        if i >= n:
            return Strip.blank(width, style)
        strips = self._strips(i)
        row = absolute - self._offsets[i]
        if row < 0 or row >= len(strips):
            return Strip.blank(width, style)
        return strips[row].crop_extend(0, width, style).apply_style(style)

    # --- interaction --------------------------------------------------------------------------

    def block_at(self, content_y: int) -> Block | None:
        absolute = int(self.scroll_offset.y) + content_y
        if absolute < 0 or absolute >= self._offsets[-1]:
            return None
        i = bisect_right(self._offsets, absolute) - 1
        return self.model.blocks[i] if 0 <= i < len(self.model.blocks) else None

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is None:
            return
        block = self.block_at(offset.y)
        if block is None:
            return
        if block.kind == "thinking":
            block.expanded = not block.expanded
            block.touch()
            self.note_change(block)
            self.flush()
        text = block.copy_text()
        self.app.copy_to_clipboard(text)
        self.post_message(self.Copied(text))

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if new >= self.max_scroll_y - 1:
            self.follow = True
        elif new < old:  # the user scrolled up: stop following the bottom
            self.follow = False

    @property
    def total_lines(self) -> int:
        return self._offsets[-1]


_ = Segment  # rich segments flow through Strip
