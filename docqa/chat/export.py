"""A conversation as a Markdown document, for download."""

from __future__ import annotations

from django.utils.translation import gettext as _

from docqa.chat.answers import stored_citations
from docqa.chat.citations import Citation
from docqa.chat.citations_render import answer_markdown_footnotes
from docqa.chat.models import Conversation, State
from docqa.chat.selectors import conversation_documents, conversation_turns


def _names(citations: list[Citation], filenames: dict[int, str]) -> list[str]:
    """Document names by the numbers the citations used (each stored with its document's id)."""
    numbers = [c.document_number for c in citations if c.document_number and c.document_number > 0]
    names = [_("unknown document")] * max(numbers, default=0)
    for citation in citations:
        if citation.document_number and citation.document_number > 0 and citation.document_id in filenames:
            names[citation.document_number - 1] = filenames[citation.document_id]
    return names


def conversation_export_markdown(*, conversation: Conversation, shown: set[int] | None = None) -> str:
    """The conversation as a Markdown document (questions, answers, the documents it used).

    Of a question's answers (its versions) the one in `shown` is written, else the latest.

    An answer's citations become footnotes naming the document and the quote, marking the
    ones not found in the document (as checked when the answer ended).
    """
    lines = [f"# {conversation.title}", ""]
    documents = conversation_documents(conversation)
    filenames = {d.pk: d.filename for d in documents}
    if documents:
        lines.append(_("Documents:"))
        lines += [f"- {d.filename}" for d in documents]
        lines.append("")
    shown = shown or set()
    for turn in conversation_turns(conversation):
        lines += [f"## {_('Question')}", "", turn.question.content, ""]
        message = next((a for a in turn.answers if a.pk in shown), turn.shown)
        if message is None:
            continue
        heading = _("Answer")
        if message.model:
            heading += f" ({message.model})"
        lines += [f"## {heading}", ""]
        citations = stored_citations(message.citations)
        if message.content and citations:
            lines += [answer_markdown_footnotes(message.content, citations, _names(citations, filenames)), ""]
        elif message.content:
            lines += [message.content, ""]
        if message.state != State.COMPLETE:
            lines += [
                f"*{message.get_state_display()}*" + (f": {message.error_display}" if message.error else ""),
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"
