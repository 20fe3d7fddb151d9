"""Documents: accepting uploads, the ingest pipeline's steps, retry and delete.

Every state change is a conditional UPDATE (a row moves only forward), so a task that runs
twice, or is killed at any line and re-run, does no harm.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
import unicodedata
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, Q, Sum
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

from docqa.connections import moonshot_client
from docqa.documents.formats import SUPPORTED_FORMATS, file_extension
from docqa.documents.models import TRANSIENT_STATUSES, Document, Status, StoredFile
from docqa.events import events_publish
from docqa.moonshot import InvalidRequestError, MoonshotError, NotFoundError
from docqa.notes import note
from docqa.upstream import upstream_error_note

logger = logging.getLogger("docqa.documents.services")

MAX_FILENAME_LENGTH = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


class UploadRejected(Exception):
    """An upload that cannot be accepted, with the reason in plain words."""


class ExtractionPending(Exception):
    """Moonshot is still extracting; the task should come back later."""


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
            % {"name": filename, "limit": settings.DOCQA_MAX_UPLOAD_BYTES // (1024 * 1024)}
        )


def document_upload(*, owner, uploaded_file, sha256: str) -> UploadResult:
    """Accept one uploaded file for `owner`.

    The same bytes uploaded again by the same user give back their existing document;
    uploaded by someone else they share the stored (and remote) copy.
    """
    filename = filename_clean(uploaded_file.name)
    upload_validate(filename=filename, size=uploaded_file.size)

    stored = StoredFile.objects.filter(sha256=sha256).first()
    if stored is None:
        stored = _stored_file_create(uploaded_file=uploaded_file, sha256=sha256, filename=filename)
    existing = Document.objects.filter(owner=owner, stored_file=stored).select_related("stored_file").first()
    if existing is not None:
        return UploadResult(document=existing, created=False)
    try:
        with transaction.atomic():
            document = Document.objects.create(owner=owner, stored_file=stored, filename=filename)
    except IntegrityError:  # the same user's double submit raced us
        document = Document.objects.select_related("stored_file").get(owner=owner, stored_file=stored)
        return UploadResult(document=document, created=False)
    if stored.status == Status.FAILED:
        # Uploading the bytes again is the natural way to try again.
        stored_file_retry(stored_file=stored)
        stored.refresh_from_db()
    document.stored_file = stored
    return UploadResult(document=document, created=True)


def _stored_file_create(*, uploaded_file, sha256: str, filename: str) -> StoredFile:
    stored = StoredFile(sha256=sha256, size=uploaded_file.size, extension=file_extension(filename))
    # Move the temporary file into place rather than copying it through Python.
    target_name = stored.file.field.generate_filename(stored, filename)
    target = Path(settings.MEDIA_ROOT) / target_name
    target.parent.mkdir(parents=True, exist_ok=True)
    if hasattr(uploaded_file, "temporary_file_path"):
        shutil.move(uploaded_file.temporary_file_path(), target)
    else:
        with open(target, "wb") as out:
            for chunk in uploaded_file.chunks():
                out.write(chunk)
    stored.file.name = target_name
    try:
        with transaction.atomic():
            stored.save()
    except IntegrityError:  # someone uploaded the same bytes at the same moment
        return StoredFile.objects.get(sha256=sha256)
    transaction.on_commit(lambda: _enqueue_ingest(stored.pk))
    return stored


def _enqueue_ingest(stored_file_id: int, countdown: float | None = None) -> None:
    from docqa.documents.tasks import document_ingest

    document_ingest.apply_async(args=[stored_file_id], countdown=countdown)


# --- state changes ------------------------------------------------------------------------


def stored_file_transition(
    *, stored_file_id: int, from_statuses: tuple[str, ...], to_status: str, **fields
) -> bool:
    """Move a stored file to `to_status` only if it is in one of `from_statuses`."""
    now = timezone.now()
    updated = StoredFile.objects.filter(pk=stored_file_id, status__in=from_statuses).update(
        status=to_status, status_changed_at=now, **fields
    )
    if updated:
        stored_file_announce(stored_file_id=stored_file_id)
    return bool(updated)


def stored_file_note(*, stored_file_id: int, message: str) -> None:
    """Record why a stored file is waiting, without changing its state."""
    StoredFile.objects.filter(pk=stored_file_id).update(last_error=message)
    stored_file_announce(stored_file_id=stored_file_id)


def stored_file_announce(*, stored_file_id: int) -> None:
    """Tell every owner's open pages that this file's documents changed."""
    rows = Document.objects.filter(stored_file_id=stored_file_id).values_list("pk", "owner_id")
    for document_id, owner_id in rows:
        events_publish(user_ids=[owner_id], event=f"document-{document_id}")


def stored_file_fail(*, stored_file_id: int, message: str) -> bool:
    return stored_file_transition(
        stored_file_id=stored_file_id,
        from_statuses=TRANSIENT_STATUSES,
        to_status=Status.FAILED,
        last_error=message,
    )


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
        transaction.on_commit(lambda: _enqueue_ingest(stored_file.pk))
    return moved


def document_retry(*, document: Document) -> bool:
    return stored_file_retry(stored_file=document.stored_file)


# --- the ingest pipeline ------------------------------------------------------------------


def account_usage() -> tuple[int, int]:
    """(files, bytes) this install holds on Moonshot, as far as the database knows."""
    row = StoredFile.objects.exclude(remote_id="").aggregate(total=Sum("size"))
    return StoredFile.objects.exclude(remote_id="").count(), row["total"] or 0


def account_has_room(*, size: int) -> bool:
    files, used = account_usage()
    return files < settings.DOCQA_ACCOUNT_MAX_FILES and used + size <= settings.DOCQA_ACCOUNT_MAX_BYTES


def stored_file_ingest(*, stored_file_id: int) -> str:
    """Run the next step(s) of the pipeline for one stored file; returns the status reached.

    Upload (once; a retry first looks for an upload that landed before a crash), poll until
    extracted, store the text exactly as returned plus its parsed content, count tokens.
    Raises MoonshotError subclasses for the task to retry, ExtractionPending to come back.
    """
    stored = StoredFile.objects.filter(pk=stored_file_id).first()
    if stored is None or stored.status in (Status.READY, Status.FAILED):
        return stored.status if stored else "gone"
    client = moonshot_client()

    if not stored.remote_id:
        stored = _stored_file_upload(stored=stored, client=client)
        if stored.status == Status.QUEUED:
            return Status.QUEUED

    stored_file_transition(
        stored_file_id=stored.pk,
        from_statuses=(Status.QUEUED, Status.UPLOADING),
        to_status=Status.EXTRACTING,
        last_error="",
    )
    remote = _remote_wait_extracted(stored=stored, client=client)
    if remote.is_failed:
        detail = remote.status_details or note(N_("no reason given"))
        if stored_file_fail(
            stored_file_id=stored.pk,
            message=note(N_("Moonshot could not extract this file: %(detail)s"), detail=detail),
        ):
            # A remote copy that failed extraction only uses quota; Retry uploads afresh.
            _remote_copy_discard(stored_file_id=stored.pk, remote_id=stored.remote_id)
        return Status.FAILED

    raw = client.files_content(stored.remote_id)
    text, file_type = content_parse(raw)
    tokens = client.estimate_token_count(
        model=settings.MOONSHOT_MODEL, messages=[{"role": "system", "content": raw}]
    )
    StoredFile.objects.filter(pk=stored.pk).update(
        content_raw=raw, content_text=text, file_type=file_type, token_count=tokens
    )
    if stored_file_transition(
        stored_file_id=stored.pk,
        from_statuses=(Status.EXTRACTING,),
        to_status=Status.READY,
        last_error="",
    ):
        from docqa.documents.housekeeping import stored_file_extracted

        stored_file_extracted(stored_file_id=stored.pk)  # the retention policy may drop the remote copy
    return Status.READY


def _stored_file_upload(*, stored: StoredFile, client) -> StoredFile:
    if not account_has_room(size=stored.size):
        stored_file_note(
            stored_file_id=stored.pk,
            message=note(
                N_(
                    "Waiting for room: the Moonshot account is full (it holds at most %(files)s files "
                    "and %(gb)s GB). It will continue by itself once an administrator frees room."
                ),
                files=settings.DOCQA_ACCOUNT_MAX_FILES,
                gb=settings.DOCQA_ACCOUNT_MAX_BYTES // 1024**3,
            ),
        )
        _account_full_reported()
        return stored
    stored_file_transition(
        stored_file_id=stored.pk,
        from_statuses=(Status.QUEUED, Status.UPLOADING),
        to_status=Status.UPLOADING,
        last_error="",
    )
    if stored.upload_started_at is not None:
        # An earlier attempt may have landed before its worker died: adopt it.
        found = next((f for f in client.files_list() if f.filename == stored.remote_filename), None)
        if found is not None:
            return _remote_id_record(stored=stored, remote_id=found.id)
    StoredFile.objects.filter(pk=stored.pk).update(upload_started_at=timezone.now())
    try:
        remote = client.files_create(Path(stored.file.path), filename=stored.remote_filename)
    except InvalidRequestError as exc:
        if _is_account_full(exc):
            stored_file_transition(
                stored_file_id=stored.pk,
                from_statuses=(Status.UPLOADING,),
                to_status=Status.QUEUED,
                last_error=note(
                    N_("Waiting for room: Moonshot says the account is full (%(detail)s)."),
                    detail=exc.message,
                ),
            )
            _account_full_reported()
            stored.refresh_from_db()
            return stored
        raise
    return _remote_id_record(stored=stored, remote_id=remote.id)


def _account_full_reported() -> None:
    from docqa.documents.housekeeping import account_full_reported

    account_full_reported()  # the retention policy may make room


def _is_account_full(exc: InvalidRequestError) -> bool:
    message = exc.message.lower()
    words = ("1000", "1,000", "too many files", "10g", "10 gb", "storage", "limit exceeded")
    return any(word in message for word in words)


def _remote_id_record(*, stored: StoredFile, remote_id: str) -> StoredFile:
    # Recorded the moment it is known, so no later failure can orphan the remote copy.
    StoredFile.objects.filter(pk=stored.pk).update(remote_id=remote_id, remote_uploaded_at=timezone.now())
    stored.refresh_from_db()
    return stored


def _remote_copy_discard(*, stored_file_id: int, remote_id: str) -> None:
    from docqa.documents.tasks import remote_file_delete

    StoredFile.objects.filter(pk=stored_file_id, remote_id=remote_id).update(
        remote_id="", remote_uploaded_at=None, upload_started_at=None
    )
    transaction.on_commit(lambda: remote_file_delete.delay(remote_id))


def _remote_wait_extracted(*, stored: StoredFile, client, budget: float = 30.0):
    """Poll Moonshot with backoff; ExtractionPending when this task's budget runs out."""
    deadline = time.monotonic() + budget
    delay = 0.25
    while True:
        try:
            remote = client.files_retrieve(stored.remote_id)
        except NotFoundError:
            # The remote copy vanished (deleted by hand?): upload again next time.
            StoredFile.objects.filter(pk=stored.pk).update(remote_id="", upload_started_at=None)
            raise ExtractionPending() from None
        if not remote.is_processing:
            return remote
        if stored.remote_uploaded_at and timezone.now() - stored.remote_uploaded_at > timedelta(
            seconds=settings.DOCQA_EXTRACT_POLL_TIMEOUT
        ):
            stored_file_fail(
                stored_file_id=stored.pk,
                message=note(
                    N_("Moonshot took longer than %(seconds)s seconds to extract this file."),
                    seconds=settings.DOCQA_EXTRACT_POLL_TIMEOUT,
                ),
            )
            return remote
        if time.monotonic() + delay > deadline:
            raise ExtractionPending()
        time.sleep(delay)
        delay = min(delay * 2, 5.0)


