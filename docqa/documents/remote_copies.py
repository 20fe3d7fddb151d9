"""A stored file's remote copy on Moonshot: forgetting it and deleting it.

A row forgets its copy first, in the database, so nothing can use the copy any more; the
remote delete comes after and may be retried (by `tasks.remote_file_delete`) or, failing that,
found by the next reconciliation as an orphan. No one ever waits for Moonshot to delete.
"""

from __future__ import annotations

from django.db import transaction

from docqa.connections import moonshot_client
from docqa.documents import tasks
from docqa.documents.housekeeping.snapshot import snapshot_forget
from docqa.documents.models import Status, StoredFile
from docqa.moonshot import NotFoundError


def remote_file_delete(*, remote_id: str) -> bool:
    """Delete a remote copy unless a stored file still uses it; already gone counts as done."""
    if StoredFile.objects.filter(remote_id=remote_id).exists():
        return False
    try:
        moonshot_client().files_delete(remote_id)
    except NotFoundError:
        pass
    return True


def remote_file_delete_later(remote_id: str, *, countdown: float | None = None) -> None:
    """Hand a remote copy no row uses to the retrying task, once this transaction commits.

    The admin's account listing drops it at once: it is going, and no row uses it, so until
    the next sync it would otherwise show as an orphan with a checkbox. Should the delete fail
    for good, the next sync lists it again and deletes it as an orphan.
    """
    transaction.on_commit(lambda: snapshot_forget([remote_id]))
    transaction.on_commit(lambda: tasks.remote_file_delete.apply_async(args=[remote_id], countdown=countdown))


def remote_copy_forget(*, stored_file_id: int) -> str | None:
    """Make a ready stored file forget its remote copy (text kept); returns the id to delete.

    The caller deletes the remote file, or hands it to `remote_file_delete_later`.
    """
    stored = (
        StoredFile.objects.filter(pk=stored_file_id, status=Status.READY)
        .exclude(remote_id="")
        .exclude(content_raw="")
        .values("remote_id")
        .first()
    )
    if stored is None:
        return None
    remote_id = stored["remote_id"]
    released = StoredFile.objects.filter(pk=stored_file_id, remote_id=remote_id, status=Status.READY).update(
        remote_id="", upload_started_at=None, remote_missing_at=None
    )
    return remote_id if released else None
