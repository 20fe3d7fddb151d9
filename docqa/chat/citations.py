"""Citations in an answer: the `【n†exact words】` markers, their verification and a summary.

Pure functions of plain values (no models, no network); the caller passes the conversation's
documents in the order they were sent, and stores the results once per finished answer.

The marker grammar, as decided:
- `【`, a reference of at most 80 characters without a line break, `†` (U+2020, the only
  separator: a colon is too common inside ordinary `【…】` brackets), the quote, `】`.
- The reference is the 1-based document number; `【4:0†…】` (OpenAI's style) counts as 4 and
  fullwidth digits count. Any other reference (a file name, `†` alone) still makes a citation,
  one that cannot be verified, so a reader sees it flagged rather than trusting it.
- `【…】` without `†` in its head is ordinary text (Chinese writing uses the brackets).
- Nesting: the innermost `【…】` wins; an outer `【` left open is plain text, and so is a stray
  `】`. The cost is linear in the answer's length, however long the quote.
- Streaming: text from the last `【` on is held back while it can still become a marker (no
  `】` yet, head still plausible); when the answer ends nothing is held, and an unclosed marker
  is plain text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from django.utils.translation import gettext, ngettext

from docqa.chat.citations_match import quote_find

OPEN = "【"
CLOSE = "】"
SEPARATOR = "†"
REFERENCE_MAX_CHARS = 80
_NUMBER = re.compile(r"([0-9]+)(?:[:：][0-9]+)?")


@dataclass(frozen=True)
class Marker:
    """One citation marker as written: where it is in the answer and what it says."""

    index: int  # 0-based, in the order of the answer
    start: int  # offset of `【`
    end: int  # offset after `】`
    reference: str  # what was written before `†`
    number: int | None  # the 1-based document number, when the reference is one
    quote: str


@dataclass(frozen=True)
class Citation:
    """A marker checked against its document's stored text (what is stored per answer)."""

    index: int
    document_number: int | None
    document_id: int | None
    quote: str
    verified: bool
    score: float
    span: tuple[int, int] | None  # original offsets in the document's text, for <mark>
    location: str  # the nearest preceding "Slide 2" / "Page 3" / "第 3 页" heading, or ""

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> Citation:
        span = data.get("span")
        return cls(**{**data, "span": tuple(span) if span else None})


def _head(inside: str) -> int:
    """Where `†` ends a plausible reference in a marker's inside, or -1."""
    separator = inside.find(SEPARATOR, 0, REFERENCE_MAX_CHARS + 1)
    if separator < 0 or "\n" in inside[:separator]:
        return -1
    return separator


def _number(reference: str) -> int | None:
    found = _NUMBER.fullmatch(unicodedata.normalize("NFKC", reference).strip())
    return int(found.group(1)) if found else None


def markers_find(text: str) -> list[Marker]:
    """The closed citation markers of an answer, in order."""
    markers: list[Marker] = []
    position = 0
    while True:
        close = text.find(CLOSE, position)
        if close < 0:
            return markers
        opening = text.rfind(OPEN, position, close)
        position = close + 1
        if opening < 0:
            continue
        inside = text[opening + 1 : close]
        separator = _head(inside)
        if separator < 0:
            continue
        reference = inside[:separator].strip()
        markers.append(
            Marker(
                index=len(markers),
                start=opening,
                end=close + 1,
                reference=reference,
                number=_number(reference),
                quote=inside[separator + 1 :].strip(),
            )
        )


def stream_split(text: str, *, final: bool = False) -> tuple[str, str]:
    """(shown, held): the part of a streaming answer safe to show, and the part held back.

    Held is a trailing marker not yet closed; once the answer is final nothing is held.
    """
    if final:
        return text, ""
    opening = text.rfind(OPEN)
    if opening < 0 or CLOSE in text[opening:]:
        return text, ""
    inside = text[opening + 1 :]
    if SEPARATOR in inside[: REFERENCE_MAX_CHARS + 1]:
        plausible = _head(inside) >= 0
    else:
        plausible = len(inside) <= REFERENCE_MAX_CHARS and "\n" not in inside
    if not plausible:
        return text, ""
    return text[:opening], text[opening:]


def citations_check(
    text: str, documents: Sequence[str], document_ids: Sequence[int | None] = ()
) -> list[Citation]:
    """Every marker of an answer checked against the text of the document it names.

    `documents` are the documents' stored texts in the order they were sent (number 1 first);
    `document_ids` their ids in the same order. A number outside the list, or a reference that
    is no number, gives an unverified citation with no document.
    """
    citations = []
    for marker in markers_find(text):
        number = marker.number
        known = number is not None and 1 <= number <= len(documents)
        found = quote_find(marker.quote, documents[number - 1]) if known else None
        citations.append(
            Citation(
                index=marker.index,
                document_number=number,
                document_id=document_ids[number - 1] if known and number <= len(document_ids) else None,
                quote=marker.quote,
                verified=bool(found and found.verified),
                score=found.score if found else 0.0,
                span=found.span if found else None,
                location=found.location if found else "",
            )
        )
    return citations


def citations_summary(citations: Sequence[Citation]) -> str:
    """ "3 quotes, 3 verified" or "2 of 3 verified" ("" when the answer quotes nothing)."""
    total = len(citations)
    if not total:
        return ""
    verified = sum(1 for citation in citations if citation.verified)
    if verified == total:
        return ngettext(
            "%(total)d quote, %(verified)d verified", "%(total)d quotes, %(verified)d verified", total
        ) % {"total": total, "verified": verified}
    return ngettext("%(verified)d of %(total)d verified", "%(verified)d of %(total)d verified", total) % {
        "total": total,
        "verified": verified,
    }


def not_found_label() -> str:
    """The words an unverified citation carries."""
    return gettext("not found in the document")
