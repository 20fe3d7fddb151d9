import hashlib
import tracemalloc

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from docqa.documents import services, transitions
from docqa.documents.models import Document, Status, StoredFile
from tests import factories
from tests.conftest import wait_for

pytestmark = pytest.mark.django_db


def _document_for(owner, data=b"some text", name="a.txt"):
    uploaded = SimpleUploadedFile(name, data)
    return services.document_upload(
        owner=owner, uploaded_file=uploaded, sha256=hashlib.sha256(data).hexdigest()
    ).document


def _post_upload(client, *files, xhr=True):
    headers = {"HTTP_X_REQUESTED_WITH": "XMLHttpRequest"} if xhr else {}
    return client.post(reverse("documents:upload"), {"files": list(files)}, **headers)


def test_pages_need_login(client):
    for url in [reverse("documents:list"), reverse("documents:upload")]:
        response = client.get(url)
        assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_list_shows_upload_control_and_offline_banner(auth_client):
    response = auth_client.get(reverse("documents:list"))
    html = response.content.decode()
    assert 'type="file" name="files" multiple' in html
    assert "Upload documents" in html
    assert 'data-role="offline-banner"' in html


def test_list_in_chinese(auth_client):
    response = auth_client.get(reverse("documents:list"), HTTP_ACCEPT_LANGUAGE="zh-hans")
    assert "上传" in response.content.decode()


def test_upload_creates_document_and_row(auth_client, user, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        response = _post_upload(auth_client, SimpleUploadedFile("notes.md", b"# Title\nbody"))
    assert response.status_code == 200
    document = Document.objects.get(owner=user)
    html = response.content.decode()
    assert f'id="document-{document.pk}"' in html and "notes.md" in html and "Queued" in html
    assert document.stored_file.sha256 == hashlib.sha256(b"# Title\nbody").hexdigest()
    assert len(callbacks) == 1


def test_upload_without_js_redirects_with_messages(auth_client, user):
    response = _post_upload(
        auth_client, SimpleUploadedFile("a.txt", b"x"), SimpleUploadedFile("b.exe", b"y"), xhr=False
    )
    assert response.status_code == 302
    page = auth_client.get(response["Location"]).content.decode()
    assert "“a.txt” uploaded." in page
    assert ".exe files are not supported" in page
    assert Document.objects.filter(owner=user).count() == 1


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("tool.exe", b"MZ", ".exe files are not supported"),
        ("empty.pdf", b"", "is empty"),
        ("noext", b"abc", "no file extension"),
    ],
)
def test_bad_uploads_get_a_clear_error_and_store_nothing(auth_client, name, data, message):
    response = _post_upload(auth_client, SimpleUploadedFile(name, data))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Document.objects.exists() and not StoredFile.objects.exists()


def test_upload_with_nothing_chosen(auth_client):
    response = _post_upload(auth_client)
    assert response.status_code == 400
    assert "Choose at least one file" in response.content.decode()


def test_file_over_limit_is_stopped_while_streaming(auth_client, settings):
    settings.DOCQA_MAX_UPLOAD_BYTES = 1024
    response = _post_upload(auth_client, SimpleUploadedFile("big.txt", b"x" * 5000))
    assert response.status_code == 400
    assert "larger than the" in response.content.decode()
    assert not StoredFile.objects.exists()


def test_html_in_file_names_is_escaped(auth_client, user):
    _post_upload(auth_client, SimpleUploadedFile('<img src=x onerror="alert(1)">.txt', b"payload"))
    html = auth_client.get(reverse("documents:list")).content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;.txt" in html


def test_uploading_same_bytes_twice_reuses_document(auth_client, user):
    _post_upload(auth_client, SimpleUploadedFile("one.txt", b"same bytes"))
    response = _post_upload(auth_client, SimpleUploadedFile("two.txt", b"same bytes"))
    assert "You already uploaded this file as “one.txt”" in response.content.decode()
    assert Document.objects.filter(owner=user).count() == 1


def test_detail_shows_text_escaped_and_paginated(auth_client, user):
    document = _document_for(user)
    StoredFile.objects.filter(pk=document.stored_file_id).update(
        status="ready", content_text="<b>bold?</b> " + "y" * 45_000, token_count=1234, remote_id="cqabc"
    )
    html = auth_client.get(document.get_absolute_url()).content.decode()
    assert "&lt;b&gt;bold?&lt;/b&gt;" in html and "<b>bold?</b>" not in html
    assert "Page 1 of 3" in html and "1,234" in html
    assert "cqabc" not in html  # the remote file id is for staff only
    user.is_staff = True
    user.save()
    assert "cqabc" in auth_client.get(document.get_absolute_url()).content.decode()
    assert "Page 3 of 3" in auth_client.get(document.get_absolute_url() + "?page=3").content.decode()


