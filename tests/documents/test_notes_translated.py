"""docqa's own notes show in the reader's language, what Moonshot said stays as it came
(issue 14, item 13): an extraction failure on the document page, the retention policy in a
job's summary and on the admin's account page."""

from __future__ import annotations

import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from docqa.documents import services
from docqa.documents.choices import RetentionPolicy
from docqa.documents.housekeeping.retention import RetentionReport
from docqa.documents.models import Status, StoredFile
from docqa.notes import note_display
from tests.conftest import wait_for

ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}


@pytest.mark.django_db(transaction=True)
def test_an_extraction_failure_is_chinese_around_moonshots_own_words(celery_worker, client, user, emu):
    emu.control.add_fault("POST", "/v1/files", kind="extract_error", message="file is encrypted")
    data = b"an encrypted file, as Moonshot will say"
    document = services.document_upload(
        owner=user,
        uploaded_file=SimpleUploadedFile("secret.txt", data),
        sha256=hashlib.sha256(data).hexdigest(),
    ).document
    wait_for(
        lambda: StoredFile.objects.filter(pk=document.stored_file_id, status=Status.FAILED).exists(),
        message="failed",
    )
    client.force_login(user)
    client.cookies["django_language"] = "zh-hans"
    page = client.get(reverse("documents:detail", args=[document.pk]), **ZH).content.decode()
    assert "Moonshot 无法提取此文件：file is encrypted" in page  # upstream words kept as they came
    assert "could not extract" not in page


@pytest.mark.parametrize(
    ("policy", "chinese", "dry_run"),
    [
        (RetentionPolicy.EVICT, "账户将满时淘汰最久未使用的远程副本", False),
        (RetentionPolicy.DELETE_AFTER_EXTRACT, "提取后删除远程副本", True),
    ],
)
def test_a_retention_summary_names_the_policy_in_the_readers_language(policy, chinese, dry_run):
    summary = RetentionReport(policy=policy, dry_run=dry_run, released=1, released_bytes=10**6).summary()
    with translation.override("zh-hans"):
        shown = note_display(summary)
    assert chinese in shown and str(policy) not in shown
    with translation.override("en"):
        assert str(policy.label) in note_display(summary)


@pytest.mark.django_db
def test_the_account_page_shows_the_policy_in_chinese(client, make_user, settings):
    settings.DOCQA_RETENTION = "evict"
    client.force_login(make_user("root", is_staff=True, is_superuser=True))
    client.cookies["django_language"] = "zh-hans"
    page = client.get(reverse("admin:documents_storedfile_account"), **ZH).content.decode()
    assert "保留策略：账户将满时淘汰最久未使用的远程副本。" in page
