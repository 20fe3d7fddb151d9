"""Housekeeping of the Moonshot account: reconciliation, retention, orphans, the admin's view.

The account (1,000 files, 10 GB) is shared by every user of an install, and by anything else
that uses the same key. docqa names every remote file it creates `docqa-<upload token>.<ext>`
(see `StoredFile.remote_filename`); files with any other name are someone else's and are
never deleted here.

A remote file is
- *linked* when a stored file's `remote_id` is its id;
- *in flight* when its name carries the token of a stored file that is still being uploaded
  and has not recorded a remote id yet (the ingest will adopt it);
- an *orphan* otherwise, if its name is ours: reconciliation deletes it once it is older than
  `DOCQA_ORPHAN_GRACE`;
- *foreign* when its name is not ours.
A stored file is *missing* its remote copy when its `remote_id` is not in the account: its
text stays, `remote_id` is cleared and `remote_missing_at` set, so a re-extraction uploads
the local file again.

Every step re-checks the database right before it acts, so a run that races an upload, a
delete or another run does no harm; reconciliation and retention also take a Redis lock so
two runs at once do not do the same work twice.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Max, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone
from django.utils.translation import gettext_noop as N_

from docqa import keys
from docqa.connections import moonshot_client, redis_client
from docqa.documents import services
from docqa.documents.models import TRANSIENT_STATUSES, Status, StoredFile
from docqa.locks import lease_held
from docqa.moonshot import FileObject, MoonshotError, NotFoundError
from docqa.notes import note, note_display

logger = logging.getLogger("docqa.documents.housekeeping")

REMOTE_NAME = re.compile(r"^docqa-(?P<token>[0-9a-f]{32})\.[0-9A-Za-z]{1,10}$")
WAITING_FOR_ROOM = "Waiting for room"  # how both of the pipeline's parking notes begin

DELETED_KEEP_SECONDS = 24 * 3600
# Housekeeping leases are renewed while a run works, so a killed run frees its job at once.
HOUSEKEEPING_LOCK_TTL = 60

Progress = Callable[[int, int], None]


class RemoteKind:
    LINKED = "linked"
    ORPHAN = "orphan"
    IN_FLIGHT = "in_flight"
    FOREIGN = "foreign"
    MISSING = "missing"


# --- what the account holds -----------------------------------------------------------------


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
    documents: tuple[str, ...] = ()
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
    names = _document_names([row["pk"] for row in local.values()] + [row["pk"] for row in by_token.values()])
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
        if owner is not None and _is_in_flight(owner):
            pk = owner["pk"]
            rows.append(
                RemoteRow(kind=RemoteKind.IN_FLIGHT, stored_file_id=pk, documents=names.get(pk, ()), **base)
            )
            continue
        old_enough = created is None or now - created >= grace
        rows.append(RemoteRow(kind=RemoteKind.ORPHAN, deletable_now=old_enough, **base))
    return rows


def _is_in_flight(row: dict) -> bool:
    # Still uploading and nothing recorded: the ingest finds this file by name and adopts it.
    return row["status"] in TRANSIENT_STATUSES and not row["remote_id"]


def _document_names(stored_file_ids: list[int]) -> dict[int, tuple[str, ...]]:
    from docqa.documents.models import Document

    names: dict[int, list[str]] = {}
    rows = Document.objects.filter(stored_file_id__in=stored_file_ids).values_list(
        "stored_file_id", "filename"
    )
    for stored_file_id, filename in rows.order_by("pk"):
        names.setdefault(stored_file_id, []).append(filename)
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


# --- the snapshot the admin page shows --------------------------------------------------------


def snapshot_record(*, remote: list[FileObject], balance: dict | None, taken_at: datetime) -> None:
    """Keep the last listing of the account (and its balance) for the admin page."""
    payload = {
        "taken_at": taken_at.isoformat(),
        "files": [
            {
                "id": f.id,
                "filename": f.filename,
                "bytes": f.bytes,
                "created_at": f.created_at,
                "status": f.status,
            }
            for f in remote
        ],
        "balance": balance,
    }
    redis_client().set(keys.REMOTE_SNAPSHOT, json.dumps(payload))


def snapshot_get() -> dict | None:
    """The last listing, less the files deleted since it was taken."""
    client = redis_client()
    raw = client.get(keys.REMOTE_SNAPSHOT)
    if not raw:
        return None
    data = json.loads(raw)
    taken = datetime.fromisoformat(data["taken_at"]).timestamp()
    deleted = set(client.zrangebyscore(keys.REMOTE_DELETED, taken, "+inf"))
    if deleted:
        data["files"] = [item for item in data["files"] if item["id"] not in deleted]
    return data


def _snapshot_files(snapshot: dict) -> list[FileObject]:
    return [FileObject.from_api(item) for item in snapshot.get("files", [])]


def _snapshot_forget(remote_ids: Iterable[str]) -> None:
    """Drop deleted files from the snapshot so the page does not show them until the next sync."""
    gone = set(remote_ids)
    if not gone:
        return
    client = redis_client()
    now = timezone.now().timestamp()
    pipe = client.pipeline(transaction=False)
    pipe.zadd(keys.REMOTE_DELETED, dict.fromkeys(gone, now))
    pipe.zremrangebyscore(keys.REMOTE_DELETED, "-inf", now - DELETED_KEEP_SECONDS)
    pipe.expire(keys.REMOTE_DELETED, DELETED_KEEP_SECONDS)
    pipe.execute()
    for _attempt in range(5):
        with client.pipeline() as pipe:
            try:
                pipe.watch(keys.REMOTE_SNAPSHOT)
                raw = pipe.get(keys.REMOTE_SNAPSHOT)
                if not raw:
                    return
                data = json.loads(raw)
                data["files"] = [item for item in data["files"] if item["id"] not in gone]
                pipe.multi()
                pipe.set(keys.REMOTE_SNAPSHOT, json.dumps(data))
                pipe.execute()
                return
            except redis.WatchError:
                continue  # written meanwhile: trim the newer list
    logger.warning("could not trim the account snapshot; the next sync refreshes it")


# --- reconciliation ---------------------------------------------------------------------------


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
    missing_ids: list[str] = field(default_factory=list)

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
    with lease_held(keys.RECONCILE_LOCK, ttl=HOUSEKEEPING_LOCK_TTL) as lease:
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
    report.missing_ids = [stored.remote_id for stored in missing]
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
        outcome = _orphans_delete_rows(rows=deletable, client=client, progress=progress)
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


# --- deleting orphans -------------------------------------------------------------------------


@dataclass
class OrphanOutcome:
    deleted: int = 0
    already_gone: int = 0
    failed: int = 0
    refused: int = 0  # no longer an orphan (adopted, linked, not docqa's)

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
    result = _orphans_delete_rows(rows=orphans, client=client, progress=progress)
    outcome.deleted += result.deleted
    outcome.already_gone += result.already_gone
    outcome.failed += result.failed
    outcome.refused += result.refused
    _snapshot_forget([r for r in remote_ids if r not in remote])
    return outcome


def _orphans_delete_rows(*, rows: list[RemoteRow], client, progress: Progress | None) -> OrphanOutcome:
    outcome = OrphanOutcome()
    gone = []
    for done, row in enumerate(rows, start=1):
        result = _orphan_delete_one(remote_id=row.remote_id, filename=row.filename, client=client)
        setattr(outcome, result, getattr(outcome, result) + 1)
        if result in ("deleted", "already_gone"):
            gone.append(row.remote_id)
        if progress:
            progress(done, len(rows))
    _snapshot_forget(gone)
    return outcome


def _orphan_delete_one(*, remote_id: str, filename: str, client) -> str:
    # Checked again right before deleting: an upload may have recorded or adopted it since.
    if StoredFile.objects.filter(remote_id=remote_id).exists():
        return "refused"
    token = remote_name_token(filename)
    if token is None:
        return "refused"
    owner = StoredFile.objects.filter(upload_token=token).values("status", "remote_id").first()
    if owner is not None and _is_in_flight(owner):
        return "refused"
    try:
        client.files_delete(remote_id)
    except NotFoundError:
        return "already_gone"
    except MoonshotError as exc:
        logger.warning("could not delete orphan %s: %s", remote_id, exc)
        return "failed"
    logger.info("deleted orphan remote file %s (%s)", remote_id, filename)
    return "deleted"


# --- remote copies: release and re-extract ------------------------------------------------------


def remote_copy_release(*, stored_file_id: int) -> str | None:
    """Delete a ready stored file's remote copy, keeping its text; returns the id released.

    The row forgets the copy first, so nothing can use it any more; if the delete then fails
    it is retried by a task, and failing that the next reconciliation deletes it as an orphan.
    """
    remote_id = remote_copy_forget(stored_file_id=stored_file_id)
    if remote_id:
        remote_delete_or_defer(remote_id=remote_id)
    return remote_id


def remote_copy_forget(*, stored_file_id: int) -> str | None:
    """Make a ready stored file forget its remote copy (text kept); returns the id to delete.

    The caller deletes the remote file, or enqueues `tasks.remote_file_delete` for it.
    """
    stored = (
        StoredFile.objects.filter(pk=stored_file_id, status=Status.READY)
        .exclude(remote_id="")
        .exclude(content_raw="")
        .values("remote_id")
        .first()
    )
    if stored is None:
        return None
    remote_id = stored["remote_id"]
    released = StoredFile.objects.filter(pk=stored_file_id, remote_id=remote_id, status=Status.READY).update(
        remote_id="", upload_started_at=None, remote_missing_at=None
    )
    return remote_id if released else None


def remote_delete_or_defer(*, remote_id: str) -> bool:
    """Delete a remote copy no row uses now; when Moonshot fails, hand it to the retrying task."""
    try:
        services.remote_file_delete(remote_id=remote_id)
    except MoonshotError as exc:
        logger.warning("could not delete remote file %s now (%s); will retry", remote_id, exc)
        if exc.retryable:
            from docqa.documents.tasks import remote_file_delete

            transaction.on_commit(lambda: remote_file_delete.apply_async(args=[remote_id], countdown=30))
        return False
    _snapshot_forget([remote_id])
    return True


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
    moved = services.stored_file_transition(
        stored_file_id=stored_file_id, from_statuses=(stored["status"],), to_status=Status.QUEUED, **fields
    )
    if not moved:
        return False
    if old_remote:
        transaction.on_commit(lambda: _remote_delete_enqueue(old_remote))
    transaction.on_commit(lambda: _ingest_enqueue(stored_file_id))
    return True


def _remote_delete_enqueue(remote_id: str) -> None:
    from docqa.documents.tasks import remote_file_delete

    remote_file_delete.delay(remote_id)


def _ingest_enqueue(stored_file_id: int) -> None:
    from docqa.documents.tasks import document_ingest

    document_ingest.delay(stored_file_id)


# --- uploads waiting for room ---------------------------------------------------------------


def uploads_waiting() -> QuerySet[StoredFile]:
    """Stored files parked by the pipeline because the account was full."""
    return StoredFile.objects.filter(
        status=Status.QUEUED, remote_id="", last_error__contains=WAITING_FOR_ROOM
    )


def uploads_waiting_resume() -> int:
    """Enqueue the ingest of every upload waiting for room (room has just been made)."""
    ids = list(uploads_waiting().values_list("pk", flat=True))
    for pk in ids:
        transaction.on_commit(lambda pk=pk: _ingest_enqueue(pk))
    return len(ids)


def account_full_reported() -> None:
    """The pipeline parked an upload: let the retention policy make room soon, once."""
    if settings.DOCQA_RETENTION == "keep":
        return
    try:
        if not redis_client().set(keys.RETENTION_NUDGED, "1", nx=True, ex=10):
            return
        from docqa.documents.tasks import retention_apply

        retention_apply.delay()
    except Exception:  # noqa: BLE001 - the beat runs the policy anyway
        logger.warning("could not enqueue the retention policy", exc_info=True)


def stored_file_extracted(*, stored_file_id: int) -> None:
    """The pipeline stored a file's text: with delete-after-extract, its remote copy goes."""
    if settings.DOCQA_RETENTION != "delete-after-extract":
        return
    from docqa.documents.tasks import remote_copy_release as release_task

    try:
        release_task.delay(stored_file_id)
    except Exception:  # noqa: BLE001 - the beat's retention run releases it later
        logger.warning("could not enqueue the release of %s", stored_file_id, exc_info=True)


