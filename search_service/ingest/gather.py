"""Gathering a document's pieces into passages: joined while short, held back so that no
passage is left a fragment, cut anew where two do not fit together (see :class:`Gatherer`).
The splitting itself (lines, headings, chrome) is :mod:`.passages`'s."""

from __future__ import annotations

import re
from dataclasses import dataclass

from search_service.ingest.corpus import Document

SENTENCE_END = re.compile(r"[。！？；!?;]+[”’」』）)]*")
SOFT_BREAK = re.compile(r"[，,、：:]")
_LINE_END = re.compile(r"\n")


Span = tuple[int, int, str, str, str, int | None]  # start, end, heading, section, text, page

# A line this long that ends no sentence is prose that runs on into the next line (a
# paragraph wrapped as PDF text is); a menu item, a tag, a button or a page number is shorter.
RUN_ON_CHARS = 24
ENDS_SENTENCE = ("。", "！", "？", "；", "!", "?", ";", "”", "」", "』", "…")


def is_label(text: str) -> bool:
    """Whether ``text`` is a label rather than prose: short, and ending no sentence."""
    stripped = text.strip()
    return len(stripped) < RUN_ON_CHARS and not stripped.endswith(ENDS_SENTENCE)


@dataclass
class _Held:
    """The last passage made, held back: its group (see :attr:`Gatherer.group`),
    whether a dropped line lies right before it, and whether it is its group's first."""

    span: Span
    group: int
    after_drop: bool = False
    first: bool = True


