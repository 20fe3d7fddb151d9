"""The ingest pipeline end to end: a real Celery worker thread, real Redis, the emulator over HTTP."""

import hashlib
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from docqa.connections import moonshot_client
from docqa.documents import services
from docqa.documents.ingest import content_parse
from docqa.documents.models import Status, StoredFile
from docqa.documents.selectors import uploads_waiting
from docqa.documents.tasks import IngestOutcome, document_ingest, documents_sweep_stale
from docqa.notes import note_display
from tests.conftest import wait_for
from tests.samples import docx_bytes, pdf_bytes

pytestmark = pytest.mark.django_db(transaction=True)


def test_content_parse_reads_moonshot_json_and_passes_other_text_through():
    raw = json.dumps(
        {"content": "正文 text", "file_type": "application/pdf", "filename": "x.pdf"}, ensure_ascii=False
    )
    assert content_parse(raw) == ("正文 text", "application/pdf")
    assert content_parse("plain text, not JSON") == ("plain text, not JSON", "")
    assert content_parse('["a list"]') == ('["a list"]', "")


def _upload(owner, name, data):
    uploaded = SimpleUploadedFile(name, data)
    return services.document_upload(
        owner=owner, uploaded_file=uploaded, sha256=hashlib.sha256(data).hexdigest()
    ).document


def _status(stored_id):
    return StoredFile.objects.get(pk=stored_id).status


def _settled(stored_id):
    stored = StoredFile.objects.get(pk=stored_id)
    return stored if stored.status in (Status.READY, Status.FAILED) else None


def test_upload_reaches_ready_with_text_tokens_and_remote_id(celery_worker, user):
    document = _upload(user, "report.pdf", pdf_bytes("Quarterly revenue grew by 12 percent."))
    stored = wait_for(lambda: _settled(document.stored_file_id), message="ready")
    assert stored.status == Status.READY, note_display(stored.last_error)
    assert "Quarterly revenue grew by 12 percent." in stored.content_text
    assert json.loads(stored.content_raw)["content"] == stored.content_text  # raw kept exactly
    assert stored.token_count and stored.token_count > 5
    assert (
        stored.remote_id
        and moonshot_client().files_retrieve(stored.remote_id).filename == stored.remote_filename
    )


def test_identical_bytes_from_two_users_are_uploaded_once_when_shared(
    celery_worker, user, other_user, emu, settings
):
    settings.DOCQA_SHARE_FILES_ACROSS_USERS = True  # the opt-in; by default each has a copy
    data = docx_bytes("Shared memo\nLine two")
    mine = _upload(user, "memo.docx", data)
    theirs = _upload(other_user, "their-copy.docx", data)
    wait_for(lambda: _settled(mine.stored_file_id), message="ready")
    assert mine.stored_file_id == theirs.stored_file_id
    assert emu.control.stats()["requests"].get("POST /v1/files") == 1
    assert len(moonshot_client().files_list()) == 1


def test_rate_limits_and_server_errors_are_waited_out(celery_worker, user, emu):
    emu.control.add_fault(
        method="POST", path="/v1/files", status=429, error_type="rate_limit_reached_error", count=1
    )
    emu.control.add_fault(method="GET", path="/v1/files/*", status=500, error_type="server_error", count=1)
    document = _upload(user, "notes.txt", b"resilient text")
    stored = wait_for(lambda: _settled(document.stored_file_id), timeout=30, message="ready")
    assert stored.status == Status.READY
    assert stored.content_text == "resilient text"


def test_extraction_error_fails_with_moonshots_reason_and_retry_works(celery_worker, user, emu):
    emu.control.add_fault(
        method="POST", path="/v1/files", kind="extract_error", message="file is encrypted", count=1
    )
    document = _upload(user, "locked.pdf", pdf_bytes("secret"))
    stored = wait_for(lambda: _settled(document.stored_file_id), message="failed")
    assert stored.status == Status.FAILED
    assert "file is encrypted" in note_display(stored.last_error)
    # The failed remote copy only used quota: it is deleted, and Retry uploads afresh.
    assert not stored.remote_id
    wait_for(lambda: not moonshot_client().files_list(), message="failed remote copy deleted")
    assert services.document_retry(document=document)
    stored = wait_for(lambda: _settled(document.stored_file_id), message="settled again")
    assert stored.status == Status.READY
    assert "secret" in stored.content_text


