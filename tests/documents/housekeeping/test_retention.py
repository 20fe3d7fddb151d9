"""Retention policies and the full account: nothing a user needs is lost, waiting uploads resume."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.utils import timezone

from docqa.connections import moonshot_client
from docqa.documents import services
from docqa.documents.choices import RetentionPolicy
from docqa.documents.housekeeping.overview import account_overview
from docqa.documents.housekeeping.reconcile import remote_files_reconcile
from docqa.documents.housekeeping.retention import retention_apply, retention_candidates
from docqa.documents.models import Status, StoredFile
from docqa.documents.selectors import uploads_waiting
from tests import factories
from tests.conftest import wait_for
from tests.documents.housekeeping.helpers import docqa_name, remote_ids

GB = 10**9  # Moonshot states its limits in decimal units


@pytest.mark.django_db
def test_keep_deletes_nothing(emu, linked_files, settings):
    settings.DOCQA_RETENTION = RetentionPolicy.KEEP
    linked_files(3)
    report = retention_apply()
    assert report.released == 0 and len(remote_ids(emu)) == 3


@pytest.mark.django_db
def test_evict_frees_least_recently_used_copies_down_to_the_low_water_mark(emu, linked_files, settings):
    settings.DOCQA_ACCOUNT_MAX_FILES = 10
    settings.DOCQA_EVICT_HIGH_WATER, settings.DOCQA_EVICT_LOW_WATER = 90, 70
    files = linked_files(9)  # 90 %: at the high-water mark
    now = timezone.now()
    for age, stored in enumerate(reversed(files)):  # files[0] is the least recently used
        StoredFile.objects.filter(pk=stored.pk).update(last_used_at=now - timedelta(hours=age))
    # Not ready, or no text: never evicted, whatever their age.
    (pending,) = linked_files(1, status=Status.EXTRACTING, last_used_at=now - timedelta(days=9))

    call_command("docqa_cleanup", "--policy", "evict", "--dry-run")
    assert len(remote_ids(emu)) == 10

    report = retention_apply(policy=RetentionPolicy.EVICT)
    assert report.released == 3  # 10 files -> 7 (70 %)
    left = remote_ids(emu)
    assert {s.remote_id for s in files[:3]}.isdisjoint(left)
    assert {s.remote_id for s in files[3:]} | {pending.remote_id} == left
    for stored in StoredFile.objects.filter(pk__in=[s.pk for s in files[:3]]):
        assert stored.remote_id == "" and stored.status == Status.READY and stored.content_text == "kept text"
    # Under the high-water mark now: another run does nothing.
    assert retention_apply(policy=RetentionPolicy.EVICT).released == 0


@pytest.mark.django_db
def test_evict_releases_the_least_recently_used_not_the_oldest_upload(emu, linked_files, user, settings):
    """Opening (or asking about) an old upload keeps its copy; a newer, unused one goes first."""
    settings.DOCQA_ACCOUNT_MAX_FILES = 4
    settings.DOCQA_EVICT_HIGH_WATER, settings.DOCQA_EVICT_LOW_WATER = 75, 50
    now = timezone.now()
    # Uploaded three, two and one day ago, and not used since.
    oldest, newer, newest = linked_files(3, each=lambda i: {"last_used_at": now - timedelta(days=3 - i)})
    documents = [
        factories.document_create(owner=user, stored_file=stored, last_used_at=stored.last_used_at)
        for stored in (oldest, newer, newest)
    ]
    assert retention_candidates().first().pk == oldest.pk  # as uploaded, the oldest goes first

    services.documents_mark_used(document_ids=[documents[0].pk])
    assert StoredFile.objects.get(pk=oldest.pk).last_used_at > now - timedelta(days=1)
    assert StoredFile.objects.get(pk=newer.pk).last_used_at == newer.last_used_at  # untouched

    report = retention_apply(policy=RetentionPolicy.EVICT)
    assert report.released == 1  # 3 of 4 files -> 2 (50 %)
    assert remote_ids(emu) == {oldest.remote_id, newest.remote_id}
    assert StoredFile.objects.get(pk=newer.pk).remote_id == ""


@pytest.mark.django_db
def test_evict_looks_at_bytes_too(emu, linked_files, settings):
    settings.DOCQA_ACCOUNT_MAX_BYTES = 1000
    linked_files(2, bytes_each=460)  # 92 % of the bytes, 2 files
    assert retention_apply(policy=RetentionPolicy.EVICT).released == 1


@pytest.mark.django_db(transaction=True)
def test_delete_after_extract_drops_the_copy_once_the_text_is_stored(
    emu, celery_worker, user, upload, settings
):
    settings.DOCQA_RETENTION = RetentionPolicy.DELETE_AFTER_EXTRACT
    document = upload(user, data=b"delete after extract: the text stays")
    stored = wait_for(
        lambda: StoredFile.objects.filter(
            pk=document.stored_file_id, status=Status.READY, remote_id=""
        ).first(),
        message="ready with the remote copy released",
    )
    assert "the text stays" in stored.content_text
    wait_for(lambda: remote_ids(emu) == set(), message="the remote copy deleted")


@pytest.mark.django_db(transaction=True)
def test_reextract_of_a_missing_copy_uploads_the_local_file_again(emu, celery_worker, user, upload):
    document = upload(user, data=b"re-extract me from the local copy")
    stored = wait_for(
        lambda: StoredFile.objects.filter(pk=document.stored_file_id, status=Status.READY).first(),
        message="ready",
    )
    moonshot_client().files_delete(stored.remote_id)
    remote_files_reconcile()
    stored.refresh_from_db()
    assert stored.remote_id == "" and stored.remote_missing_at and "local copy" in stored.content_text

    assert services.stored_file_reextract(stored_file_id=stored.pk)
    again = wait_for(
        lambda: StoredFile.objects.filter(pk=stored.pk, status=Status.READY).exclude(remote_id="").first(),
        message="re-uploaded and extracted",
    )
    assert again.remote_missing_at is None and "local copy" in again.content_text
    assert remote_ids(emu) == {again.remote_id}


@pytest.mark.django_db(transaction=True)
def test_full_account_of_1000_files_queues_uploads_and_evict_resumes_them(
    emu, celery_worker, linked_files, user, upload, settings, record_property
):
    """1,000 files near 10 GB: an upload waits with the reason, eviction makes room, it resumes."""
    settings.DOCQA_RETENTION = RetentionPolicy.KEEP
    started = time.monotonic()
    # 1,000 ready files whose remote copies fill the account to 9.9 GB.
    ids = emu.control.fake_files(count=1000, bytes_each=int(9.9 * GB / 1000), filename="filler.pdf")
    now = timezone.now()
    factories.linked_stored_files(
        emu,
        remote_ids=ids,
        bytes_each=int(9.9 * GB / 1000),
        upload_started_at=None,
        content_raw="{}",
        content_text="t",
        each=lambda i: {"last_used_at": now - timedelta(seconds=i)},
    )
    fill_seconds = time.monotonic() - started
    assert emu.control.stats()["files"] == 1000

    t0 = time.monotonic()
    report = remote_files_reconcile()
    reconcile_seconds = time.monotonic() - t0
    assert report.linked == 1000 and report.orphans == 0 and report.missing_marked == 0

    document = upload(user, data=b"waiting for room in a full account")
    waiting = wait_for(lambda: uploads_waiting().filter(pk=document.stored_file_id).first(), message="parked")
    assert waiting.status == Status.QUEUED and waiting.is_waiting_for_room
    assert "Waiting for room" in waiting.last_error
    overview = account_overview()
    assert overview.is_full and overview.waiting == 1 and overview.files == 1000

    t0 = time.monotonic()
    report = retention_apply(policy=RetentionPolicy.EVICT)
    evict_seconds = time.monotonic() - t0
    assert report.released == 251 and report.resumed == 1  # down to 75 %, with room for the waiting one
    stored = wait_for(
        lambda: StoredFile.objects.filter(pk=document.stored_file_id, status=Status.READY).first(),
        message="the waiting upload resumed and finished",
    )
    assert stored.remote_id in remote_ids(emu)
    assert emu.control.stats()["files"] == 750
    # The least recently used went; the text of every evicted file is still there.
    assert (
        StoredFile.objects.filter(remote_id="", status=Status.READY).exclude(content_text="").count() == 251
    )
    record_property("fill_seconds", round(fill_seconds, 2))
    record_property("reconcile_1000_seconds", round(reconcile_seconds, 2))
    record_property("evict_251_seconds", round(evict_seconds, 2))
    print(
        f"\nfill {fill_seconds:.2f}s, reconcile of 1,000 {reconcile_seconds:.2f}s, evict 251 {evict_seconds:.2f}s"
    )


@pytest.mark.django_db(transaction=True)
def test_orphans_filling_the_account_are_cleaned_and_the_queue_resumes(
    emu, celery_worker, user, upload, settings
):
    """Moonshot itself refuses the upload (the database knew of no files); reconcile frees room."""
    settings.DOCQA_ORPHAN_GRACE = 0
    emu.control.fake_files(count=1000, bytes_each=1000, filename=docqa_name())
    document = upload(user, data=b"refused by moonshot, then resumed")
    wait_for(lambda: uploads_waiting().filter(pk=document.stored_file_id).exists(), message="parked")
    report = remote_files_reconcile()
    assert report.orphans_deleted == 1000
    stored = wait_for(
        lambda: StoredFile.objects.filter(pk=document.stored_file_id, status=Status.READY).first(),
        message="resumed",
    )
    assert remote_ids(emu) == {stored.remote_id}
