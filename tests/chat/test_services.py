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


@pytest.mark.django_db
def test_an_ask_writes_no_document_used_within_the_resolution(user, emu, django_assert_num_queries):
    """Documents marked used a moment ago are not written again (SQLite's one writer), and the
    ask reads nothing it already has (the owner is not fetched for the rate limit)."""
    just_now = timezone.now() - services.USED_RESOLUTION / 2
    stale = timezone.now() - services.USED_RESOLUTION * 2
    fresh, old = (factories.document_create(owner=user) for _ in range(2))
    Document.objects.filter(pk=fresh.pk).update(last_used_at=just_now)
    StoredFile.objects.filter(pk=fresh.stored_file_id).update(last_used_at=just_now)
    Document.objects.filter(pk=old.pk).update(last_used_at=just_now)
    StoredFile.objects.filter(pk=old.stored_file_id).update(last_used_at=stale)
    conversation = factories.conversation_create(owner=user, documents=[fresh, old])

    services.conversation_ask(conversation=conversation, question="What grew?")

    assert Document.objects.get(pk=fresh.pk).last_used_at == just_now
    assert StoredFile.objects.get(pk=fresh.stored_file_id).last_used_at == just_now
    assert StoredFile.objects.get(pk=old.stored_file_id).last_used_at > just_now

    conversation = factories.conversation_create(owner=user, documents=[fresh])
    # The documents; the lock, the counts, two INSERTs, the conversation's UPDATE (no owner, no
    # document written), plus SAVEPOINT and RELEASE inside the test's own transaction.
    with django_assert_num_queries(8) as captured:
        services.conversation_ask(conversation=conversation, question="Again?")
    sql = " ".join(q["sql"] for q in captured.captured_queries)
    assert "auth_user" not in sql
    assert 'documents_storedfile" SET' not in sql and 'documents_document" SET' not in sql
