"""The admin's Moonshot account page: the last listing joined with the stored files."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.utils import timezone

from docqa.documents.choices import RetentionPolicy
from docqa.documents.housekeeping.remote import (
    RemoteKind,
    RemoteRow,
    document_names,
    remote_files_classify,
    stored_files_missing_marked,
)
from docqa.documents.housekeeping.snapshot import snapshot_files, snapshot_get
from docqa.documents.quotas import usage_per_user
from docqa.documents.selectors import uploads_waiting


@dataclass
class AccountOverview:
    """Everything the Moonshot account page shows, from the last listing and the database."""

    taken_at: datetime | None
    rows: list[RemoteRow]
    files: int
    bytes: int
    max_files: int
    max_bytes: int
    balance: dict | None
    waiting: int
    policy: RetentionPolicy
    grace_seconds: int
    counts: dict[str, int]
    usage: list[dict]
    user_max_files: int
    user_max_bytes: int

    @property
    def files_percent(self) -> float:
        return min(100.0, 100 * self.files / self.max_files)

    @property
    def bytes_percent(self) -> float:
        return min(100.0, 100 * self.bytes / self.max_bytes)

    @property
    def is_full(self) -> bool:
        return self.files >= self.max_files or self.bytes >= self.max_bytes

    @property
    def policy_makes_room(self) -> bool:
        return self.policy != RetentionPolicy.KEEP

    @property
    def orphan_ids(self) -> list[str]:
        return [row.remote_id for row in self.rows if row.kind == RemoteKind.ORPHAN]


KIND_ORDER = {
    RemoteKind.ORPHAN: 0,
    RemoteKind.MISSING: 1,
    RemoteKind.IN_FLIGHT: 2,
    RemoteKind.LINKED: 3,
    RemoteKind.FOREIGN: 4,
}


def account_overview() -> AccountOverview:
    """The last recorded listing joined with the stored files, plus what waits for room."""
    snapshot = snapshot_get()
    remote = snapshot_files(snapshot) if snapshot else []
    rows = remote_files_classify(remote=remote) if snapshot else []
    missing = stored_files_missing_marked()
    names = document_names([stored.pk for stored in missing])
    rows += [
        RemoteRow(
            kind=RemoteKind.MISSING,
            remote_id="",
            filename=stored.remote_filename,
            bytes=stored.size,
            created_at=stored.remote_missing_at,
            status=stored.status,
            stored_file_id=stored.pk,
            documents=names.get(stored.pk, ()),
        )
        for stored in missing
    ]
    rows.sort(key=lambda row: (KIND_ORDER[row.kind], row.created_at or timezone.now()))
    counts = dict.fromkeys(KIND_ORDER, 0)
    for row in rows:
        counts[row.kind] += 1
    return AccountOverview(
        taken_at=datetime.fromisoformat(snapshot["taken_at"]) if snapshot else None,
        rows=rows,
        files=len(remote),
        bytes=sum(item.bytes for item in remote),
        max_files=settings.DOCQA_ACCOUNT_MAX_FILES,
        max_bytes=settings.DOCQA_ACCOUNT_MAX_BYTES,
        balance=(snapshot or {}).get("balance"),
        waiting=uploads_waiting().count(),
        policy=RetentionPolicy(settings.DOCQA_RETENTION),
        grace_seconds=settings.DOCQA_ORPHAN_GRACE,
        counts=counts,
        usage=usage_per_user(),
        user_max_files=settings.DOCQA_USER_MAX_FILES,
        user_max_bytes=settings.DOCQA_USER_MAX_BYTES,
    )
