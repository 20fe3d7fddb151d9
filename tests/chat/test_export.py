"""A conversation as Markdown: its documents, each question and answer, and how unfinished answers ended."""

from __future__ import annotations

from docqa.chat.export import conversation_export_markdown
from docqa.chat.models import State
from docqa.notes import note
from tests.factories import exchange_create


def test_export_lists_documents_questions_answers_and_unfinished_states(
    db, user, make_document, make_conversation
):
    conversation = make_conversation(user, [make_document(user, "acme.pdf"), make_document(user, "oslo.txt")])
    exchange_create(conversation=conversation, question="What grew?", content="Revenue.", model="kimi-k2")
    exchange_create(
        conversation=conversation,
        question="And then?",
        state=State.FAILED,
        content="Half",
        error=note("Moonshot had a server error."),
        model="kimi-k2",
    )
    text = conversation_export_markdown(conversation=conversation)
    assert text == (
        f"# {conversation.title}\n\nDocuments:\n- acme.pdf\n- oslo.txt\n\n"
        "## Question\n\nWhat grew?\n\n## Answer (kimi-k2)\n\nRevenue.\n\n"
        "## Question\n\nAnd then?\n\n## Answer (kimi-k2)\n\nHalf\n\n*Failed*: Moonshot had a server error.\n"
    )