# --- retention --------------------------------------------------------------------------------


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
                    "Dry run (policy %(policy)s). Remote copies that would be deleted, their text kept: "
                    "%(count)s (%(mb)s MB)."
                ),
                policy=self.policy,
                count=self.released,
                mb=round(self.released_bytes / 1024**2, 1),
            )
        return note(
            N_(
                "Policy %(policy)s. Remote copies deleted, their text kept: %(count)s (%(mb)s MB). "
                "Waiting uploads resumed: %(resumed)s."
            ),
            policy=self.policy,
            count=self.released,
            mb=round(self.released_bytes / 1024**2, 1),
            resumed=self.resumed,
        )


def account_usage_remote(*, client=None) -> tuple[int, int]:
    """(files, bytes) the account really holds, others' files included; the database's
    figures when Moonshot cannot be asked."""
    try:
        remote = (client or moonshot_client()).files_list()
    except MoonshotError as exc:
        logger.warning("could not list the account, using the database's figures: %s", exc)
        return services.account_usage()
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
    policy = policy or settings.DOCQA_RETENTION
    report = RetentionReport(policy=policy, dry_run=dry_run)
    if policy == "keep":
        return report
    with lease_held(keys.RETENTION_LOCK, ttl=HOUSEKEEPING_LOCK_TTL) as lease:
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


