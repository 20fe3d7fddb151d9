"""Reads for the chat pages: a user's conversations (searched) and a conversation's messages."""

from __future__ import annotations

from django.db.models import Q, QuerySet

from docqa.chat.models import Conversation, Message


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


def last_message_id(conversation_id: int) -> int | None:
    """The newest message's id (only the last answer offers Regenerate)."""
    return (
        Message.objects.filter(conversation_id=conversation_id)
        .order_by("-id")
        .values_list("pk", flat=True)
        .first()
    )
