"""Reconciliation: list the account, record it, mark missing copies, delete old orphans."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.utils import timezone
from django.utils.translation import gettext_noop as N_

from docqa import keys
from docqa.connections import moonshot_client
from docqa.documents.housekeeping import LOCK_TTL
from docqa.documents.housekeeping.jobs import Progress
from docqa.documents.housekeeping.orphans import orphan_rows_delete
from docqa.documents.housekeeping.remote import RemoteKind, remote_files_classify, stored_files_missing
from docqa.documents.housekeeping.retention import uploads_waiting_resume
from docqa.documents.housekeeping.snapshot import snapshot_record
from docqa.documents.models import StoredFile
from docqa.locks import lease_held
from docqa.moonshot import MoonshotError
from docqa.notes import note

logger = logging.getLogger("docqa.documents.housekeeping")


@dataclass
class ReconcileReport:
    """What one reconciliation saw and did."""

    dry_run: bool = False
    skipped: bool = False  # another run held the lock
    remote_files: int = 0
    remote_bytes: int = 0
    linked: int = 0
    in_flight: int = 0
    foreign: int = 0
    orphans: int = 0
    orphans_young: int = 0
    orphans_deleted: int = 0
    orphans_failed: int = 0
    missing_marked: int = 0

    def summary(self) -> str:
        """A stored note (docqa.notes) that says it in one sentence."""
        if self.skipped:
            return note(N_("Another reconciliation was already running; nothing done."))
        # "Label: number" reads right for any count, in every language, without plural forms.
        message = (
            N_(
                "Dry run. Remote files: %(files)s (linked: %(linked)s, uploading: %(in_flight)s, not docqa's: "
                "%(foreign)s). Orphans: %(orphans)s, would be deleted: %(deletable)s. Missing copies to mark: %(missing)s."
            )
            if self.dry_run
            else N_(
                "Remote files: %(files)s (linked: %(linked)s, uploading: %(in_flight)s, not docqa's: %(foreign)s). "
                "Orphans deleted: %(deleted)s, failed (retried next time): %(failed)s, kept until the grace period "
                "passes: %(young)s. Missing copies marked: %(missing)s."
            )
        )
        return note(
            message,
            files=self.remote_files,
            linked=self.linked,
            in_flight=self.in_flight,
            foreign=self.foreign,
            orphans=self.orphans,
            deletable=self.orphans - self.orphans_young,
            deleted=self.orphans_deleted,
            failed=self.orphans_failed,
            young=self.orphans_young,
            missing=self.missing_marked,
        )


def remote_files_reconcile(*, dry_run: bool = False, progress: Progress | None = None) -> ReconcileReport:
    """List the account, record it, mark missing copies and delete orphans past the grace period.

    Idempotent; a second run while one holds the lock returns at once with `skipped` set.
    Raises MoonshotError when the account cannot be listed (nothing is changed then).
    """
    with lease_held(keys.RECONCILE_LOCK, ttl=LOCK_TTL) as lease:
        if lease is None:
            return ReconcileReport(dry_run=dry_run, skipped=True)
        return _reconcile(dry_run=dry_run, progress=progress)


def _reconcile(*, dry_run: bool, progress: Progress | None) -> ReconcileReport:
    client = moonshot_client()
    listed_at = timezone.now()
    remote = client.files_list()
    report = ReconcileReport(
        dry_run=dry_run, remote_files=len(remote), remote_bytes=sum(f.bytes for f in remote)
    )
    if not dry_run:
        snapshot_record(remote=remote, balance=_balance_or_none(client), taken_at=listed_at)

    rows = remote_files_classify(remote=remote, now=listed_at)
    for row in rows:
        if row.kind == RemoteKind.LINKED:
            report.linked += 1
        elif row.kind == RemoteKind.IN_FLIGHT:
            report.in_flight += 1
        elif row.kind == RemoteKind.FOREIGN:
            report.foreign += 1
        else:
            report.orphans += 1
            report.orphans_young += not row.deletable_now

    missing = stored_files_missing(remote_ids={f.id for f in remote}, listed_at=listed_at)
    if not dry_run:
        for stored in missing:
            report.missing_marked += stored_file_mark_missing(
                stored_file_id=stored.pk, remote_id=stored.remote_id
            )
    else:
        report.missing_marked = len(missing)

    deletable = [row for row in rows if row.kind == RemoteKind.ORPHAN and row.deletable_now]
    if progress:
        progress(0, len(deletable))
    if not dry_run:
        outcome = orphan_rows_delete(rows=deletable, client=client, progress=progress)
        report.orphans_deleted, report.orphans_failed = outcome.deleted + outcome.already_gone, outcome.failed
        if report.orphans_deleted or report.missing_marked:
            uploads_waiting_resume()  # room appeared
    if report.orphans_deleted or report.missing_marked:
        logger.info(
            "reconcile: %s orphans deleted, %s failed, %s missing copies marked",
            report.orphans_deleted,
            report.orphans_failed,
            report.missing_marked,
        )
    return report


def _balance_or_none(client) -> dict | None:
    try:
        balance = client.balance()
    except MoonshotError as exc:
        logger.warning("could not read the account balance: %s", exc)
        return None
    return {
        "available": balance.available_balance,
        "voucher": balance.voucher_balance,
        "cash": balance.cash_balance,
    }


def stored_file_mark_missing(*, stored_file_id: int, remote_id: str) -> bool:
    """Record that a stored file's remote copy is gone; its text stays."""
    return bool(
        StoredFile.objects.filter(pk=stored_file_id, remote_id=remote_id).update(
            remote_id="", upload_started_at=None, remote_missing_at=timezone.now()
        )
    )
