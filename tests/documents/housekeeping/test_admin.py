"""The admin: staff only, the account page, document actions, and the API key never shown."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone

from docqa.documents import tasks
from docqa.documents.housekeeping.jobs import JobKind, JobState, job_create, job_get
from docqa.documents.housekeeping.reconcile import remote_files_reconcile
from docqa.documents.models import Document, Status, StoredFile
from tests import factories
from tests.documents.housekeeping.helpers import docqa_name, remote_ids

pytestmark = pytest.mark.django_db

ACCOUNT = "admin:documents_storedfile_account"


def _admin_urls(document: Document | None = None) -> list[str]:
    urls = [
        reverse("admin:index"),
        reverse(ACCOUNT),
        reverse("admin:documents_storedfile_account_job"),
        reverse("admin:documents_document_changelist"),
        reverse("admin:documents_storedfile_changelist"),
    ]
    if document is not None:
        urls += [
            reverse("admin:documents_document_change", args=[document.pk]),
            reverse("admin:documents_storedfile_change", args=[document.stored_file_id]),
        ]
    return urls


def _document(owner, linked_files) -> Document:
    (stored,) = linked_files(1, token_count=42)
    return factories.document_create(owner=owner, stored_file=stored, filename="report.pdf")


def test_non_staff_and_anonymous_get_no_admin(client, user, linked_files, emu):
    document = _document(user, linked_files)
    for url in _admin_urls(document):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    client.force_login(user)
    for url in _admin_urls(document):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    for name in (
        "admin:documents_storedfile_account_sync",
        "admin:documents_storedfile_account_delete_orphans",
    ):
        response = client.post(reverse(name), {"all": "1", "confirm": "yes"})
        assert response.status_code == 302 and "/admin/login/" in response["Location"]
    assert len(remote_ids(emu)) == 1


def test_staff_without_permissions_cannot_open_the_account_page(client, make_user):
    client.force_login(make_user("clerk", is_staff=True))
    assert client.get(reverse(ACCOUNT)).status_code == 403
    assert client.post(reverse("admin:documents_storedfile_account_sync")).status_code == 403


def test_account_page_shows_gauges_balance_rows_and_waiting_uploads(
    client, staff, user, linked_files, emu, settings
):
    settings.DOCQA_ORPHAN_GRACE = 3600
    _document(user, linked_files)
    orphan = emu.control.fake_files(count=1, bytes_each=2048, filename=docqa_name())[0]
    emu.control.fake_files(count=1, bytes_each=10, filename="not-ours.pdf")
    factories.stored_file_create(
        status=Status.QUEUED,
        with_file=False,
        size=5,
        last_error='{"m": "Waiting for room: the Moonshot account is full.", "p": {}}',
        waiting_for_room_since=timezone.now(),
    )
    remote_files_reconcile()
    client.force_login(staff)
    html = client.get(reverse(ACCOUNT)).content.decode().replace("\xa0", " ")
    assert "3 / 1,000" in html and "10.0 GB" in html
    assert "¥49.59" in html  # the emulator's balance
    assert f'value="{orphan}"' in html  # a checkbox for the orphan
    assert "report.pdf" in html and "not docqa&#x27;s" in html
    assert "1 upload is waiting for room" in html
    assert "Retention policy: Keep remote copies." in html  # the policy's label, not "keep"
    # Filter to orphans only.
    html = client.get(reverse(ACCOUNT), {"show": "orphan"}).content.decode()
    assert orphan in html and "report.pdf" not in html


def test_delete_orphans_asks_for_confirmation_with_the_count(
    client, staff, emu, settings, django_capture_on_commit_callbacks
):
    settings.DOCQA_ORPHAN_GRACE = 3600
    orphans = emu.control.fake_files(count=3, bytes_each=10, filename=docqa_name())
    remote_files_reconcile()
    client.force_login(staff)
    url = reverse("admin:documents_storedfile_account_delete_orphans")
    response = client.post(url, {"all": "1"})
    assert "Delete 3 orphaned files" in response.content.decode()
    assert len(remote_ids(emu)) == 3  # nothing yet
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = client.post(url, {"ids": orphans[:2], "confirm": "yes"})
    assert response.status_code == 302
    job = job_get()
    assert job.kind == JobKind.DELETE_ORPHANS and job.is_active
    # Run what the button enqueued, as the worker would.
    tasks.orphans_delete.apply(kwargs={"remote_ids": orphans[:2], "job_id": job.id})
    assert remote_ids(emu) == {orphans[2]}
    job = job_get()
    assert job.state == JobState.DONE and "Orphans deleted: 2." in job.summary_display
    assert len(callbacks) == 2  # the listing drops the chosen orphans, and the task is enqueued
    # The poll of a finished job asks the page to reload.
    response = client.get(reverse("admin:documents_storedfile_account_job"), HTTP_HX_REQUEST="true")
    assert response["HX-Refresh"] == "true" and "Orphans deleted: 2." in response.content.decode()


def test_document_actions_reextract_release_and_delete(
    client, staff, user, linked_files, emu, django_capture_on_commit_callbacks
):
    document = _document(user, linked_files)
    remote_id = document.stored_file.remote_id
    client.force_login(staff)
    url = reverse("admin:documents_document_changelist")
    html = client.get(url).content.decode()
    assert "report.pdf" in html and remote_id in html and "42" in html

    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "release_remote_copy", "_selected_action": [document.pk]})
    stored = StoredFile.objects.get(pk=document.stored_file_id)
    assert stored.remote_id == "" and stored.content_text == "kept text" and stored.status == Status.READY
    # The delete itself went to the task queue; run it as the worker would.
    tasks.remote_file_delete.apply(args=[remote_id])
    assert remote_ids(emu) == set()

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        client.post(url, {"action": "reextract", "_selected_action": [document.pk]})
    assert StoredFile.objects.get(pk=stored.pk).status == Status.QUEUED and len(callbacks) == 1

    StoredFile.objects.filter(pk=stored.pk).update(status=Status.READY)
    response = client.post(
        url, {"action": "delete_selected", "_selected_action": [document.pk], "post": "yes"}
    )
    assert response.status_code == 302
    assert not Document.objects.exists() and not StoredFile.objects.exists()


def test_the_api_key_never_appears_in_the_admin(client, staff, user, linked_files, emu, settings):
    fake_key = "sk-HOUSEKEEPING-FAKE-KEY-0123456789abcdef"
    document = _document(user, linked_files)
    emu.control.fake_files(count=1, bytes_each=10, filename=docqa_name())
    remote_files_reconcile()
    settings.MOONSHOT_API_KEY = fake_key
    # A sync with the wrong key fails with a 401: its summary is shown on the page.
    job = job_create(kind=JobKind.SYNC)
    tasks.remote_files_reconcile.apply(kwargs={"job_id": job.id})
    assert job_get().state == JobState.FAILED
    client.force_login(staff)
    pages = [client.get(url) for url in _admin_urls(document)]
    pages.append(client.post(reverse("admin:documents_storedfile_account_delete_orphans"), {"all": "1"}))
    for response in pages:
        assert response.status_code == 200
        body = response.content.decode()
        assert fake_key not in body and fake_key[3:20] not in body
    assert "API key" in pages[1].content.decode()  # the failure is explained, without the key


def test_admin_columns_filters_and_fields_are_translated(client, staff, user, linked_files, emu):
    from docqa.chat import services

    document = _document(user, linked_files)
    services.conversation_create(owner=user, document_ids=[document.pk], language="en")
    client.force_login(staff)
    client.cookies["django_language"] = "zh-hans"
    pages = {
        reverse("admin:documents_document_changelist"): ["文件名", "所有者", "状态", "最近使用时间"],
        reverse("admin:documents_storedfile_changelist"): ["扩展名", "Token 数", "最近使用时间"],
        reverse("admin:documents_storedfile_change", args=[document.stored_file_id]): [
            "尝试次数",
            "状态变更时间",
            "备注",
            "Moonshot 上的文件名",
        ],
        reverse("admin:chat_conversation_changelist"): ["标题", "所有者", "模型", "更新时间"],
    }
    for url, labels in pages.items():
        page = client.get(url, HTTP_ACCEPT_LANGUAGE="zh-hans").content.decode()
        for label in labels:
            assert label in page, (url, label)
        # No English field name left as a column header.
        for english in (
            "Filename",
            "Owner",
            "Last used at",
            "Extension",
            "Token count",
            "Updated at",
            "Error display",
            "Remote filename",
        ):
            assert f">{english}<" not in page, (url, english)


def test_account_page_shows_usage_per_user(client, staff, make_user):
    heavy, light = make_user("heavy"), make_user("light")
    for _ in range(3):
        factories.document_create(owner=heavy, with_file=False, size=10_000_000, remote_id="r")
    factories.document_create(
        owner=light, with_file=False, status=Status.QUEUED, size=1000, waiting_for_room_since=timezone.now()
    )
    client.force_login(staff)
    html = client.get(reverse(ACCOUNT)).content.decode().replace("\xa0", " ")
    table = html.split('id="moonshot-usage"', 1)[1].split("</table>", 1)[0]
    assert table.index("heavy") < table.index("light")
    assert "<td>heavy</td><td>3</td><td>30.0 MB</td><td>3</td><td>0</td>" in table
    assert "<td>light</td><td>1</td><td>1.0 KB</td><td>0</td><td>1</td>" in table
