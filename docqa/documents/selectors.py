"""Reads: what a user may see, what the account holds, which uploads wait for room."""

from __future__ import annotations

from collections import deque

from django.conf import settings
from django.db.models import Min, QuerySet, Sum
from django.db.models.functions import Coalesce, Length, Substr

from docqa.documents.models import Document, Status, StoredFile

TEXT_FIELDS = ("stored_file__content_raw", "stored_file__content_text")


def documents_owned(*, owner) -> QuerySet[Document]:
    """A user's documents with their stored files, newest first; never their texts (megabytes
    each), which pages that show one fetch a page of at a time (`TextPages`)."""
    return Document.objects.filter(owner=owner).select_related("stored_file").defer(*TEXT_FIELDS)


def documents_ready_for_chat(*, owner) -> QuerySet[Document]:
    """A user's Ready documents, to choose from for a new conversation (no texts)."""
    return documents_owned(owner=owner).filter(stored_file__status=Status.READY)


class TextPages:
    """A stored file's extracted text as pages of `size` characters, each read from the
    database when asked for: a page view holds one page, never the whole text."""

    def __init__(self, *, stored_file_id: int, size: int):
        self.stored_file_id, self.size = stored_file_id, size
        self._length = (
            StoredFile.objects.filter(pk=stored_file_id)
            .annotate(length=Length("content_text"))
            .values_list("length", flat=True)
            .first()
            or 0
        )

    @property
    def length(self) -> int:
        """The whole text's length in characters."""
        return self._length

    def __len__(self) -> int:
        return max(1, -(-self._length // self.size))

    def __getitem__(self, index: slice) -> list[str]:
        pages = range(len(self))[index]
        return [self._page(number) for number in pages]

    def _page(self, number: int) -> str:
        return (
            StoredFile.objects.filter(pk=self.stored_file_id)
            .annotate(page=Substr("content_text", number * self.size + 1, self.size))
            .values_list("page", flat=True)
            .first()
            or ""
        )


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


def uploads_waiting_in_fair_order() -> list[int]:
    """The waiting uploads' ids, one user's at a time in turn (round-robin by owner, each
    user's oldest first), so room made while the account is full is not all taken by the
    user with the longest backlog. A shared file counts as its first uploader's."""
    rows = (
        uploads_waiting()
        .annotate(who=Coalesce("owner_id", Min("documents__owner_id")))
        .order_by("waiting_for_room_since", "pk")
        .values_list("pk", "who")
    )
    queues: dict[int | None, deque[int]] = {}
    for pk, who in rows:
        queues.setdefault(who, deque()).append(pk)
    order: list[int] = []
    while queues:
        for who in list(queues):
            order.append(queues[who].popleft())
            if not queues[who]:
                del queues[who]
    return order
