"""Ingest against the strict emulator (issue 12): a full account told from its listing, a
token estimate the endpoint refuses, other documented file statuses, polling that backs off."""

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from docqa.documents import services
from docqa.documents.models import Status, StoredFile
from docqa.documents.selectors import uploads_waiting
from docqa.notes import note_display
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db(transaction=True)


def _upload(owner, data, name="notes.txt"):
    uploaded = SimpleUploadedFile(name, data)
    return services.document_upload(
        owner=owner, uploaded_file=uploaded, sha256=hashlib.sha256(data).hexdigest()
    ).document


def _settled(stored_id):
    stored = StoredFile.objects.get(pk=stored_id)
    return stored if stored.status in (Status.READY, Status.FAILED) else None


def test_an_account_filled_by_another_app_parks_the_upload_instead_of_failing_it(celery_worker, user, emu):
    # Another app sharing the key filled the space: docqa's own count sees nothing, Moonshot
    # refuses with words docqa does not know; the listing says the account is full.
    emu.control.fake_files(count=10, bytes_each=1_000_000_000, filename="someone-else.pdf")
    document = _upload(user, b"shared key, full account")
    waiting = wait_for(lambda: uploads_waiting().filter(pk=document.stored_file_id).first(), message="parked")
    assert waiting.status == Status.QUEUED and waiting.is_waiting_for_room
    assert "Waiting for room" in note_display(waiting.last_error)


def test_a_refused_upload_with_room_in_the_account_is_not_mistaken_for_a_full_one(celery_worker, user, emu):
    emu.control.add_fault(
        "POST",
        "/v1/files",
        status=400,
        error_type="invalid_request_error",
        message="unsupported file",
        count=None,
    )
    document = _upload(user, b"refused for another reason")
    stored = wait_for(lambda: _settled(document.stored_file_id), message="failed")
    assert stored.status == Status.FAILED and not stored.is_waiting_for_room
    assert "unsupported file" in note_display(stored.last_error)


@pytest.mark.parametrize(("model", "counted"), [("kimi-k2-thinking", True), ("kimi-unlisted-preview", False)])
def test_ingest_never_fails_because_of_the_token_estimate(celery_worker, user, emu, settings, model, counted):
    settings.MOONSHOT_MODEL = model
    document = _upload(user, f"estimated with {model}".encode())
    stored = wait_for(lambda: _settled(document.stored_file_id), message="settled")
    assert stored.status == Status.READY, note_display(stored.last_error)
    assert (stored.token_count is not None) is counted  # None: the chat estimates it locally


def test_ready_counts_as_done_and_unknown_statuses_as_in_progress(celery_worker, user, emu):
    emu.control.configure(extract_delay=0.5)
    emu.control.add_fault(
        "POST", "/v1/files", kind="file_status", pending_status="parsing", done_status="ready"
    )
    document = _upload(user, b"a file that ends in ready")
    stored = wait_for(lambda: _settled(document.stored_file_id), message="settled")
    assert stored.status == Status.READY and "a file that ends in ready" in stored.content_text


def test_a_row_held_up_by_rate_limiting_says_why_in_both_languages(celery_worker, client, user, emu):
    # Moonshot answers 429 to the upload: the client waits (at least 3 s) and tries again. While
    # it waits, the row at Queued/Uploading says why; once through, the reason goes.
    emu.control.add_fault("POST", "/v1/files", status=429, error_type="rate_limit_reached_error", count=1)
    document = _upload(user, b"held up by a rate limit")
    client.force_login(user)

    def waiting_row():
        stored = StoredFile.objects.get(pk=document.stored_file_id)
        if stored.status not in (Status.QUEUED, Status.UPLOADING) or not stored.last_error:
            return None
        row = client.get(reverse("documents:row", args=[document.pk]), HTTP_HX_REQUEST="true")
        with translation.override("zh-hans"):
            chinese = note_display(stored.last_error)
        return row.content.decode(), chinese

    row, chinese = wait_for(waiting_row, timeout=10, message="a reason on the waiting row")
    assert "Moonshot is busy; retrying in a moment." in row
    assert chinese == "Moonshot 繁忙，稍后自动重试。"
    stored = wait_for(lambda: _settled(document.stored_file_id), message="settled")
    assert stored.status == Status.READY and stored.last_error == ""
