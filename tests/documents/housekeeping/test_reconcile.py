"""Reconciliation against the emulator: orphans, uploads in flight, missing copies, failures, locks."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from celery.exceptions import Retry
from django.core.management import call_command
from django.utils import timezone

from docqa.connections import moonshot_client
from docqa.documents import services
from docqa.documents.housekeeping.orphans import orphans_delete
from docqa.documents.housekeeping.overview import account_overview
from docqa.documents.housekeeping.reconcile import remote_files_reconcile
from docqa.documents.housekeeping.remote import stored_files_missing
from docqa.documents.housekeeping.snapshot import snapshot_forget, snapshot_get, snapshot_record
from docqa.documents.models import Status, StoredFile
from docqa.documents.tasks import remote_file_delete
from docqa.moonshot import FileObject, MoonshotError
from tests import factories
from tests.documents.housekeeping.helpers import deletes, docqa_name, remote_ids

pytestmark = pytest.mark.django_db


def test_orphans_past_the_grace_period_go_everything_else_stays(emu, linked_files, settings):
    settings.DOCQA_ORPHAN_GRACE = 0
    linked = linked_files(2)
    foreign = emu.control.fake_files(count=2, bytes_each=10, filename="someone-elses.pdf")
    emu.control.fake_files(count=3, bytes_each=10, filename=docqa_name())
    # An upload that landed but whose worker has not recorded the id yet.
    in_flight = factories.stored_file_create(
        status=Status.UPLOADING, with_file=False, size=10, extension="pdf"
    )
    landed = emu.control.fake_files(count=1, bytes_each=10, filename=in_flight.remote_filename)

    report = remote_files_reconcile()

    assert (report.linked, report.foreign, report.in_flight, report.orphans) == (2, 2, 1, 3)
    assert report.orphans_deleted == 3 and report.orphans_failed == 0
    assert remote_ids(emu) == {s.remote_id for s in linked} | set(foreign) | set(landed)
    # Run again: nothing more to do (idempotent).
    again = remote_files_reconcile()
    assert again.orphans == 0 and again.orphans_deleted == 0 and deletes(emu) == 3


def test_young_orphans_wait_for_the_grace_period(emu, settings):
    settings.DOCQA_ORPHAN_GRACE = 3600
    young = emu.control.fake_files(count=2, bytes_each=10, filename=docqa_name())
    report = remote_files_reconcile()
    assert report.orphans == 2 and report.orphans_young == 2 and report.orphans_deleted == 0
    assert remote_ids(emu) == set(young)
    # An admin may still delete them on purpose.
    outcome = orphans_delete(remote_ids=young)
    assert outcome.deleted == 2 and remote_ids(emu) == set()


def test_orphan_delete_refuses_what_is_no_longer_an_orphan(emu, linked_files):
    (stored,) = linked_files(1)
    foreign = emu.control.fake_files(count=1, bytes_each=10, filename="other-app.txt")
    outcome = orphans_delete(remote_ids=[stored.remote_id, *foreign, "cq-does-not-exist"])
    assert (outcome.deleted, outcome.refused, outcome.already_gone) == (0, 2, 1)
    assert remote_ids(emu) == {stored.remote_id, *foreign}


def test_missing_copy_is_marked_and_the_text_kept(emu, linked_files):
    kept, gone = linked_files(2)
    moonshot_client().files_delete(gone.remote_id)  # deleted by hand in Moonshot's console
    report = remote_files_reconcile()
    assert report.missing_marked == 1
    gone.refresh_from_db()
    kept.refresh_from_db()
    assert gone.remote_id == "" and gone.remote_missing_at is not None and gone.status == Status.READY
    assert gone.content_text == "kept text"
    assert kept.remote_id and kept.remote_missing_at is None
    overview = account_overview()
    assert overview.counts["missing"] == 1 and overview.counts["linked"] == 1


def test_a_copy_recorded_after_the_listing_is_not_taken_for_missing(emu, linked_files):
    (fresh,) = linked_files(1)
    StoredFile.objects.filter(pk=fresh.pk).update(
        remote_id="cqrecordedlater", remote_uploaded_at=timezone.now()
    )
    before = timezone.now() - timedelta(seconds=5)
    assert stored_files_missing(remote_ids=set(), listed_at=before) == []


def test_failed_delete_is_retried_next_run_and_404_counts_as_done(emu, settings):
    settings.DOCQA_ORPHAN_GRACE = 0
    first, second = emu.control.fake_files(count=2, bytes_each=10, filename=docqa_name())
    emu.control.add_fault("DELETE", f"/v1/files/{first}", status=500, error_type="server_error", count=None)
    emu.control.add_fault(
        "DELETE", f"/v1/files/{second}", status=404, error_type="resource_not_found_error", count=1
    )

    report = remote_files_reconcile()
    assert report.orphans_failed == 1 and report.orphans_deleted == 1  # the 404 one
    assert first in remote_ids(emu)

    emu.control.clear_faults()  # Moonshot recovers
    report = remote_files_reconcile()
    # (The emulator's 404 left the record in place, so this run deletes it for real.)
    assert report.orphans_failed == 0 and first not in remote_ids(emu)
    assert remote_ids(emu) == set()


def test_listing_failure_changes_nothing(emu, linked_files):
    (stored,) = linked_files(1)
    emu.control.add_fault("GET", "/v1/files", status=401, error_type="invalid_authentication_error", count=1)
    with pytest.raises(MoonshotError):
        remote_files_reconcile()
    stored.refresh_from_db()
    assert stored.remote_id and stored.remote_missing_at is None


@pytest.mark.django_db(transaction=True)
def test_two_runs_at_once_do_the_work_once(emu, settings):
    settings.DOCQA_ORPHAN_GRACE = 0
    orphans = emu.control.fake_files(count=40, bytes_each=10, filename=docqa_name())
    # The first run stops inside its lease (at its first progress report) until the second
    # has come and gone, so the two surely overlap, whatever the machine's speed.
    inside, go = threading.Event(), threading.Event()
    reports = []

    def hold(done: int, total: int) -> None:
        if not inside.is_set():
            inside.set()
            assert go.wait(30)

    first = threading.Thread(target=lambda: reports.append(remote_files_reconcile(progress=hold)))
    first.start()
    assert inside.wait(30)
    reports.append(remote_files_reconcile())
    go.set()
    first.join(30)
    assert [r.skipped for r in reports] == [True, False]  # the second came back at once
    assert sum(r.orphans_deleted for r in reports) == len(orphans)
    assert deletes(emu) == len(orphans)  # no file was deleted twice
    assert remote_ids(emu) == set()


def test_deleting_a_document_never_waits_for_moonshot(
    emu, user, upload, settings, django_capture_on_commit_callbacks
):
    """A failing remote delete leaves the local delete done; the next sync removes the orphan."""
    settings.DOCQA_ORPHAN_GRACE = 0
    document = upload(user)
    stored = document.stored_file
    remote_id = emu.control.fake_files(count=1, bytes_each=10, filename=stored.remote_filename)[0]
    StoredFile.objects.filter(pk=stored.pk).update(remote_id=remote_id, status=Status.READY)
    emu.control.add_fault("DELETE", "/v1/files/*", status=500, error_type="server_error", count=None)

    with django_capture_on_commit_callbacks(execute=False):
        services.document_delete(document=document)
    assert not StoredFile.objects.filter(pk=stored.pk).exists()
    # The task's own attempt fails with a 5xx and asks to be retried later.
    with pytest.raises(Retry):
        remote_file_delete.apply(args=[remote_id], throw=True)
    assert remote_id in remote_ids(emu)
    emu.control.clear_faults()
    report = remote_files_reconcile()
    assert report.orphans_deleted == 1 and remote_ids(emu) == set()


def test_docqa_sync_command_dry_run_then_real(emu, linked_files, settings, capsys):
    settings.DOCQA_ORPHAN_GRACE = 0
    linked_files(1)
    emu.control.fake_files(count=2, bytes_each=10, filename=docqa_name())
    call_command("docqa_sync", "--dry-run")
    out = capsys.readouterr().out
    assert "Dry run" in out and "would be deleted" in out and len(remote_ids(emu)) == 3
    call_command("docqa_sync")
    out = capsys.readouterr().out
    assert "deleted" in out and len(remote_ids(emu)) == 1


def test_a_sync_listed_before_a_delete_does_not_bring_the_file_back():
    listed_at = timezone.now() - timedelta(seconds=5)
    gone = FileObject.from_api(
        {
            "id": "cqgone",
            "filename": "docqa-x.pdf",
            "bytes": 1,
            "created_at": 1,
            "object": "file",
            "purpose": "file-extract",
            "status": "ok",
        }
    )
    kept = FileObject.from_api({**gone.raw, "id": "cqkept"})
    snapshot_forget(["cqgone"])  # deleted after the listing began...
    snapshot_record(remote=[gone, kept], balance=None, taken_at=listed_at)  # ...recorded after
    assert [item["id"] for item in snapshot_get()["files"]] == ["cqkept"]


def test_an_orphan_delete_answered_deleted_false_is_reported_failed_not_deleted(emu, settings):
    settings.DOCQA_ORPHAN_GRACE = 0
    [orphan] = emu.control.fake_files(count=1, bytes_each=10, filename=docqa_name())
    emu.control.add_fault(method="DELETE", path="/v1/files/*", kind="not_deleted", count=None)
    report = remote_files_reconcile()
    assert report.orphans_deleted == 0 and report.orphans_failed == 1
    assert remote_ids(emu) == {orphan}
    emu.control.clear_faults()
    assert remote_files_reconcile().orphans_deleted == 1 and remote_ids(emu) == set()