def content_parse(raw: str) -> tuple[str, str]:
    """The readable text and file type inside Moonshot's extracted content.

    The body is usually a JSON object with `content`; anything else is shown as it is.
    """
    try:
        data = json.loads(raw)
    except (ValueError, TypeError):
        return raw, ""
    if isinstance(data, dict) and isinstance(data.get("content"), str):
        return data["content"], str(data.get("file_type") or "")
    return raw, ""


def stored_file_count_attempt(*, stored_file_id: int) -> int:
    """Count one more failed attempt; returns the total so far."""
    StoredFile.objects.filter(pk=stored_file_id).update(attempts=F("attempts") + 1)
    return StoredFile.objects.filter(pk=stored_file_id).values_list("attempts", flat=True).first() or 0


def stored_file_record_failure(*, stored_file_id: int, exc: MoonshotError, final: bool) -> None:
    """Say why the pipeline is waiting, or fail the file when no retry is left."""
    message = upstream_error_note(exc)
    if final:
        stored_file_fail(stored_file_id=stored_file_id, message=message)
    else:
        stored_file_note(
            stored_file_id=stored_file_id,
            message=note(N_("%(reason)s Retrying automatically…"), reason=message),
        )


def documents_stale_requeue() -> int:
    """Re-queue stored files stuck in a transient state (a lost task, a dead worker)."""
    cutoff = timezone.now() - timedelta(seconds=settings.DOCQA_STALE_AFTER)
    stale = StoredFile.objects.filter(
        Q(status__in=TRANSIENT_STATUSES) & Q(status_changed_at__lt=cutoff)
    ).values_list("pk", flat=True)
    count = 0
    for pk in stale:
        # Touch it first so the next sweep does not re-queue it again straight away.
        StoredFile.objects.filter(pk=pk).update(status_changed_at=timezone.now())
        _enqueue_ingest(pk)
        count += 1
    # Files waiting for room are retried each sweep: room may have appeared.
    waiting = StoredFile.objects.filter(status=Status.QUEUED, remote_id="").exclude(last_error="")
    for pk in waiting.exclude(pk__in=list(stale)).values_list("pk", flat=True):
        _enqueue_ingest(pk)
        count += 1
    return count


# --- deleting -----------------------------------------------------------------------------


def document_delete(*, document: Document) -> None:
    """Delete a document; its stored and remote copies go once no other document uses them."""
    stored_id = document.stored_file_id
    with transaction.atomic():
        document.delete()
        stored = StoredFile.objects.select_for_update().filter(pk=stored_id).first()
        if stored is None or stored.documents.exists():
            return
        remote_id, path = stored.remote_id, stored.file.name
        stored.delete()
    if path:
        Path(settings.MEDIA_ROOT, path).unlink(missing_ok=True)
    if remote_id:
        from docqa.documents.tasks import remote_file_delete

        transaction.on_commit(lambda: remote_file_delete.delay(remote_id))


def remote_file_delete(*, remote_id: str) -> bool:
    """Delete a remote copy unless a stored file still uses it; already gone counts as done."""
    if StoredFile.objects.filter(remote_id=remote_id).exists():
        return False
    try:
        moonshot_client().files_delete(remote_id)
    except NotFoundError:
        pass
    return True
