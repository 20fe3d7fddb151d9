"""What users and administrators do to documents: upload, retry, re-extract, release, delete.

Each action changes rows (through `transitions` where a state moves) and enqueues the task
that does the slow part; none waits for Moonshot. Reads live in `selectors`, the pipeline in
`ingest`, the account's upkeep in `housekeeping`.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from docqa import keys
from docqa.chat.models import Conversation
from docqa.connections import redis_client
from docqa.documents import quotas, tasks
from docqa.documents.formats import SUPPORTED_FORMATS, file_extension
from docqa.documents.housekeeping.jobs import Job, JobKind, job_create, job_get
from docqa.documents.housekeeping.snapshot import snapshot_forget
from docqa.documents.models import Document, Status, StoredFile
from docqa.documents.remote_copies import remote_copy_forget, remote_file_delete_later
from docqa.documents.transitions import stored_file_transition

MAX_FILENAME_LENGTH = 200
ACCOUNT_LISTING_FRESH = 60  # seconds: an older listing is refreshed when the account page opens
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class UploadRejected(Exception):
    """An upload that cannot be accepted, with the reason in plain words."""


@dataclass(frozen=True)
class UploadResult:
    document: Document
    created: bool


# --- accepting uploads ---------------------------------------------------------------------


def filename_clean(name: str) -> str:
    """The name to show for an upload: no path parts, control characters or excess length.

    HTML in a name is kept as text (templates escape it); a name that is nothing but
    path or control characters is refused.
    """
    name = unicodedata.normalize("NFC", name or "")
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = _CONTROL.sub("", name)
    name = " ".join(name.split())
    if name in {"", ".", ".."}:
        raise UploadRejected(_("The file has no usable name."))
    if len(name) > MAX_FILENAME_LENGTH:
        ext = file_extension(name)
        keep = MAX_FILENAME_LENGTH - (len(ext) + 2 if ext else 1)
        name = name[:keep].rstrip() + "…" + (f".{ext}" if ext else "")
    return name


def upload_validate(*, filename: str, size: int) -> None:
    """Raise UploadRejected with a clear reason when Moonshot would not take this file."""
    ext = file_extension(filename)
    if ext not in SUPPORTED_FORMATS:
        if ext:
            raise UploadRejected(
                _(
                    "“%(name)s”: .%(ext)s files are not supported. Upload PDF, Office, text, code or image files."
                )
                % {"name": filename, "ext": ext}
            )
        raise UploadRejected(
            _("“%(name)s” has no file extension, so its format is unknown.") % {"name": filename}
        )
    if size == 0:
        raise UploadRejected(_("“%(name)s” is empty.") % {"name": filename})
    if size > settings.DOCQA_MAX_UPLOAD_BYTES:
        raise UploadRejected(
            _("“%(name)s” is larger than the %(limit)s MB limit per file.")
            % {"name": filename, "limit": settings.DOCQA_MAX_UPLOAD_BYTES // 1_000_000}
        )


def document_upload(*, owner, uploaded_file, sha256: str) -> UploadResult:
    """Accept one uploaded file for `owner`.

    The same bytes in the same format uploaded again by the same user give back their
    existing document. Another user's identical upload never shares the stored (or remote)
    copy unless DOCQA_SHARE_FILES_ACROSS_USERS is on, so an upload's outcome reveals nothing
    of anyone else's files. A delete of the same stored file racing this upload makes it
    start again with a stored file of its own.
    """
    filename = filename_clean(uploaded_file.name)
    upload_validate(filename=filename, size=uploaded_file.size)
    try:
        quotas.upload_rate_check(owner=owner)
    except quotas.QuotaExceeded as exc:
        raise UploadRejected(str(exc)) from None
    scope = None if settings.DOCQA_SHARE_FILES_ACROSS_USERS else owner
    extension = file_extension(filename)
    already = Document.objects.filter(
        owner=owner, stored_file__sha256=sha256, stored_file__extension=extension
    ).select_related("stored_file")
    if already.exists():
        return UploadResult(document=already.first(), created=False)
    try:
        quotas.upload_room_check(owner=owner, size=uploaded_file.size, filename=filename)
    except quotas.QuotaExceeded as exc:
        raise UploadRejected(str(exc)) from None
    for _attempt in range(3):
        stored = StoredFile.objects.filter(owner=scope, sha256=sha256, extension=extension).first()
        if stored is None:
            stored = _stored_file_create(
                uploaded_file=uploaded_file, sha256=sha256, extension=extension, scope=scope
            )
            if stored is None:
                continue
        try:
            with transaction.atomic():
                # Locked, so a delete of its last document cannot remove it under us.
                if not StoredFile.objects.select_for_update().filter(pk=stored.pk).exists():
                    continue
                existing = (
                    Document.objects.filter(owner=owner, stored_file=stored)
                    .select_related("stored_file")
                    .first()
                )
                if existing is not None:
                    return UploadResult(document=existing, created=False)
                document = Document.objects.create(owner=owner, stored_file=stored, filename=filename)
        except IntegrityError:  # a double submit, or a delete of the stored file, raced us
            continue
        break
    else:
        raise UploadRejected(
            _("“%(name)s” could not be stored because it changed at the same moment. Please upload it again.")
            % {"name": filename}
        )
    if stored.status == Status.FAILED:
        # Uploading the bytes again is the natural way to try again.
        stored_file_retry(stored_file=stored)
        stored.refresh_from_db()
    document.stored_file = stored
    return UploadResult(document=document, created=True)


def _stored_file_create(*, uploaded_file, sha256: str, extension: str, scope) -> StoredFile | None:
    """A new stored file holding the upload's bytes; the existing one if the same upload won
    a race, None if that one is already gone again (the caller tries afresh)."""
    stored = StoredFile(owner=scope, sha256=sha256, size=uploaded_file.size, extension=extension)
    target_name = stored.file.field.generate_filename(stored, f"upload.{extension}")
    stored.file.name = target_name
    try:
        with transaction.atomic():
            stored.save()
    except IntegrityError:  # the same bytes arrived for the same scope at the same moment
        return StoredFile.objects.filter(owner=scope, sha256=sha256, extension=extension).first()
    # Move the temporary file into place rather than copying it through Python.
    target = Path(settings.MEDIA_ROOT) / target_name
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        if hasattr(uploaded_file, "temporary_file_path"):
            shutil.move(uploaded_file.temporary_file_path(), target)
        else:
            with open(target, "wb") as out:
                for chunk in uploaded_file.chunks():
                    out.write(chunk)
    except BaseException:
        stored.delete()
        raise
    _ingest_later(stored.pk)
    return stored


def _ingest_later(stored_file_id: int) -> None:
    transaction.on_commit(lambda: tasks.document_ingest.apply_async(args=[stored_file_id]))


# --- using, retrying and re-extracting ---------------------------------------------------------


def documents_mark_used(*, document_ids: list[int]) -> None:
    """Record that these documents were just used (opened, asked about): the `evict` policy
    releases the least recently used remote copies first. One UPDATE per table."""
    if not document_ids:
        return
    now = timezone.now()
    Document.objects.filter(pk__in=document_ids).update(last_used_at=now)
    StoredFile.objects.filter(documents__pk__in=document_ids).update(last_used_at=now)


def stored_file_retry(*, stored_file: StoredFile) -> bool:
    """Send a failed file through the pipeline again."""
    moved = stored_file_transition(
        stored_file_id=stored_file.pk,
        from_statuses=(Status.FAILED,),
        to_status=Status.QUEUED,
        last_error="",
        attempts=0,
    )
    if moved:
        _ingest_later(stored_file.pk)
    return moved


def document_retry(*, document: Document) -> bool:
    return stored_file_retry(stored_file=document.stored_file)


def stored_file_reextract(*, stored_file_id: int) -> bool:
    """Send a ready or failed stored file through the pipeline again.

    A file with a remote copy has its text fetched again; one without (released, missing,
    or a failed extraction, whose copy is dropped first) is uploaded again from the local
    file. The old text is kept until the new one replaces it.
    """
    stored = StoredFile.objects.filter(pk=stored_file_id).values("status", "remote_id").first()
    if stored is None or stored["status"] not in (Status.READY, Status.FAILED):
        return False
    old_remote = stored["remote_id"] if stored["status"] == Status.FAILED else ""
    fields = {"last_error": "", "attempts": 0, "remote_missing_at": None}
    if old_remote:
        fields.update(remote_id="", upload_started_at=None)
    moved = stored_file_transition(
        stored_file_id=stored_file_id, from_statuses=(stored["status"],), to_status=Status.QUEUED, **fields
    )
    if not moved:
        return False
    if old_remote:
        remote_file_delete_later(old_remote)
    _ingest_later(stored_file_id)
    return True


def stored_files_reextract(*, stored_file_ids: list[int]) -> int:
    """The admin's re-extract: how many of these files went back into the pipeline."""
    return sum(stored_file_reextract(stored_file_id=pk) for pk in stored_file_ids)


