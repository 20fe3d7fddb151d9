"""The user-facing chat actions (the ask's effects beyond the two rows it saves)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from docqa.chat import services
from docqa.documents.models import Document, StoredFile
from tests import factories


@pytest.mark.django_db
def test_asking_marks_the_conversations_documents_used_and_no_others(user, emu):
    long_ago = timezone.now() - timedelta(days=30)
    asked, other = (factories.document_create(owner=user, last_used_at=long_ago) for _ in range(2))
    StoredFile.objects.update(last_used_at=long_ago)
    Document.objects.update(last_used_at=long_ago)
    conversation = factories.conversation_create(owner=user, documents=[asked])

    services.conversation_ask(conversation=conversation, question="What grew?")

    recent = timezone.now() - timedelta(minutes=1)
    assert Document.objects.get(pk=asked.pk).last_used_at > recent
    assert StoredFile.objects.get(pk=asked.stored_file_id).last_used_at > recent
    assert Document.objects.get(pk=other.pk).last_used_at == long_ago
    assert StoredFile.objects.get(pk=other.stored_file_id).last_used_at == long_ago
