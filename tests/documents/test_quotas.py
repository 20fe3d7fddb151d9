"""Each user's share of the account: documents, bytes, uploads a minute; fair resumption."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import timezone

from docqa.documents import services
from docqa.documents.models import Document, Status
from docqa.documents.selectors import uploads_waiting_in_fair_order
from tests import factories

pytestmark = pytest.mark.django_db


def _upload(owner, name: str, data: bytes):
    return services.document_upload(
        owner=owner, uploaded_file=SimpleUploadedFile(name, data), sha256=hashlib.sha256(data).hexdigest()
    )


def test_uploads_past_the_rate_are_refused_naming_the_limit(user, other_user, settings):
    settings.DOCQA_USER_UPLOADS_PER_MINUTE = 3
    for n in range(3):
        _upload(user, f"{n}.txt", f"guess {n}".encode())
    with pytest.raises(services.UploadRejected, match="faster than 3 files a minute"):
        _upload(user, "4.txt", b"guess 4")
    _upload(other_user, "theirs.txt", b"their own pace")  # each user has their own minute


def test_a_user_past_their_file_limit_is_refused_and_the_same_file_still_answers(user, settings):
    settings.DOCQA_USER_MAX_FILES = 2
    first = _upload(user, "a.txt", b"a")
    _upload(user, "b.txt", b"b")
    with pytest.raises(services.UploadRejected, match="already have 2 documents"):
        _upload(user, "c.txt", b"c")
    assert not _upload(user, "again.txt", b"a").created  # not a new document: no refusal
    assert first.document.pk == Document.objects.filter(owner=user).last().pk


def test_a_user_past_their_byte_limit_is_refused(user, settings):
    settings.DOCQA_USER_MAX_BYTES = 1024 * 1024
    _upload(user, "a.txt", b"x" * 700_000)
    with pytest.raises(services.UploadRejected, match="exceed 1 MB"):
        _upload(user, "b.txt", b"y" * 400_000)
    settings.DOCQA_USER_MAX_BYTES = 0  # off
    _upload(user, "b.txt", b"y" * 400_000)


def test_the_refusal_reaches_the_page_in_chinese(auth_client, settings):
    settings.DOCQA_USER_MAX_FILES = 1
    auth_client.post(reverse("documents:upload"), {"files": [SimpleUploadedFile("a.txt", b"a")]})
    response = auth_client.post(
        reverse("documents:upload"),
        {"files": [SimpleUploadedFile("b.txt", b"b")]},
        HTTP_X_REQUESTED_WITH="XMLHttpRequest",
        HTTP_ACCEPT_LANGUAGE="zh-hans",
    )
    assert response.status_code == 400 and "每位用户的上限" in response.content.decode()


def test_waiting_uploads_resume_in_turns_across_users(make_user):
    hoarder, late, later = make_user("hoarder"), make_user("late"), make_user("later")
    start = timezone.now() - timedelta(hours=1)

    def waiting(owner, minutes):
        return factories.document_create(
            owner=owner, status=Status.QUEUED, waiting_for_room_since=start + timedelta(minutes=minutes)
        ).stored_file_id

    hoarded = [waiting(hoarder, n) for n in range(5)]
    late_ones = [waiting(late, 10), waiting(late, 11)]
    later_one = waiting(later, 20)
    assert uploads_waiting_in_fair_order() == [
        hoarded[0],
        late_ones[0],
        later_one,
        hoarded[1],
        late_ones[1],
        *hoarded[2:],
    ]