def remote_copies_release(*, stored_file_ids: list[int]) -> int:
    """The admin's "delete the remote copy only": ready files forget their copies (the text
    stays) and the deletes go to the task queue; returns how many were released."""
    released = 0
    for pk in stored_file_ids:
        remote_id = remote_copy_forget(stored_file_id=pk)
        if remote_id:
            released += 1
            remote_file_delete_later(remote_id)
    return released


# --- the admin's account jobs ------------------------------------------------------------------


def account_sync_start() -> Job:
    """Start a reconciliation in the background; the account page polls the returned job."""
    job = job_create(kind=JobKind.SYNC)
    transaction.on_commit(lambda: tasks.remote_files_reconcile.apply_async(kwargs={"job_id": job.id}))
    return job


def account_refresh_if_stale(*, taken_at: datetime | None) -> Job | None:
    """Opening the account page: start a sync when its listing is missing or older than
    `ACCOUNT_LISTING_FRESH` seconds; the page shows the job and reloads when it is done.

    At most one such sync a minute whatever the sync's outcome, so a page that reloads itself
    after a failed sync does not start another one, nor do many admins opening it at once.
    """
    if taken_at is not None and timezone.now() - taken_at < timedelta(seconds=ACCOUNT_LISTING_FRESH):
        return None
    job = job_get()
    if job is not None and job.is_active:
        return None
    if not redis_client().set(keys.ACCOUNT_REFRESH_NUDGED, "1", nx=True, ex=ACCOUNT_LISTING_FRESH):
        return None
    return account_sync_start()


