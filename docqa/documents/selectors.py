"""Reads: what a user may see, what the account holds, which uploads wait for room."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet, Sum

from docqa.documents.models import Document, Status, StoredFile


def documents_owned(*, owner) -> QuerySet[Document]:
    """A user's documents with their stored files, newest first."""
    return Document.objects.filter(owner=owner).select_related("stored_file")


def account_usage() -> tuple[int, int]:
    """(files, bytes) this install holds on Moonshot, as far as the database knows."""
    held = StoredFile.objects.exclude(remote_id="")
    return held.count(), held.aggregate(total=Sum("size"))["total"] or 0


def account_has_room(*, size: int) -> bool:
    files, used = account_usage()
    return files < settings.DOCQA_ACCOUNT_MAX_FILES and used + size <= settings.DOCQA_ACCOUNT_MAX_BYTES


def uploads_waiting() -> QuerySet[StoredFile]:
    """Stored files the pipeline holds back because the account was full."""
    return StoredFile.objects.filter(status=Status.QUEUED, remote_id="", waiting_for_room_since__isnull=False)


def document_conversations_count(*, document: Document) -> int:
    """How many of the owner's conversations use the document (deleting it changes them)."""
    return document.conversations.count()
