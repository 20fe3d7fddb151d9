"""Reads for the chat pages: a user's conversations (searched), a conversation's messages and
documents (never their texts: a page shows names and links, the texts stay in the database)."""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Q, QuerySet

from docqa.chat.citations_render import CitedDocument
from docqa.chat.models import Conversation, Message, Role
from docqa.documents.models import Document

# The stored file's texts, which the chat pages never show.
_TEXT_FIELDS = ("stored_file__content_raw", "stored_file__content_text")


def conversations_search(*, owner, query: str = "") -> QuerySet[Conversation]:
    """The owner's conversations, newest activity first; `query` matches titles and message text."""
    conversations = Conversation.objects.filter(owner=owner)
    query = query.strip()
    if query:
        matching = Message.objects.filter(conversation__owner=owner, content__icontains=query).values(
            "conversation_id"
        )
        conversations = conversations.filter(Q(title__icontains=query) | Q(pk__in=matching))
    return conversations.prefetch_related("documents")


def conversation_messages(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.order_by("id"))


@dataclass
class Turn:
    """A question and its answers: the versions Regenerate made, oldest first (the last is shown)."""

    question: Message
    answers: list[Message] = field(default_factory=list)

    @property
    def shown(self) -> Message | None:
        return self.answers[-1] if self.answers else None


def conversation_turns(conversation: Conversation) -> list[Turn]:
    """The conversation as questions, each with all its answers (Regenerate keeps earlier ones)."""
    turns: dict[int, Turn] = {}
    for message in conversation_messages(conversation):
        if message.role == Role.USER:
            turns[message.pk] = Turn(message)
        elif message.question_id in turns:
            turns[message.question_id].answers.append(message)
    return list(turns.values())


def turn_of(question: Message) -> Turn:
    return Turn(question, list(question.answers.order_by("id")))


def recent_conversations(*, owner, limit: int = 50) -> list[Conversation]:
    """The sidebar's list: the owner's conversations, most recent activity first (titles only)."""
    return list(Conversation.objects.filter(owner=owner).only("pk", "title", "updated_at")[:limit])


def last_question_id(conversation_id: int) -> int | None:
    """The newest question's id (its answers, every version, offer Regenerate)."""
    return (
        Message.objects.filter(conversation_id=conversation_id, role=Role.USER)
        .order_by("-id")
        .values_list("pk", flat=True)
        .first()
    )


def conversation_documents(conversation: Conversation) -> list[Document]:
    """The conversation's documents in order, with their stored files but not their texts."""
    return list(conversation.ordered_documents().defer(*_TEXT_FIELDS))


def cited_documents(conversation_id: int) -> list[CitedDocument]:
    """The conversation's documents as citations link them (number 1 first), without texts."""
    documents = (
        Document.objects.filter(conversationdocument__conversation_id=conversation_id)
        .order_by("conversationdocument__position")
        .only("pk", "filename")
    )
    return [CitedDocument(d.pk, d.filename, d.get_absolute_url()) for d in documents]
