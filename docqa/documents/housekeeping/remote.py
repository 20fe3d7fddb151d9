"""What the account holds: its files classified against the stored files.

A remote file is linked, in flight, an orphan or foreign (see the package's docstring); a
stored file whose copy is not in the listing is missing.
"""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from docqa.documents.models import TRANSIENT_STATUSES, Document, Status, StoredFile
from docqa.moonshot import FileObject

REMOTE_NAME = re.compile(r"^docqa-(?P<token>[0-9a-f]{32})\.[0-9A-Za-z]{1,10}$")


class RemoteKind(enum.StrEnum):
    LINKED = "linked"
    ORPHAN = "orphan"
    IN_FLIGHT = "in_flight"
    FOREIGN = "foreign"
    MISSING = "missing"


@dataclass(frozen=True)
class DocumentName:
    """A local document over a remote file, as the account page names it."""

    filename: str
    owner: str


@dataclass(frozen=True)
class RemoteRow:
    """One row of the account page: a remote file, or a stored file whose copy is missing."""

    kind: str
    remote_id: str
    filename: str
    bytes: int
    created_at: datetime | None
    status: str = ""
    stored_file_id: int | None = None
    documents: tuple[DocumentName, ...] = ()
    deletable_now: bool = False  # an orphan older than the grace period


def remote_name_token(filename: str) -> uuid.UUID | None:
    """The upload token in a remote file name docqa created, or None for anyone else's."""
    match = REMOTE_NAME.match(filename)
    return uuid.UUID(hex=match["token"]) if match else None


def _created(remote: FileObject) -> datetime | None:
    return datetime.fromtimestamp(remote.created_at, tz=UTC) if remote.created_at else None


def remote_files_classify(*, remote: Iterable[FileObject], now: datetime | None = None) -> list[RemoteRow]:
    """Join the account's files with the stored files: linked, in flight, orphan or foreign."""
    now = now or timezone.now()
    grace = timedelta(seconds=settings.DOCQA_ORPHAN_GRACE)
    remote = list(remote)
    local = {
        row["remote_id"]: row for row in StoredFile.objects.exclude(remote_id="").values("pk", "remote_id")
    }
    tokens = {remote_name_token(item.filename) for item in remote} - {None}
    by_token = {
        row["upload_token"]: row
        for row in StoredFile.objects.filter(upload_token__in=list(tokens)).values(
            "pk", "upload_token", "status", "remote_id"
        )
    }
    names = document_names([row["pk"] for row in local.values()] + [row["pk"] for row in by_token.values()])
    rows = []
    for item in remote:
        created = _created(item)
        base = {
            "remote_id": item.id,
            "filename": item.filename,
            "bytes": item.bytes,
            "created_at": created,
            "status": item.status,
        }
        if item.id in local:
            pk = local[item.id]["pk"]
            rows.append(
                RemoteRow(kind=RemoteKind.LINKED, stored_file_id=pk, documents=names.get(pk, ()), **base)
            )
            continue
        token = remote_name_token(item.filename)
        if token is None:
            rows.append(RemoteRow(kind=RemoteKind.FOREIGN, **base))
            continue
        owner = by_token.get(token)
        if owner is not None and is_in_flight(owner):
            pk = owner["pk"]
            rows.append(
                RemoteRow(kind=RemoteKind.IN_FLIGHT, stored_file_id=pk, documents=names.get(pk, ()), **base)
            )
            continue
        old_enough = created is None or now - created >= grace
        rows.append(RemoteRow(kind=RemoteKind.ORPHAN, deletable_now=old_enough, **base))
    return rows


def is_in_flight(row: dict) -> bool:
    """Still uploading and nothing recorded: the ingest finds this file by name and adopts it."""
    return row["status"] in TRANSIENT_STATUSES and not row["remote_id"]


def document_names(stored_file_ids: list[int]) -> dict[int, tuple[DocumentName, ...]]:
    """The documents over each stored file, oldest first, each with its owner's username (two
    users' "report.pdf" are told apart on the account page)."""
    names: dict[int, list[DocumentName]] = {}
    rows = Document.objects.filter(stored_file_id__in=stored_file_ids).values_list(
        "stored_file_id", "filename", "owner__username"
    )
    for stored_file_id, filename, owner in rows.order_by("pk"):
        names.setdefault(stored_file_id, []).append(DocumentName(filename=filename, owner=owner))
    return {key: tuple(value) for key, value in names.items()}


def stored_files_missing(*, remote_ids: set[str], listed_at: datetime) -> list[StoredFile]:
    """Stored files with text or a final state whose remote copy is not among `remote_ids`.

    Files still in the pipeline are left to it (it re-uploads when its copy is gone), and a
    copy recorded after the list was taken is not judged by that list.
    """
    candidates = (
        StoredFile.objects.exclude(remote_id="")
        .filter(status__in=(Status.READY, Status.FAILED))
        .filter(Q(remote_uploaded_at__isnull=True) | Q(remote_uploaded_at__lt=listed_at))
        .only("pk", "remote_id", "status", "size", "remote_uploaded_at")
    )
    return [stored for stored in candidates.iterator() if stored.remote_id not in remote_ids]


def stored_files_missing_marked() -> list[StoredFile]:
    """Stored files reconciliation found without their remote copy, most recent first."""
    return list(
        StoredFile.objects.filter(remote_id="", remote_missing_at__isnull=False).order_by(
            "-remote_missing_at"
        )
    )
