"""The ingest pipeline: upload a stored file to Moonshot, wait for extraction, keep the text.

`tasks.document_ingest` runs `stored_file_ingest` under a lease and retries it; every step is
a conditional UPDATE (see `transitions`), so a run killed at any line and run again does no
harm. After-effects go one way, into the retention policy (`housekeeping.retention`): a file's
text stored, or the account found full. Nothing there calls back in here.
"""

from __future__ import annotations

import json
import logging
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_noop as N_

from docqa.connections import moonshot_client
from docqa.documents import tasks
from docqa.documents.housekeeping import retention
from docqa.documents.models import TRANSIENT_STATUSES, Status, StoredFile
from docqa.documents.remote_copies import remote_file_delete_later
from docqa.documents.selectors import account_has_room, uploads_waiting_in_fair_order
from docqa.documents.tasks import IngestOutcome
from docqa.documents.transitions import (
    stored_file_fail,
    stored_file_note,
    stored_file_park_for_room,
    stored_file_transition,
)
from docqa.moonshot import InvalidRequestError, MoonshotError, NotFoundError, RateLimitError
from docqa.notes import note
from docqa.upstream import upstream_error_note, upstream_text

logger = logging.getLogger("docqa.documents.ingest")


class ExtractionPending(Exception):
    """Moonshot is still extracting; the task should come back later."""


def stored_file_ingest(*, stored_file_id: int) -> IngestOutcome:
    """Run the next step(s) of the pipeline for one stored file; returns the state reached.

    Upload (once; a retry first looks for an upload that landed before a crash), poll until
    extracted, store the text exactly as returned plus its parsed content, count tokens.
    Raises MoonshotError subclasses for the task to retry, ExtractionPending to come back.
    """
    stored = StoredFile.objects.filter(pk=stored_file_id).first()
    if stored is None:
        return IngestOutcome.GONE
    if stored.status in (Status.READY, Status.FAILED):
        return IngestOutcome(stored.status)
    client = moonshot_client()
    # While a call waits (Moonshot said 429, the limiter is full, a 5xx is retried), the row
    # at Queued/Uploading says why instead of sitting there silently.
    with client.waits_reported(lambda error: _wait_note(stored_file_id=stored.pk, error=error)):
        return _ingest_steps(stored=stored, client=client)


def _wait_note(*, stored_file_id: int, error: MoonshotError | None) -> None:
    if error is None or isinstance(error, RateLimitError):
        message = note(N_("Moonshot is busy; retrying in a moment."))
    else:
        message = note(N_("%(reason)s Retrying automatically…"), reason=upstream_error_note(error))
    stored_file_note(stored_file_id=stored_file_id, message=message)


def _ingest_steps(*, stored: StoredFile, client) -> IngestOutcome:
    if not stored.remote_id:
        stored = _stored_file_upload(stored=stored, client=client)
        if stored.status == Status.QUEUED:
            return IngestOutcome.QUEUED

    stored_file_transition(
        stored_file_id=stored.pk,
        from_statuses=(Status.QUEUED, Status.UPLOADING),
        to_status=Status.EXTRACTING,
        last_error="",
    )
    remote = _remote_wait_extracted(stored=stored, client=client)
    if remote.is_failed:
        detail = upstream_text(remote.status_details) or note(N_("no reason given"))
        # A remote copy that failed extraction only uses quota: the row forgets it in the same
        # update that fails it (nobody sees a Failed file still holding it), Retry uploads
        # afresh, and the copy is deleted once this commits.
        if stored_file_fail(
            stored_file_id=stored.pk,
            message=note(N_("Moonshot could not extract this file: %(detail)s"), detail=detail),
            remote_id="",
            remote_uploaded_at=None,
            upload_started_at=None,
        ):
            remote_file_delete_later(stored.remote_id)
        return IngestOutcome.FAILED

    raw = client.files_content(stored.remote_id)
    text, file_type = content_parse(raw)
    tokens = _tokens_estimate(client, raw)
    StoredFile.objects.filter(pk=stored.pk).update(
        content_raw=raw, content_text=text, file_type=file_type, token_count=tokens
    )
    if stored_file_transition(
        stored_file_id=stored.pk,
        from_statuses=(Status.EXTRACTING,),
        to_status=Status.READY,
        last_error="",
    ):
        retention.stored_file_extracted(stored_file_id=stored.pk)  # the policy may drop the remote copy
    return IngestOutcome.READY