class Gatherer:
    """A document's passages as its pieces (sentences, lines) come in: each piece joins
    the passage being gathered while one of them is short and the whole fits.

    No passage is shorter than ``min_chars`` unless it is the only one of its group (a
    heading's, a PDF page's, a related item's, the document's): the last passage made
    is held back, and a short one is joined to its neighbour of the same group, across a
    dropped line if one lies between them; when the two do not fit in ``max_chars``,
    the cut between them moves (to a sentence end where there is one) so that each has
    at least ``min_chars``.

    The text is seen through a window: the part being split and the end of the part
    before it (the carry). The passage held back, or one being gathered, may have begun
    there; a passage that can still change began at most ``2 * max_chars`` before the
    part's end (:meth:`next_part` makes the others for good), so that much carried is
    enough; and as far back as a short passage still waiting could be joined to the one
    before it."""

    def __init__(self, min_chars: int, max_chars: int) -> None:
        self.min_chars, self.max_chars = min_chars, max_chars
        self.heading = ""
        self.section = "main"
        self.page: int | None = None  # a PDF's page
        # Passages of one group (under one heading line, on one page, of one related item)
        # are joined when short; a new heading, page, section or item starts another group.
        self.group = 0
        self.window = ""  # the carry and the part being split
        self.base = 0  # where the window starts in the whole text
        self._buf: tuple[int, int] | None = None  # the passage being gathered, in the window
        self._held: _Held | None = None  # the last passage made, held back
        self._dropped = False  # a line dropped since the last passage was made
        self._made_group = -1  # the group of the last passage held back or made
        self._out: list[Span] = []

    def next_part(self, part: Document) -> int:
        """Move the window on to ``part``; how many characters of the last part it carries."""
        held = self._held
        keep = len(self.window) - 2 * self.max_chars
        if held is not None and not held.first and held.span[1] - held.span[0] < self.min_chars:
            # A short passage still waiting may be joined to the one before it, which then
            # must stay in the window: as far back as a join could reach.
            keep = min(keep, held.span[1] - self.base - 2 * self.max_chars)
        carry = self.window[max(0, keep) :]
        # The passage held back leaves the window: nothing can join it any more, so it is
        # made for good, unless it is short after a dropped line: it waits for what follows,
        # to be joined to it (its text is in its span: it needs no carry).
        if (
            held is not None
            and held.span[0] < self.base + len(self.window) - len(carry)
            and (held.span[1] - held.span[0] >= self.min_chars or not held.after_drop)
        ):
            self._release()
        if self._buf is not None:
            shift = len(carry) - len(self.window)
            self._buf = (self._buf[0] + shift, self._buf[1] + shift)
        self.window = carry + part.text
        self.base = part.base - len(carry)
        return len(carry)

    def add(self, piece: tuple[int, int]) -> None:
        buf = self._buf
        if buf is None:
            self._buf = piece
        elif min(buf[1] - buf[0], piece[1] - piece[0]) < self.min_chars and piece[1] - buf[0] <= self.max_chars:
            self._buf = (buf[0], piece[1])
        else:
            self.flush()
            self._buf = piece

    def new_group(self, *, heading: str | None = None, section: str | None = None) -> None:
        """The passage being gathered ends; what follows is another group (a new heading,
        section or related item)."""
        self.flush()
        if heading is not None:
            self.heading = heading
        if section is not None:
            self.section = section
        self.group += 1

    def new_page(self, page: int | None) -> None:
        """What follows is on ``page``: a passage holds the text of one page."""
        self.new_group()
        self.page = page

    def end_paragraph(self) -> None:
        """A paragraph ends here: the passage being gathered ends too, once it is long enough."""
        if self._buf is not None and self._buf[1] - self._buf[0] >= self.min_chars:
            self.flush()

    def drop(self) -> None:
        """A line is dropped as page chrome here: the passage being gathered ends before it."""
        self.flush()
        self._dropped = True

    def flush(self) -> None:
        """The passage being gathered is made (held back, as the last one)."""
        buf = self._buf
        if buf is None:
            return
        self._buf = None
        start, end = self.base + buf[0], self.base + buf[1]
        span = (start, end, self.heading, self.section, self.window[buf[0] : buf[1]], self.page)
        group = self.group
        dropped, self._dropped = self._dropped, False
        held = self._held
        if held is None or held.group != group:
            self._release()
            # The group's first, unless one of its passages was already made for good.
            self._held = _Held(span, group, after_drop=dropped, first=self._made_group != group)
            self._made_group = group
            return
        before = held.span
        if before[1] - before[0] < self.min_chars and held.after_drop and dropped and is_label(before[4]):
            # A label stranded between dropped lines (a tag, a menu word): chrome as they are.
            self._held = _Held(span, group, after_drop=True, first=held.first)
            return
        if min(before[1] - before[0], end - start) >= self.min_chars or (
            dropped and before[1] - before[0] >= self.min_chars
        ):
            # Both long enough; or a short one after a dropped line, which waits for what
            # follows it (joined to that, or at its group's end to the passage before it).
            self._out.append(before)
            self._held = _Held(span, group, after_drop=dropped, first=False)
            return
        # One is short: joined (across a dropped line, if one lies between them), or the cut
        # between them moved so that each is long enough.
        if end - before[0] <= self.max_chars:
            self._held = _Held(self._span(before[0], end, before), group, held.after_drop, held.first)
            return
        cut = self._cut(before[0], before[1], end)
        if cut is not None:
            before, span = self._span(before[0], cut[0], before), self._span(cut[1], end, before)
        self._out.append(before)
        self._held = _Held(span, group, after_drop=dropped and cut is None, first=False)

    def _release(self) -> None:
        """The passage held back is made for good, at the end of its group (joined to the one
        before it when it is too short and not its group's only passage)."""
        held, self._held = self._held, None
        if held is None:
            return
        start, end = held.span[0], held.span[1]
        if end - start < self.min_chars and held.after_drop and not held.first and is_label(held.span[4]):
            return
        last = self._out[-1] if self._out else None
        if end - start < self.min_chars and not held.first and last is not None and last[0] >= self.base:
            # Short at its group's end, after a dropped line: joined to the passage before
            # it, across that line (a passage is a slice), or the cut between them moved,
            # rather than left a fragment.
            if end - last[0] <= self.max_chars:
                self._out[-1] = self._span(last[0], end, last)
                return
            cut = self._cut(last[0], last[1], end)
            if cut is not None:
                self._out[-1] = self._span(last[0], cut[0], last)
                self._out.append(self._span(cut[1], end, last))
                return
        self._out.append(held.span)

    def _span(self, start: int, end: int, like: Span) -> Span:
        """The passage ``[start, end)`` of the text, in the group of ``like``."""
        return (start, end, like[2], like[3], self.window[start - self.base : end - self.base], like[5])

    def _cut(self, start: int, boundary: int, end: int) -> tuple[int, int] | None:
        """Where to cut ``[start, end)`` (which does not fit in one passage) into two of at
        least ``min_chars`` and at most ``max_chars``: the end of the first and the start of
        the second (white space between them left out), at the sentence end, else the soft
        break, else the line end, else the character nearest ``boundary``; None when no cut
        gives both."""
        low, high = max(start + self.min_chars, end - self.max_chars), min(end - self.min_chars, start + self.max_chars)
        if low > high:
            return None
        text, base = self.window, self.base
        for pattern in (SENTENCE_END, SOFT_BREAK, _LINE_END, None):
            if pattern is None:
                candidates = list(range(low, high + 1))
            else:
                candidates = [m.end() + base for m in pattern.finditer(text, low - base, high - base)]
            for at in sorted(candidates, key=lambda c: abs(c - boundary)):
                first_end, second_start = at, at
                while first_end > start and text[first_end - 1 - base].isspace():
                    first_end -= 1
                while second_start < end and text[second_start - base].isspace():
                    second_start += 1
                if first_end - start >= self.min_chars and end - second_start >= self.min_chars:
                    return first_end, second_start
        return None

    def end_part(self) -> None:
        if self._buf is not None and len(self.window) - self._buf[0] >= self.max_chars:
            self.flush()  # nothing after this part can join it

    def take(self) -> list[Span]:
        """The passages made for good so far (not yet taken), but the last one while a
        passage of its group is held back (a short one may still be joined to it)."""
        keep = 1 if self._out and self._held is not None and not self._held.first else 0
        out, self._out = self._out[: len(self._out) - keep], self._out[len(self._out) - keep :]
        return out

    def finish(self) -> list[Span]:
        """The rest, at the document's end."""
        self.flush()
        self._release()
        out, self._out = self._out, []
        return out