def test_rejected_key_fails_only_after_waiting_and_says_why(celery_worker, user, settings):
    settings.MOONSHOT_API_KEY = "wrong-key"
    document = _upload(user, "a.txt", b"text")
    stored = wait_for(
        lambda: StoredFile.objects.filter(pk=document.stored_file_id).exclude(last_error="").first(),
        message="a reason",
    )
    assert "API key" in note_display(stored.last_error)
    assert stored.status in (Status.QUEUED, Status.UPLOADING)  # waiting to retry, not failed


def test_rerun_after_a_crash_adopts_the_landed_upload(
    transactional_db, emu, user, django_capture_on_commit_callbacks
):
    """A worker killed after its upload landed: the re-run finds it by name, no duplicate."""
    document = _upload(user, "crash.txt", b"crash test")
    stored = document.stored_file
    # What the killed worker had done: marked the start and uploaded under the token name.
    path = stored.file.path
    remote = moonshot_client().files_create(path, filename=stored.remote_filename)
    StoredFile.objects.filter(pk=stored.pk).update(
        upload_started_at=stored.created_at, status=Status.UPLOADING
    )
    document_ingest.apply(args=[stored.pk])  # the re-delivered task, run in this thread
    stored.refresh_from_db()
    assert stored.remote_id == remote.id
    assert [f.id for f in moonshot_client().files_list()] == [remote.id]
    assert emu.control.stats()["requests"]["POST /v1/files"] == 1


def test_running_the_task_twice_is_harmless(transactional_db, emu, user):
    document = _upload(user, "twice.txt", b"twice")
    assert document_ingest.apply(args=[document.stored_file_id]).get() == IngestOutcome.READY
    assert document_ingest.apply(args=[document.stored_file_id]).get() == IngestOutcome.READY
    assert _status(document.stored_file_id) == Status.READY
    assert emu.control.stats()["requests"]["POST /v1/files"] == 1


def test_sweep_requeues_stale_documents(celery_worker, user, settings):
    document = _upload(user, "stale.txt", b"stale")
    wait_for(lambda: _settled(document.stored_file_id), message="ready")
    StoredFile.objects.filter(pk=document.stored_file_id).update(
        status=Status.EXTRACTING, status_changed_at="2000-01-01T00:00:00Z"
    )
    assert documents_sweep_stale() == 1
    assert wait_for(lambda: _settled(document.stored_file_id), message="ready again").status == Status.READY


def test_full_account_waits_with_a_reason(celery_worker, user, settings):
    settings.DOCQA_ACCOUNT_MAX_FILES = 1
    first = _upload(user, "one.txt", b"one")
    wait_for(lambda: _settled(first.stored_file_id), message="first ready")
    second = _upload(user, "two.txt", b"two")
    stored = wait_for(lambda: uploads_waiting().filter(pk=second.stored_file_id).first(), message="waiting")
    assert stored.status == Status.QUEUED and "account is full" in note_display(stored.last_error)
    settings.DOCQA_ACCOUNT_MAX_FILES = 10
    documents_sweep_stale()
    resumed = wait_for(lambda: _settled(second.stored_file_id), message="resumed")
    assert resumed.status == Status.READY and not resumed.is_waiting_for_room


def test_deleting_the_last_document_deletes_the_remote_copy(celery_worker, user, other_user, settings):
    settings.DOCQA_SHARE_FILES_ACROSS_USERS = True
    mine = _upload(user, "d.txt", b"delete me")
    theirs = _upload(other_user, "d2.txt", b"delete me")
    stored = wait_for(lambda: _settled(mine.stored_file_id), message="ready")
    services.document_delete(document=mine)
    assert [f.id for f in moonshot_client().files_list()] == [stored.remote_id]
    services.document_delete(document=theirs)
    wait_for(lambda: not moonshot_client().files_list(), message="remote deleted")