def test_detail_status_fragment_reloads_the_page_once_text_arrives(auth_client, user):
    document = _document_for(user)
    url = document.get_absolute_url() + "?fragment=status&was=extracting"
    response = auth_client.get(url, HTTP_HX_REQUEST="true")
    assert "HX-Refresh" not in response and "Queued" in response.content.decode()
    StoredFile.objects.filter(pk=document.stored_file_id).update(status="ready")
    assert auth_client.get(url, HTTP_HX_REQUEST="true")["HX-Refresh"] == "true"
    ready = document.get_absolute_url() + "?fragment=status&was=ready"
    assert "HX-Refresh" not in auth_client.get(ready, HTTP_HX_REQUEST="true")


def test_opening_a_document_marks_it_used_but_polling_its_status_does_not(auth_client, user):
    document = _document_for(user)
    old = "2000-01-01T00:00:00Z"
    Document.objects.filter(pk=document.pk).update(last_used_at=old)
    StoredFile.objects.filter(pk=document.stored_file_id).update(last_used_at=old)
    auth_client.get(document.get_absolute_url() + "?fragment=status", HTTP_HX_REQUEST="true")
    assert Document.objects.get(pk=document.pk).last_used_at.year == 2000
    auth_client.get(document.get_absolute_url())
    assert Document.objects.get(pk=document.pk).last_used_at.year > 2000
    assert StoredFile.objects.get(pk=document.stored_file_id).last_used_at.year > 2000


def test_long_names_and_control_characters_are_cleaned_on_upload(auth_client, user):
    _post_upload(auth_client, SimpleUploadedFile("x" * 300 + "\x07.txt", b"long"))
    document = Document.objects.get(owner=user)
    assert (
        len(document.filename) <= 200
        and document.filename.endswith(".txt")
        and "\x07" not in document.filename
    )


