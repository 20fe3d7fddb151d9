"""The retention policy (DOCQA_RETENTION): which remote copies go once their text is stored.

keep: none. delete-after-extract: each as soon as its text is stored. evict: above the
high-water mark of files or bytes, the least recently used until usage is under the low-water
mark. Only copies whose text is stored go, so no document loses anything; a released file is
uploaded again from the local copy if it is ever re-extracted.

The pipeline calls in here (a file's text stored, the account full); nothing here calls back
into the pipeline: uploads waiting for room are resumed by enqueueing their ingest task.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils.translation import gettext_noop as N_

from docqa import keys
from docqa.connections import moonshot_client, redis_client
from docqa.documents import tasks
from docqa.documents.choices import RetentionPolicy
from docqa.documents.housekeeping import LOCK_TTL
from docqa.documents.housekeeping.jobs import Progress
from docqa.documents.housekeeping.snapshot import snapshot_forget
from docqa.documents.models import Status, StoredFile
from docqa.documents.remote_copies import remote_copy_forget, remote_file_delete, remote_file_delete_later
from docqa.documents.selectors import account_usage, uploads_waiting, uploads_waiting_in_fair_order
from docqa.locks import lease_held
from docqa.moonshot import MoonshotError
from docqa.notes import note

logger = logging.getLogger("docqa.documents.housekeeping")

NUDGE_SECONDS = 10  # an account found full asks for a retention run at most this often


# --- what the pipeline tells retention --------------------------------------------------------


def stored_file_extracted(*, stored_file_id: int) -> None:
    """The pipeline stored a file's text: with delete-after-extract, its remote copy goes."""
    if settings.DOCQA_RETENTION != RetentionPolicy.DELETE_AFTER_EXTRACT:
        return
    try:
        tasks.remote_copy_release.delay(stored_file_id)
    except Exception:  # noqa: BLE001 - the beat's retention run releases it later
        logger.warning("could not enqueue the release of %s", stored_file_id, exc_info=True)


def account_full_reported() -> None:
    """The pipeline parked an upload: let the retention policy make room soon, once."""
    if settings.DOCQA_RETENTION == RetentionPolicy.KEEP:
        return
    try:
        if not redis_client().set(keys.RETENTION_NUDGED, "1", nx=True, ex=NUDGE_SECONDS):
            return
        tasks.retention_apply.delay()
    except Exception:  # noqa: BLE001 - the beat runs the policy anyway
        logger.warning("could not enqueue the retention policy", exc_info=True)


def uploads_waiting_resume() -> int:
    """Enqueue the ingest of every upload waiting for room (room has just been made), users
    taking turns (see `uploads_waiting_in_fair_order`)."""
    ids = uploads_waiting_in_fair_order()
    for pk in ids:
        transaction.on_commit(lambda pk=pk: tasks.document_ingest.delay(pk))
    return len(ids)


# --- releasing one remote copy ----------------------------------------------------------------


def remote_copy_release(*, stored_file_id: int) -> str | None:
    """Delete a ready stored file's remote copy, keeping its text; returns the id released.

    The row forgets the copy first, so nothing can use it any more; if the delete then fails
    it is retried by a task, and failing that the next reconciliation deletes it as an orphan.
    """
    remote_id = remote_copy_forget(stored_file_id=stored_file_id)
    if remote_id:
        remote_delete_or_defer(remote_id=remote_id)
    return remote_id


def remote_delete_or_defer(*, remote_id: str) -> bool:
    """Delete a remote copy no row uses now; when Moonshot fails, hand it to the retrying task."""
    try:
        remote_file_delete(remote_id=remote_id)
    except MoonshotError as exc:
        logger.warning("could not delete remote file %s now (%s); will retry", remote_id, exc)
        if exc.retryable:
            remote_file_delete_later(remote_id, countdown=30)
        return False
    snapshot_forget([remote_id])
    return True


# --- applying the policy ----------------------------------------------------------------------

# The policies' labels as stored notes (the same message ids as RetentionPolicy's labels), so a
# summary names the policy in the reader's language rather than as its setting value.
POLICY_NOTES = {
    RetentionPolicy.KEEP: note(N_("Keep remote copies")),
    RetentionPolicy.DELETE_AFTER_EXTRACT: note(N_("Delete remote copies after extraction")),
    RetentionPolicy.EVICT: note(N_("Evict the least recently used when the account is nearly full")),
}


