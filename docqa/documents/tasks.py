"""Celery tasks for documents: each loads its row by id and calls the module that does the work.

Imports flow one way: views -> services -> tasks -> (ingest, remote_copies, housekeeping) ->
the Moonshot client. Anything may import this module to enqueue a task, so it imports none of
the modules that do the work at load time. The single function-local import in docqa, by rule:
a task body imports the module it runs (`from docqa.documents import ingest`); no other import
sits inside a function.
"""

from __future__ import annotations

import enum
import logging
import random

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils.translation import gettext_noop as N_

from docqa import keys
from docqa.documents.housekeeping.jobs import job_finish, job_progress
from docqa.documents.models import Status
from docqa.documents.transitions import stored_file_count_attempt, stored_file_note
from docqa.locks import Lease
from docqa.moonshot import AuthenticationError, MoonshotError
from docqa.notes import note
from docqa.upstream import upstream_error_note

logger = logging.getLogger("docqa.documents.tasks")

MAX_INGEST_RETRIES = 8
# The ingest lock is short and renewed while the task runs, so a worker killed mid-ingest
# (SIGKILL, OOM) frees its file within a minute; a lock as long as the task time limit kept
# every re-queued run of that file answering "locked" for a quarter of an hour.
INGEST_LOCK_TTL = 60


class IngestOutcome(enum.StrEnum):
    """What one run of `document_ingest` reached."""

    QUEUED = Status.QUEUED.value  # waiting for room in the account
    READY = Status.READY.value
    FAILED = Status.FAILED.value
    GONE = "gone"  # the stored file was deleted meanwhile
    LOCKED = "locked"  # another run holds the file


class JobOutcome(enum.StrEnum):
    """What one run of a housekeeping task did."""

    DONE = "done"
    SKIPPED = "skipped"  # another run held the lock
    FAILED = "failed"


def _backoff(retries: int, *, base: float = 5.0, cap: float = 300.0) -> float:
    return min(cap, base * 2**retries) * random.uniform(0.5, 1.0)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def document_ingest(self, stored_file_id: int) -> str:
    """Upload a stored file to Moonshot, wait for extraction and keep the text.

    Safe to run twice: a Redis lock keeps two runs from working on one file at once, and
    every step checks the row's state first.
    """
    from docqa.documents import ingest

    lease = Lease(keys.ingest_lock(stored_file_id), ttl=INGEST_LOCK_TTL)
    if not lease.acquire():
        logger.info("ingest of %s already running elsewhere", stored_file_id)
        return IngestOutcome.LOCKED
    try:
        with lease.renewed():
            return IngestOutcome(ingest.stored_file_ingest(stored_file_id=stored_file_id))
    except ingest.ExtractionPending:
        raise self.retry(countdown=2, max_retries=None) from None
    except MoonshotError as exc:
        # 401 may be fixed by an administrator; the rest of the retryable errors pass by.
        attempts = stored_file_count_attempt(stored_file_id=stored_file_id)
        waits = exc.retryable or isinstance(exc, AuthenticationError)
        final = not waits or attempts > MAX_INGEST_RETRIES
        logger.warning("ingest of %s: %s (attempt %s, final=%s)", stored_file_id, exc, attempts, final)
        ingest.stored_file_record_failure(stored_file_id=stored_file_id, exc=exc, final=final)
        if final:
            return IngestOutcome.FAILED
        raise self.retry(countdown=_backoff(attempts - 1), max_retries=None) from None
    except SoftTimeLimitExceeded:
        stored_file_note(
            stored_file_id=stored_file_id, message=note(N_("This is taking long; trying again…"))
        )
        raise self.retry(countdown=5, max_retries=None) from None
    finally:
        lease.release()


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=10)
def remote_file_delete(self, remote_id: str) -> bool:
    """Delete a remote copy no stored file uses any more; 404 counts as done, 5xx is retried."""
    from docqa.documents import remote_copies

    try:
        return remote_copies.remote_file_delete(remote_id=remote_id)
    except MoonshotError as exc:
        if not exc.retryable:
            logger.error("could not delete remote file %s: %s", remote_id, exc)
            return False
        raise self.retry(countdown=_backoff(self.request.retries, base=10, cap=600)) from None


@shared_task
def documents_sweep_stale() -> int:
    """Beat: re-queue documents stuck in a transient state, and those waiting for room."""
    from docqa.documents import ingest

    return ingest.documents_stale_requeue()


# --- housekeeping (docqa.documents.housekeeping) --------------------------------------------


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def remote_files_reconcile(self, job_id: str | None = None) -> str:
    """Beat and the admin's "sync now": reconcile the Moonshot account with the database.

    A second run while one is going returns at once (Redis lock). When the account cannot
    be listed nothing changes; a transient error is retried.
    """
    from docqa.documents.housekeeping import reconcile

    try:
        report = reconcile.remote_files_reconcile(progress=job_progress(job_id))
    except MoonshotError as exc:
        logger.warning("reconcile: %s", exc)
        if exc.retryable and self.request.retries < self.max_retries:
            raise self.retry(countdown=_backoff(self.request.retries, base=10, cap=120)) from None
        job_finish(job_id, summary=upstream_error_note(exc), failed=True)
        return JobOutcome.FAILED
    job_finish(job_id, summary=report.summary())
    return JobOutcome.SKIPPED if report.skipped else JobOutcome.DONE


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def orphans_delete(self, remote_ids: list[str], job_id: str | None = None) -> str:
    """The admin's "delete orphans": delete these remote files if they are still orphans."""
    from docqa.documents.housekeeping import orphans

    try:
        outcome = orphans.orphans_delete(remote_ids=remote_ids, progress=job_progress(job_id))
    except MoonshotError as exc:
        logger.warning("orphans delete: %s", exc)
        if exc.retryable and self.request.retries < self.max_retries:
            raise self.retry(countdown=_backoff(self.request.retries, base=5, cap=60)) from None
        job_finish(job_id, summary=upstream_error_note(exc), failed=True)
        return JobOutcome.FAILED
    job_finish(job_id, summary=outcome.summary())
    return JobOutcome.DONE


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def retention_apply(self, job_id: str | None = None) -> str:
    """Beat (and a full account): apply DOCQA_RETENTION to the remote copies."""
    from docqa.documents.housekeeping import retention

    report = retention.retention_apply(progress=job_progress(job_id))
    job_finish(job_id, summary=report.summary())
    return JobOutcome.SKIPPED if report.skipped else JobOutcome.DONE


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def remote_copy_release(self, stored_file_id: int) -> bool:
    """Delete one ready file's remote copy, keeping its text (delete-after-extract)."""
    from docqa.documents.housekeeping import retention

    return bool(retention.remote_copy_release(stored_file_id=stored_file_id))