def _tokens_estimate(client, raw: str) -> int | None:
    """Moonshot's token count of the text, or None (chat then estimates locally): a file whose
    text arrived never fails because the estimate endpoint refused or failed."""
    try:
        return client.estimate_token_count(
            model=settings.MOONSHOT_MODEL, messages=[{"role": "system", "content": raw}]
        )
    except MoonshotError as exc:
        logger.warning("token estimate failed (%s); the chat estimates this file locally", exc)
        return None


def _stored_file_upload(*, stored: StoredFile, client) -> StoredFile:
    if not account_has_room(size=stored.size):
        stored_file_park_for_room(
            stored_file_id=stored.pk,
            message=note(
                N_(
                    "Waiting for room: the Moonshot account is full (it holds at most %(files)s files "
                    "and %(gb)s GB). It will continue by itself once an administrator frees room."
                ),
                files=settings.DOCQA_ACCOUNT_MAX_FILES,
                gb=settings.DOCQA_ACCOUNT_MAX_BYTES // 10**9,
            ),
        )
        retention.account_full_reported()  # the retention policy may make room
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
        # Moonshot's words for a full account are not documented: the account's listing
        # tells (it also counts files other apps sharing the key put there).
        if account_is_full(client.files_list(), size=stored.size):
            stored_file_transition(
                stored_file_id=stored.pk,
                from_statuses=(Status.UPLOADING,),
                to_status=Status.QUEUED,
                last_error=note(
                    N_("Waiting for room: Moonshot says the account is full (%(detail)s)."),
                    detail=upstream_text(exc.message),
                ),
                waiting_for_room_since=timezone.now(),
            )
            retention.account_full_reported()
            stored.refresh_from_db()
            return stored
        raise
    return _remote_id_record(stored=stored, remote_id=remote.id)


def account_is_full(files: list, *, size: int) -> bool:
    """Whether the account, as listed, has no room for one more file of `size` bytes."""
    used = sum(f.bytes for f in files)
    return len(files) >= settings.DOCQA_ACCOUNT_MAX_FILES or used + size > settings.DOCQA_ACCOUNT_MAX_BYTES


def _remote_id_record(*, stored: StoredFile, remote_id: str) -> StoredFile:
    # Recorded the moment it is known, so no later failure can orphan the remote copy.
    StoredFile.objects.filter(pk=stored.pk).update(remote_id=remote_id, remote_uploaded_at=timezone.now())
    stored.refresh_from_db()
    return stored


# Polling backs off 0.5, 1, 2, 4, 8, 15, 15… s, and a task that comes back for a long
# extraction starts at a quarter of the time it has waited: such an extraction costs about
# four requests a minute of the account's per-minute budget, not one every second.
POLL_FIRST_DELAY = 0.5
POLL_MAX_DELAY = 15.0


def _remote_wait_extracted(*, stored: StoredFile, client, budget: float = 30.0):
    """Poll Moonshot with backoff; ExtractionPending when this task's budget runs out."""
    deadline = time.monotonic() + budget
    delay = POLL_FIRST_DELAY
    if stored.remote_uploaded_at:
        waited = (timezone.now() - stored.remote_uploaded_at).total_seconds()
        delay = min(POLL_MAX_DELAY, max(POLL_FIRST_DELAY, waited / 4))
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
        delay = min(delay * 2, POLL_MAX_DELAY)


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
        tasks.document_ingest.apply_async(args=[pk])
        count += 1
    # Files waiting for room are retried each sweep: room may have appeared.
    requeued = set(stale)  # the queryset's cache: the ids found before they were touched
    for pk in [pk for pk in uploads_waiting_in_fair_order() if pk not in requeued]:
        tasks.document_ingest.apply_async(args=[pk])
        count += 1
    return count
