"""A stored file's state changes: conditional UPDATEs that move a row only forward, announced.

Every writer of `StoredFile.status` comes through here (the pipeline, the user's retry, the
admin's re-extract), so a task that runs twice, or is killed at any line and re-run, does no
harm, and every open page of every owner hears of the change.
"""

from __future__ import annotations

from django.db.models import F
from django.utils import timezone

from docqa.documents.models import TRANSIENT_STATUSES, Document, Status, StoredFile
from docqa.events import events_publish


def stored_file_transition(
    *, stored_file_id: int, from_statuses: tuple[str, ...], to_status: str, **fields
) -> bool:
    """Move a stored file to `to_status` only if it is in one of `from_statuses`.

    Any move ends a wait for room, unless the caller parks the file (passes the field itself).
    """
    fields.setdefault("waiting_for_room_since", None)
    updated = StoredFile.objects.filter(pk=stored_file_id, status__in=from_statuses).update(
        status=to_status, status_changed_at=timezone.now(), **fields
    )
    if updated:
        stored_file_announce(stored_file_id=stored_file_id)
    return bool(updated)


def stored_file_note(*, stored_file_id: int, message: str) -> None:
    """Record why a stored file is waiting, without changing its state."""
    StoredFile.objects.filter(pk=stored_file_id).update(last_error=message)
    stored_file_announce(stored_file_id=stored_file_id)


def stored_file_park_for_room(*, stored_file_id: int, message: str) -> None:
    """Hold a queued file back because the account is full; `message` says so to its owners."""
    now = timezone.now()
    StoredFile.objects.filter(pk=stored_file_id, waiting_for_room_since__isnull=True).update(
        waiting_for_room_since=now
    )
    stored_file_note(stored_file_id=stored_file_id, message=message)


def stored_file_announce(*, stored_file_id: int) -> None:
    """Tell every owner's open pages that this file's documents changed."""
    rows = Document.objects.filter(stored_file_id=stored_file_id).values_list("pk", "owner_id")
    for document_id, owner_id in rows:
        events_publish(user_ids=[owner_id], event=f"document-{document_id}")


def stored_file_fail(*, stored_file_id: int, message: str, **fields) -> bool:
    """Fail a file still in the pipeline; `fields` change in the same update."""
    return stored_file_transition(
        stored_file_id=stored_file_id,
        from_statuses=TRANSIENT_STATUSES,
        to_status=Status.FAILED,
        last_error=message,
        **fields,
    )


def stored_file_count_attempt(*, stored_file_id: int) -> int:
    """Count one more failed attempt; returns the total so far."""
    StoredFile.objects.filter(pk=stored_file_id).update(attempts=F("attempts") + 1)
    return StoredFile.objects.filter(pk=stored_file_id).values_list("attempts", flat=True).first() or 0