def _retention_targets(*, policy: str, report: RetentionReport) -> list[tuple[int, int]]:
    candidates = retention_candidates().values_list("pk", "size")
    if policy == "delete-after-extract":
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


# --- the admin's overview ---------------------------------------------------------------------


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
    policy: str
    grace_seconds: int
    counts: dict[str, int]

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
    def orphan_ids(self) -> list[str]:
        return [row.remote_id for row in self.rows if row.kind == RemoteKind.ORPHAN]


_KIND_ORDER = {
    RemoteKind.ORPHAN: 0,
    RemoteKind.MISSING: 1,
    RemoteKind.IN_FLIGHT: 2,
    RemoteKind.LINKED: 3,
    RemoteKind.FOREIGN: 4,
}


def account_overview() -> AccountOverview:
    """The last recorded listing joined with the stored files, plus what waits for room."""
    snapshot = snapshot_get()
    remote = _snapshot_files(snapshot) if snapshot else []
    rows = remote_files_classify(remote=remote) if snapshot else []
    missing = StoredFile.objects.filter(remote_id="", remote_missing_at__isnull=False).order_by(
        "-remote_missing_at"
    )
    names = _document_names([stored.pk for stored in missing])
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
    rows.sort(key=lambda row: (_KIND_ORDER[row.kind], row.created_at or timezone.now()))
    counts = dict.fromkeys(_KIND_ORDER, 0)
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
        policy=settings.DOCQA_RETENTION,
        grace_seconds=settings.DOCQA_ORPHAN_GRACE,
        counts=counts,
    )


