"""Citations as HTML (answer and document page) and as Markdown footnotes (export).

The answer is rendered from its raw text: each marker is swapped for a placeholder made of
private-use characters (which are taken out of the model's text first, so it cannot forge one),
the text goes through the usual Markdown render and nh3 sanitiser untouched, and the
placeholders are then replaced by citation elements built here with every value escaped. The
quote and the document name therefore never pass through Markdown, and the sanitiser's
allow-list stays as small as it is.

A citation is a link to the document page, so it works without JavaScript:
`<document url>?mark=<start>-<end>#cite` for a verified quote (the page wraps that stretch of the
stored text in `<mark id="cite">`, see `document_marked_html`); the plain document URL for an
unverified one; a `<span>` when the quote names no document of the conversation. The offsets
ride in the URL rather than an answer id, so a link works while the answer still streams,
before anything is stored.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from django.utils.translation import gettext

from docqa.chat.citations import Citation, citations_check, markers_find, not_found_label, stream_split
from docqa.chat.markdown import markdown_render

QUOTE_SHOWN_CHARS = 280
_OPEN = "\ue000"
_CLOSE = "\ue001"
_PLACEHOLDER = re.compile(f"{_OPEN}([0-9]+){_CLOSE}")
_MARK = re.compile(r"([0-9]{1,9})-([0-9]{1,9})")


@dataclass(frozen=True)
class CitedDocument:
    """A document of the conversation, in the order it was sent (number 1 first)."""

    id: int
    name: str
    url: str  # the document page
    text: str = ""  # the stored extracted text; needed only when citations are not given


def _shown_quote(quote: str) -> str:
    quote = " ".join(quote.split())
    if len(quote) > QUOTE_SHOWN_CHARS:
        quote = quote[:QUOTE_SHOWN_CHARS].rstrip() + "…"
    return quote


def citation_html(citation: Citation, document: CitedDocument | None) -> str:
    """One citation element; every value escaped."""
    verified = citation.verified and document is not None
    name = document.name if document else gettext("unknown document")
    parts = [
        f'<span class="citation-document">{escape(name)}</span>',
        f'<q class="citation-quote">{escape(_shown_quote(citation.quote))}</q>',
    ]
    if verified and citation.location:
        parts.append(f'<span class="citation-location">{escape(citation.location)}</span>')
    if not verified:
        parts.append(f'<span class="citation-status">{escape(not_found_label())}</span>')
    attributes = (
        f'class="citation citation-{"verified" if verified else "unverified"}" data-role="citation" '
        f'data-verified="{"true" if verified else "false"}" data-quote-index="{citation.index}"'
    )
    inner = " ".join(parts)
    if document is None:
        return f"<span {attributes}>{inner}</span>"
    href = document.url
    if verified and citation.span:
        href += f"?mark={citation.span[0]}-{citation.span[1]}#cite"
    return f'<a href="{escape(href)}" {attributes} data-document="{document.id}">{inner}</a>'


def answer_html(
    text: str,
    *,
    documents: Sequence[CitedDocument],
    citations: Sequence[Citation] | None = None,
    final: bool = True,
) -> str:
    """Sanitised HTML of an answer with its markers as citation elements.

    While streaming (`final=False`) a marker still open is left out, to appear whole later.
    `citations` are the stored results; without them (or when they do not cover every marker)
    the markers are checked here against `documents[i].text`.
    """
    shown, _ = stream_split(text, final=final)
    shown = shown.replace(_OPEN, "\ufffd").replace(_CLOSE, "\ufffd")
    markers = markers_find(shown)
    if citations is None or len(citations) < len(markers):
        citations = citations_check(shown, [d.text for d in documents], [d.id for d in documents])
    pieces = []
    last = 0
    for marker in markers:
        pieces.append(shown[last : marker.start])
        pieces.append(f"{_OPEN}{marker.index}{_CLOSE}")
        last = marker.end
    pieces.append(shown[last:])
    html = markdown_render("".join(pieces))

    def element(found: re.Match) -> str:
        citation = citations[int(found.group(1))]
        number = citation.document_number
        document = documents[number - 1] if number is not None and 1 <= number <= len(documents) else None
        return citation_html(citation, document)

    return _PLACEHOLDER.sub(element, html)


def mark_parse(value: str, length: int) -> tuple[int, int] | None:
    """The span of a `?mark=<start>-<end>` value, if it lies within a text of `length`."""
    found = _MARK.fullmatch(value or "")
    if not found:
        return None
    start, end = int(found.group(1)), int(found.group(2))
    return (start, end) if 0 <= start < end <= length else None


def document_marked_html(text: str, span: tuple[int, int] | None) -> str:
    """A document's text, escaped, with the span inside `<mark id="cite">` (for `<pre>`)."""
    if not span or not 0 <= span[0] < span[1] <= len(text):
        return escape(text)
    start, end = span
    return (
        f'{escape(text[:start])}<mark id="cite" tabindex="-1">{escape(text[start:end])}</mark>'
        f"{escape(text[end:])}"
    )


def answer_markdown_footnotes(text: str, citations: Sequence[Citation], names: Sequence[str]) -> str:
    """The answer for the Markdown export: markers become footnotes naming document and quote."""
    markers = markers_find(text)
    if not markers:
        return text
    pieces = []
    last = 0
    for marker in markers:
        pieces.append(text[last : marker.start])
        pieces.append(f"[^{marker.index + 1}]")
        last = marker.end
    pieces.append(text[last:])
    notes = []
    for citation in citations[: len(markers)]:
        number = citation.document_number
        name = (
            names[number - 1]
            if number is not None and 1 <= number <= len(names)
            else gettext("unknown document")
        )
        quote = " ".join(citation.quote.split()).replace("]", "\\]")
        line = f"[^{citation.index + 1}]: {name}: “{quote}”"
        if citation.location:
            line += f" ({citation.location})"
        if not citation.verified:
            line += f" ({not_found_label()})"
        notes.append(line)
    return "".join(pieces).rstrip() + "\n\n" + "\n".join(notes) + "\n"
