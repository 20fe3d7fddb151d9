"""Deleting orphans: remote files named as docqa's that no stored file uses or is uploading."""

from __future__ import annotations

import enum
import logging
from dataclasses import dataclass

from django.utils.translation import gettext_noop as N_

from docqa.connections import moonshot_client
from docqa.documents.housekeeping.jobs import Progress
from docqa.documents.housekeeping.remote import (
    RemoteKind,
    RemoteRow,
    is_in_flight,
    remote_files_classify,
    remote_name_token,
)
from docqa.documents.housekeeping.snapshot import snapshot_forget
from docqa.documents.models import StoredFile
from docqa.moonshot import MoonshotError, NotFoundError
from docqa.notes import note

logger = logging.getLogger("docqa.documents.housekeeping")


class DeleteResult(enum.StrEnum):
    """What became of one orphan; each is a field of OrphanOutcome."""

    DELETED = "deleted"
    ALREADY_GONE = "already_gone"
    FAILED = "failed"
    REFUSED = "refused"


@dataclass
class OrphanOutcome:
    deleted: int = 0
    already_gone: int = 0
    failed: int = 0
    refused: int = 0  # no longer an orphan (adopted, linked, not docqa's)

    def add(self, other: OrphanOutcome) -> None:
        self.deleted += other.deleted
        self.already_gone += other.already_gone
        self.failed += other.failed
        self.refused += other.refused

    def summary(self) -> str:
        return note(
            N_(
                "Orphans deleted: %(deleted)s. Already gone: %(gone)s. Failed (retried at the next sync): "
                "%(failed)s. Kept because they are no longer orphans: %(refused)s."
            ),
            deleted=self.deleted,
            gone=self.already_gone,
            failed=self.failed,
            refused=self.refused,
        )


def orphans_delete(*, remote_ids: list[str], progress: Progress | None = None) -> OrphanOutcome:
    """Delete these remote files if they are still orphans (an admin chose them).

    The account is listed once more first, so a file is judged by what is true now.
    """
    client = moonshot_client()
    remote = {item.id: item for item in client.files_list()}
    outcome = OrphanOutcome()
    chosen = []
    for remote_id in dict.fromkeys(remote_ids):
        if remote_id not in remote:
            outcome.already_gone += 1
        else:
            chosen.append(remote[remote_id])
    rows = remote_files_classify(remote=chosen)
    orphans = [row for row in rows if row.kind == RemoteKind.ORPHAN]
    outcome.refused = len(rows) - len(orphans)
    if progress:
        progress(0, len(orphans))
    outcome.add(orphan_rows_delete(rows=orphans, client=client, progress=progress))
    snapshot_forget([r for r in remote_ids if r not in remote])
    return outcome


def orphan_rows_delete(*, rows: list[RemoteRow], client, progress: Progress | None) -> OrphanOutcome:
    """Delete classified orphans one by one, each checked again right before; never raises."""
    outcome = OrphanOutcome()
    gone = []
    for done, row in enumerate(rows, start=1):
        result = _orphan_delete_one(remote_id=row.remote_id, filename=row.filename, client=client)
        setattr(outcome, result.value, getattr(outcome, result.value) + 1)
        if result in (DeleteResult.DELETED, DeleteResult.ALREADY_GONE):
            gone.append(row.remote_id)
        if progress:
            progress(done, len(rows))
    snapshot_forget(gone)
    return outcome


def _orphan_delete_one(*, remote_id: str, filename: str, client) -> DeleteResult:
    # Checked again right before deleting: an upload may have recorded or adopted it since.
    if StoredFile.objects.filter(remote_id=remote_id).exists():
        return DeleteResult.REFUSED
    token = remote_name_token(filename)
    if token is None:
        return DeleteResult.REFUSED
    owner = StoredFile.objects.filter(upload_token=token).values("status", "remote_id").first()
    if owner is not None and is_in_flight(owner):
        return DeleteResult.REFUSED
    try:
        client.files_delete(remote_id)
    except NotFoundError:
        return DeleteResult.ALREADY_GONE
    except MoonshotError as exc:
        logger.warning("could not delete orphan %s: %s", remote_id, exc)
        return DeleteResult.FAILED
    logger.info("deleted orphan remote file %s (%s)", remote_id, filename)
    return DeleteResult.DELETED