# --- long operations: one job at a time, its progress in Redis ------------------------------


@dataclass
class Job:
    """The admin's latest long operation, as the account page polls it."""

    id: str
    kind: str
    state: str = "queued"  # queued, running, done, failed
    done: int = 0
    total: int = 0
    summary: str = ""  # a stored note
    started_at: str = ""
    finished_at: str = ""

    @property
    def is_active(self) -> bool:
        return self.state in ("queued", "running")

    @property
    def summary_display(self) -> str:
        return note_display(self.summary)

    @property
    def percent(self) -> int:
        return int(100 * self.done / self.total) if self.total else 0


def job_get() -> Job | None:
    data = redis_client().hgetall(keys.HOUSEKEEPING_JOB)
    if not data:
        return None
    return Job(**{**data, "done": int(data.get("done", 0)), "total": int(data.get("total", 0))})


def job_create(*, kind: str) -> Job:
    """Start recording a new job (the admin's button was pressed); the task fills it in."""
    job = Job(id=uuid.uuid4().hex, kind=kind, started_at=timezone.now().isoformat())
    client = redis_client()
    with client.pipeline() as pipe:
        pipe.delete(keys.HOUSEKEEPING_JOB)
        pipe.hset(keys.HOUSEKEEPING_JOB, mapping={k: str(v) for k, v in asdict(job).items()})
        pipe.expire(keys.HOUSEKEEPING_JOB, 24 * 3600)
        pipe.execute()
    return job


def _job_update(job_id: str | None, **fields) -> None:
    if not job_id:
        return
    client = redis_client()
    # Only the job still on show is updated; a newer one replaced it otherwise.
    if client.hget(keys.HOUSEKEEPING_JOB, "id") != job_id:
        return
    client.hset(keys.HOUSEKEEPING_JOB, mapping={k: str(v) for k, v in fields.items()})


def job_progress(job_id: str | None) -> Progress:
    """A progress callback that records `done` of `total` for the page."""

    def record(done: int, total: int) -> None:
        _job_update(job_id, state="running", done=done, total=total)

    return record


def job_finish(job_id: str | None, *, summary: str, failed: bool = False) -> None:
    _job_update(
        job_id, state="failed" if failed else "done", summary=summary, finished_at=timezone.now().isoformat()
    )