@dataclass
class RetentionReport:
    policy: str
    dry_run: bool = False
    skipped: bool = False
    files_before: int = 0
    bytes_before: int = 0
    released: int = 0
    released_bytes: int = 0
    resumed: int = 0

    def summary(self) -> str:
        if self.skipped:
            return note(N_("The retention policy was already being applied; nothing done."))
        if self.dry_run:
            return note(
                N_(
                    "Dry run (policy “%(policy)s”). Remote copies that would be deleted, their text kept: "
                    "%(count)s (%(mb)s MB)."
                ),
                policy=POLICY_NOTES.get(self.policy, self.policy),
                count=self.released,
                mb=round(self.released_bytes / 10**6, 1),
            )
        return note(
            N_(
                "Policy “%(policy)s”. Remote copies deleted, their text kept: %(count)s (%(mb)s MB). "
                "Waiting uploads resumed: %(resumed)s."
            ),
            policy=POLICY_NOTES.get(self.policy, self.policy),
            count=self.released,
            mb=round(self.released_bytes / 10**6, 1),
            resumed=self.resumed,
        )


def account_usage_remote() -> tuple[int, int]:
    """(files, bytes) the account really holds, others' files included; the database's
    figures when Moonshot cannot be asked."""
    try:
        remote = moonshot_client().files_list()
    except MoonshotError as exc:
        logger.warning("could not list the account, using the database's figures: %s", exc)
        return account_usage()
    return len(remote), sum(item.bytes for item in remote)


def retention_candidates() -> QuerySet[StoredFile]:
    """Remote copies that may go: their text is stored. Least recently used first."""
    return (
        StoredFile.objects.filter(status=Status.READY)
        .exclude(remote_id="")
        .exclude(content_raw="")
        .annotate(used=Coalesce(Max("documents__last_used_at"), F("last_used_at")))
        .order_by("used", "pk")
    )


def retention_apply(
    *, policy: str | None = None, dry_run: bool = False, progress: Progress | None = None
) -> RetentionReport:
    """Apply the retention policy (`DOCQA_RETENTION` unless given) to the remote copies.

    keep: nothing. delete-after-extract: every remote copy whose text is stored goes.
    evict: above the high-water mark of files or bytes (or while uploads wait for room),
    the least recently used such copies go until usage is under the low-water mark with
    room for the waiting uploads. Afterwards the waiting uploads are resumed.
    """
    policy = RetentionPolicy(policy or settings.DOCQA_RETENTION)
    report = RetentionReport(policy=policy, dry_run=dry_run)
    if policy == RetentionPolicy.KEEP:
        return report
    with lease_held(keys.RETENTION_LOCK, ttl=LOCK_TTL) as lease:
        if lease is None:
            report.skipped = True
            return report
        targets = _retention_targets(policy=policy, report=report)
        if progress:
            progress(0, len(targets))
        for done, (pk, size) in enumerate(targets, start=1):
            if dry_run or remote_copy_release(stored_file_id=pk):
                report.released += 1
                report.released_bytes += size
            if progress:
                progress(done, len(targets))
        if report.released and not dry_run:
            report.resumed = uploads_waiting_resume()
    if report.released:
        logger.info("retention %s: released %s remote copies", policy, report.released)
    return report


def _retention_targets(*, policy: RetentionPolicy, report: RetentionReport) -> list[tuple[int, int]]:
    candidates = retention_candidates().values_list("pk", "size")
    if policy == RetentionPolicy.DELETE_AFTER_EXTRACT:
        return list(candidates)
    files, used = account_usage_remote()
    report.files_before, report.bytes_before = files, used
    max_files, max_bytes = settings.DOCQA_ACCOUNT_MAX_FILES, settings.DOCQA_ACCOUNT_MAX_BYTES
    high, low = settings.DOCQA_EVICT_HIGH_WATER / 100, settings.DOCQA_EVICT_LOW_WATER / 100
    waiting = uploads_waiting().aggregate(n=Count("pk"), b=Sum("size"))
    waiting_files, waiting_bytes = waiting["n"] or 0, waiting["b"] or 0
    if files < high * max_files and used < high * max_bytes and not waiting_files:
        return []
    goal_files = max(0, low * max_files - waiting_files)
    goal_bytes = max(0, low * max_bytes - waiting_bytes)
    targets = []
    for pk, size in candidates.iterator():
        if files <= goal_files and used <= goal_bytes:
            break
        targets.append((pk, size))
        files -= 1
        used -= size
    return targets
