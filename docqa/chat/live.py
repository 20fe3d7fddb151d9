"""A streaming answer rendered as the page shows it, at a bounded rate.

The SSE view keeps one `LiveAnswer` per watching page: it holds the answer's text so far and
renders the whole of it (the same Markdown, sanitiser and citation elements as the finished
answer, so nothing jumps at the end) at most once per `interval()`. The interval grows with
the render's own cost (`RENDER_COST_SHARE`), so however long the answer, rendering takes a
bounded share of a core and the total cost grows with the length, not its square.

Each citation is checked once, when its marker closes: the text of the document it names is
read then (one query per cited document per page, never per delta) and normalised once per
process (`citations_match.prepared`). The task checks the same quotes against the same texts
when the answer ends, so the live elements and the stored ones agree.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

from docqa.chat.citations import Citation, citations_check, markers_find, stream_split
from docqa.chat.citations_render import CitedDocument, answer_html

# At most this many renders a second per page…
RENDER_INTERVAL = 0.1
# …and no more than this share of the time spent rendering (a long answer renders less often).
RENDER_COST_SHARE = 0.1


class _Texts(Sequence):
    """The documents' texts, each read on first use (what `citations_check` indexes)."""

    def __init__(self, ids: Sequence[int], load: Callable[[int], str]) -> None:
        self.ids = list(ids)
        self.load = load
        self.loaded: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index):  # only integers: citations_check asks for one document
        if index not in self.loaded:
            self.loaded[index] = self.load(self.ids[index])
        return self.loaded[index]


class LiveAnswer:
    """One streaming answer's text, rendered on demand; `load(document_id)` reads a text."""

    def __init__(
        self, documents: Sequence[CitedDocument], load: Callable[[int], str], content: str = ""
    ) -> None:
        self.documents = list(documents)
        self.texts = _Texts([d.id for d in self.documents], load)
        self.content = content
        self.rendered_length = -1
        self.rendered_at = 0.0
        self.cost = 0.0
        self._checked: dict[str, Citation] = {}

    def append(self, text: str) -> None:
        self.content += text

    @property
    def pending(self) -> bool:
        return len(self.content) != self.rendered_length

    def interval(self) -> float:
        return max(RENDER_INTERVAL, self.cost / RENDER_COST_SHARE)

    def wait(self, now: float | None = None) -> float:
        """Seconds until a render is due (0: now); only meaningful while `pending`."""
        now = time.monotonic() if now is None else now
        return max(0.0, self.rendered_at + self.interval() - now)

    def citations(self, shown: str) -> list[Citation]:
        citations = []
        for marker in markers_find(shown):
            key = shown[marker.start : marker.end]
            if key not in self._checked:
                self._checked[key] = citations_check(key, self.texts, self.texts.ids)[0]
            citations.append(replace(self._checked[key], index=marker.index))
        return citations

    def render(self, *, final: bool = False) -> str:
        """The answer so far as HTML (a marker still open is left out unless `final`)."""
        started = time.monotonic()
        shown, _held = stream_split(self.content, final=final)
        html = answer_html(shown, documents=self.documents, citations=self.citations(shown), final=True)
        finished = time.monotonic()
        self.cost = finished - started
        self.rendered_at = finished
        self.rendered_length = len(self.content)
        return html
