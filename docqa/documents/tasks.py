"""Celery tasks for documents: each loads its row by id and calls a service."""

from __future__ import annotations

import logging
import random

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.utils.translation import gettext_noop as N_

from docqa import keys
from docqa.documents import services
from docqa.locks import Lease
from docqa.moonshot import AuthenticationError, MoonshotError
from docqa.notes import note

logger = logging.getLogger("docqa.documents.tasks")

MAX_INGEST_RETRIES = 8
# The ingest lock is short and renewed while the task runs, so a worker killed mid-ingest
# (SIGKILL, OOM) frees its file within a minute; a lock as long as the task time limit kept
# every re-queued run of that file answering "locked" for a quarter of an hour.
INGEST_LOCK_TTL = 60


def _backoff(retries: int, *, base: float = 5.0, cap: float = 300.0) -> float:
    return min(cap, base * 2**retries) * random.uniform(0.5, 1.0)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None)
def document_ingest(self, stored_file_id: int) -> str:
    """Upload a stored file to Moonshot, wait for extraction and keep the text.

    Safe to run twice: a Redis lock keeps two runs from working on one file at once, and
    every step checks the row's state first.
    """
    lease = Lease(keys.ingest_lock(stored_file_id), ttl=INGEST_LOCK_TTL)
    if not lease.acquire():
        logger.info("ingest of %s already running elsewhere", stored_file_id)
        return "locked"
    try:
        with lease.renewed():
            return _ingest(self, stored_file_id)
    finally:
        lease.release()


def _ingest(task, stored_file_id: int) -> str:
    try:
        return services.stored_file_ingest(stored_file_id=stored_file_id)
    except services.ExtractionPending:
        raise task.retry(countdown=2, max_retries=None) from None
    except MoonshotError as exc:
        # 401 may be fixed by an administrator; the rest of the retryable errors pass by.
        attempts = services.stored_file_count_attempt(stored_file_id=stored_file_id)
        waits = exc.retryable or isinstance(exc, AuthenticationError)
        final = not waits or attempts > MAX_INGEST_RETRIES
        logger.warning("ingest of %s: %s (attempt %s, final=%s)", stored_file_id, exc, attempts, final)
        services.stored_file_record_failure(stored_file_id=stored_file_id, exc=exc, final=final)
        if final:
            return "failed"
        raise task.retry(countdown=_backoff(attempts - 1), max_retries=None) from None
    except SoftTimeLimitExceeded:
        services.stored_file_note(
            stored_file_id=stored_file_id, message=note(N_("This is taking long; trying again…"))
        )
        raise task.retry(countdown=5, max_retries=None) from None


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=10)
def remote_file_delete(self, remote_id: str) -> bool:
    """Delete a remote copy no stored file uses any more; 404 counts as done, 5xx is retried."""
    try:
        return services.remote_file_delete(remote_id=remote_id)
    except MoonshotError as exc:
        if not exc.retryable:
            logger.error("could not delete remote file %s: %s", remote_id, exc)
            return False
        raise self.retry(countdown=_backoff(self.request.retries, base=10, cap=600)) from None


@shared_task
def documents_sweep_stale() -> int:
    """Beat: re-queue documents stuck in a transient state, and those waiting for room."""
    return services.documents_stale_requeue()


# --- housekeeping (docqa.documents.housekeeping) --------------------------------------------


def _housekeeping():
    from docqa.documents import housekeeping

    return housekeeping


def _error_note(exc: MoonshotError) -> str:
    from docqa.upstream import upstream_error_note

    return upstream_error_note(exc)


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def remote_files_reconcile(self, job_id: str | None = None) -> str:
    """Beat and the admin's "sync now": reconcile the Moonshot account with the database.

    A second run while one is going returns at once (Redis lock). When the account cannot
    be listed nothing changes; a transient error is retried.
    """
    housekeeping = _housekeeping()
    try:
        report = housekeeping.remote_files_reconcile(progress=housekeeping.job_progress(job_id))
    except MoonshotError as exc:
        logger.warning("reconcile: %s", exc)
        if exc.retryable and self.request.retries < self.max_retries:
            raise self.retry(countdown=_backoff(self.request.retries, base=10, cap=120)) from None
        housekeeping.job_finish(job_id, summary=_error_note(exc), failed=True)
        return "failed"
    housekeeping.job_finish(job_id, summary=report.summary())
    return "skipped" if report.skipped else "done"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=3)
def orphans_delete(self, remote_ids: list[str], job_id: str | None = None) -> str:
    """The admin's "delete orphans": delete these remote files if they are still orphans."""
    housekeeping = _housekeeping()
    try:
        outcome = housekeeping.orphans_delete(
            remote_ids=remote_ids, progress=housekeeping.job_progress(job_id)
        )
    except MoonshotError as exc:
        logger.warning("orphans delete: %s", exc)
        if exc.retryable and self.request.retries < self.max_retries:
            raise self.retry(countdown=_backoff(self.request.retries, base=5, cap=60)) from None
        housekeeping.job_finish(job_id, summary=_error_note(exc), failed=True)
        return "failed"
    housekeeping.job_finish(job_id, summary=outcome.summary())
    return "done"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def retention_apply(self, job_id: str | None = None) -> str:
    """Beat (and a full account): apply DOCQA_RETENTION to the remote copies."""
    housekeeping = _housekeeping()
    report = housekeeping.retention_apply(progress=housekeeping.job_progress(job_id))
    housekeeping.job_finish(job_id, summary=report.summary())
    return "skipped" if report.skipped else f"released {report.released}"


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True)
def remote_copy_release(self, stored_file_id: int) -> bool:
    """Delete one ready file's remote copy, keeping its text (delete-after-extract)."""
    return bool(_housekeeping().remote_copy_release(stored_file_id=stored_file_id))