def orphans_delete_start(*, remote_ids: list[str]) -> Job:
    """Start deleting these orphans in the background; the account page polls the returned job.

    The account listing drops them at once (the page's own action removed them); any the task
    could not delete come back with the next sync, which the job's summary says.
    """
    job = job_create(kind=JobKind.DELETE_ORPHANS)
    transaction.on_commit(lambda: snapshot_forget(remote_ids))
    transaction.on_commit(
        lambda: tasks.orphans_delete.apply_async(kwargs={"remote_ids": remote_ids, "job_id": job.id})
    )
    return job


# --- deleting -----------------------------------------------------------------------------


def document_delete(*, document: Document) -> None:
    """Delete a document; its stored and remote copies go once no other document uses them."""
    stored_id = document.stored_file_id
    with transaction.atomic():
        _conversations_note_removed(document)
        document.delete()
        stored = StoredFile.objects.select_for_update().filter(pk=stored_id).first()
        if stored is None or stored.documents.exists():
            return
        remote_id, path = stored.remote_id, stored.file.name
        stored.delete()
    if path:
        Path(settings.MEDIA_ROOT, path).unlink(missing_ok=True)
    if remote_id:
        remote_file_delete_later(remote_id)


def _conversations_note_removed(document: Document) -> None:
    """The conversations that used `document` keep its name, so their pages can say it was removed."""
    for conversation in Conversation.objects.select_for_update().filter(documents=document):
        removed = list(conversation.removed_documents or [])
        if document.filename not in removed:
            removed.append(document.filename)
        Conversation.objects.filter(pk=conversation.pk).update(removed_documents=removed)
