"""A conversation as a Markdown document, for download."""

from __future__ import annotations

from django.utils.translation import gettext as _

from docqa.chat.models import Conversation, Role, State
from docqa.chat.selectors import conversation_messages


def conversation_export_markdown(*, conversation: Conversation) -> str:
    """The conversation as a Markdown document (questions, answers, the documents it used)."""
    lines = [f"# {conversation.title}", ""]
    documents = list(conversation.ordered_documents())
    if documents:
        lines.append(_("Documents:"))
        lines += [f"- {d.filename}" for d in documents]
        lines.append("")
    for message in conversation_messages(conversation):
        if message.role == Role.USER:
            lines += [f"## {_('Question')}", "", message.content, ""]
            continue
        heading = _("Answer")
        if message.model:
            heading += f" ({message.model})"
        lines += [f"## {heading}", ""]
        if message.content:
            lines += [message.content, ""]
        if message.state != State.COMPLETE:
            lines += [
                f"*{message.get_state_display()}*" + (f": {message.error_display}" if message.error else ""),
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"