def test_retry_moves_only_failed_documents(auth_client, user, django_capture_on_commit_callbacks):
    document = _document_for(user)
    transitions.stored_file_fail(stored_file_id=document.stored_file_id, message="boom")
    with django_capture_on_commit_callbacks() as callbacks:
        response = auth_client.post(reverse("documents:retry", args=[document.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200 and "Queued" in response.content.decode()
    assert len(callbacks) == 1
    document.stored_file.refresh_from_db()
    assert document.stored_file.status == "queued"


def test_delete_asks_then_deletes(auth_client, user):
    document = _document_for(user)
    assert (
        "cannot be undone"
        in auth_client.get(reverse("documents:delete", args=[document.pk])).content.decode()
    )
    response = auth_client.post(reverse("documents:delete", args=[document.pk]))
    assert response.status_code == 302
    assert not Document.objects.exists()


@pytest.mark.parametrize(
    ("route", "method"),
    [
        ("documents:detail", "get"),
        ("documents:row", "get"),
        ("documents:retry", "post"),
        ("documents:delete", "get"),
        ("documents:delete", "post"),
    ],
)
def test_another_users_document_is_404_on_every_route(client, user, other_user, route, method):
    document = _document_for(user)
    client.force_login(other_user)
    response = getattr(client, method)(reverse(route, args=[document.pk]))
    assert response.status_code == 404
    assert Document.objects.filter(pk=document.pk).exists()


def test_post_without_csrf_token_is_refused(user):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    response = client.post(reverse("documents:upload"), {"files": [SimpleUploadedFile("a.txt", b"x")]})
    assert response.status_code == 403
    assert not StoredFile.objects.exists()


def test_signup_login_logout(client, django_user_model):
    response = client.post(
        reverse("signup"),
        {"username": "newbie", "password1": "a-Long-passphrase-42", "password2": "a-Long-passphrase-42"},
    )
    assert response.status_code == 302
    assert django_user_model.objects.filter(username="newbie").exists()
    assert client.get(reverse("documents:list")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("documents:list")).status_code == 302


def test_language_can_be_switched(auth_client):
    auth_client.post(reverse("set_language"), {"language": "zh-hans", "next": "/documents/"})
    assert "文档" in auth_client.get(reverse("documents:list")).content.decode()


def test_error_pages_speak_plainly(auth_client, user):
    from django.test import Client

    assert "not yours to see" in auth_client.get("/documents/999999/").content.decode()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    refused = client.post(reverse("documents:upload"))
    assert refused.status_code == 403 and "Reload the page and try again" in refused.content.decode()


def _peak_bytes(fetch) -> int:
    tracemalloc.start()
    try:
        response = fetch()
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 200
    return peak


def test_pages_never_load_texts_they_do_not_show(auth_client, user):
    """3 documents of 5 MB text (and 5 MB raw) each: no page view holds more than a page of it."""
    documents = [
        factories.document_create(owner=user, text=f"{n}" + "x" * 5_000_000, content_raw="r" * 5_000_000)
        for n in range(3)
    ]
    transient = factories.document_create(owner=user, status=Status.EXTRACTING)
    StoredFile.objects.filter(pk=transient.stored_file_id).update(
        content_text="t" * 5_000_000, content_raw="t" * 5_000_000
    )
    pages = [
        reverse("documents:list"),
        reverse("documents:row", args=[documents[0].pk]),
        reverse("documents:row", args=[transient.pk]),
        documents[1].get_absolute_url(),
        documents[1].get_absolute_url() + "?page=200",
        reverse("chat:new") + f"?document={documents[2].pk}",
    ]
    for url in pages:
        peak = _peak_bytes(lambda url=url: auth_client.get(url))
        assert peak < 2_000_000, f"{url} held {peak:,} bytes"
    html = auth_client.get(documents[1].get_absolute_url() + "?page=2").content.decode()
    assert "Page 2 of 251" in html and "x" * 1000 in html


def test_an_extension_of_250_characters_is_refused_not_a_server_error(auth_client):
    response = _post_upload(auth_client, SimpleUploadedFile("a." + "x" * 250, b"data"))
    html = response.content.decode()
    assert response.status_code == 400 and ("not supported" in html or "format is unknown" in html)


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/x", "/\\evil.example"])
def test_retry_never_redirects_off_site(auth_client, user, target):
    document = _document_for(user)
    transitions.stored_file_fail(stored_file_id=document.stored_file_id, message="x")
    response = auth_client.post(reverse("documents:retry", args=[document.pk]), {"next": target})
    assert response.status_code == 302 and response["Location"] == reverse("documents:list")
    local = auth_client.post(
        reverse("documents:retry", args=[document.pk]), {"next": document.get_absolute_url()}
    )
    assert local["Location"] == document.get_absolute_url()


def test_upload_racing_the_same_users_delete_ends_cleanly(transactional_db, user):
    """One thread uploads the same bytes again and again while another deletes them."""
    import threading

    data = b"racing bytes"
    errors: list[BaseException] = []
    stop = threading.Event()

    def deleter():
        try:
            while not stop.is_set():
                for document in Document.objects.filter(owner=user):
                    services.document_delete(document=document)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            from django.db import connection

            connection.close()

    thread = threading.Thread(target=deleter)
    thread.start()
    outcomes = []
    try:
        for _ in range(60):
            try:
                outcomes.append(_document_for(user, data=data))
            except services.UploadRejected as exc:
                outcomes.append(str(exc))
    finally:
        stop.set()
        thread.join()
    assert not errors, errors
    assert len(outcomes) == 60


def test_upstream_text_never_shows_the_key(auth_client, user, settings, admin_client):
    """A status detail Moonshot echoed (stored before redaction covered it) shows no key."""
    from docqa.notes import note

    key = settings.MOONSHOT_API_KEY
    document = _document_for(user)
    leaked = note("Moonshot could not extract this file: %(detail)s", detail=f"bad {key} sk-abcdefghijkl")
    transitions.stored_file_fail(stored_file_id=document.stored_file_id, message=leaked)
    pages = [
        auth_client.get(reverse("documents:list")),
        auth_client.get(document.get_absolute_url()),
        admin_client.get(reverse("admin:documents_storedfile_change", args=[document.stored_file_id])),
        admin_client.get(reverse("admin:documents_document_change", args=[document.pk])),
    ]
    for response in pages:
        html = response.content.decode()
        assert response.status_code == 200 and "could not extract" in html
        assert key not in html and "sk-abcdefghijkl" not in html


def test_a_failed_extraction_stores_its_details_redacted(celery_worker, emu, user, settings):
    key = settings.MOONSHOT_API_KEY
    emu.control.add_fault(
        method="POST",
        path="/v1/files",
        kind="extract_error",
        message=f"proxy says {key} sk-abcdefghijkl",
        count=1,
    )
    document = _document_for(user, data=b"will fail", name="fail.txt")
    wait_for(
        lambda: StoredFile.objects.get(pk=document.stored_file_id).status == Status.FAILED,
        message="extraction failed",
    )
    stored = StoredFile.objects.get(pk=document.stored_file_id)
    assert "proxy says" in stored.last_error
    assert key not in stored.last_error and "sk-abcdefghijkl" not in stored.last_error
