"""An answer as the pages show it: its Markdown with the citations stored when it ended.

A stored citation names its document by id, so it keeps pointing at the document it was
checked against even if the conversation's list changes later (a deleted document shows as
an unknown one). An answer without stored citations (still streaming, or ended before they
were checked) has its markers shown unverified: no page loads a document's text to check.
"""

from __future__ import annotations

from collections.abc import Sequence

from docqa.chat.citations import Citation, citations_summary
from docqa.chat.citations_render import CitedDocument, answer_html


def stored_citations(stored: list | None) -> list[Citation] | None:
    return None if stored is None else [Citation.from_dict(item) for item in stored]


def documents_numbered(
    citations: Sequence[Citation], documents: Sequence[CitedDocument]
) -> list[CitedDocument | None]:
    """The documents by the numbers the citations used (None where the number named none)."""
    by_id = {document.id: document for document in documents}
    numbers = [c.document_number for c in citations if c.document_number and c.document_number > 0]
    numbered: list[CitedDocument | None] = [None] * max(numbers, default=0)
    for citation in citations:
        if citation.document_number and citation.document_number > 0 and citation.document_id is not None:
            numbered[citation.document_number - 1] = by_id.get(citation.document_id)
    return numbered


def answer_display_html(
    content: str, stored: list | None, documents: Sequence[CitedDocument], *, final: bool = True
) -> str:
    """Sanitised HTML of an answer with its citation elements (see `citations_render`)."""
    citations = stored_citations(stored)
    if citations is None:
        return answer_html(content, documents=documents, final=final)
    return answer_html(
        content, documents=documents_numbered(citations, documents), citations=citations, final=final
    )


def answer_summary(stored: list | None) -> str:
    """ "3 quotes, 3 verified" / "2 of 3 verified", or "" (nothing quoted, or not checked)."""
    citations = stored_citations(stored)
    return citations_summary(citations) if citations else ""
