"""Helpers for the housekeeping tests: stored files linked to remote records, real uploads."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from docqa.documents import services
from docqa.documents.models import Status, StoredFile


def docqa_name(token: uuid.UUID | None = None, ext: str = "pdf") -> str:
    """A remote name as docqa gives its uploads."""
    return f"docqa-{(token or uuid.uuid4()).hex}.{ext}"


@pytest.fixture
def linked_files(emu):
    """Make `count` ready stored files whose remote copies are emulator filler records."""

    def make(count: int, *, bytes_each: int = 1000, status: str = Status.READY, **fields) -> list[StoredFile]:
        rows = []
        now = timezone.now()
        for _ in range(count):
            token = uuid.uuid4()
            remote_id = emu.control.fake_files(count=1, bytes_each=bytes_each, filename=docqa_name(token))[0]
            rows.append(
                StoredFile(
                    sha256=uuid.uuid4().hex * 2,
                    size=bytes_each,
                    extension="pdf",
                    file="files/none.pdf",
                    upload_token=token,
                    status=status,
                    remote_id=remote_id,
                    remote_uploaded_at=now,
                    upload_started_at=now,
                    content_raw='{"content": "kept text"}',
                    content_text="kept text",
                    **fields,
                )
            )
        return StoredFile.objects.bulk_create(rows)

    return make


@pytest.fixture
def upload():
    """Upload bytes as `owner` through the real service (the worker, if running, ingests it)."""

    def send(owner, name: str = "notes.txt", data: bytes | None = None):
        data = data or f"housekeeping test {uuid.uuid4()}".encode()
        uploaded = SimpleUploadedFile(name, data)
        return services.document_upload(
            owner=owner, uploaded_file=uploaded, sha256=hashlib.sha256(data).hexdigest()
        ).document

    return send


@pytest.fixture
def staff(make_user):
    return make_user("root", is_staff=True, is_superuser=True)


def remote_ids(emu) -> set[str]:
    from docqa.connections import moonshot_client

    return {item.id for item in moonshot_client().files_list()}


def deletes(emu) -> int:
    return emu.control.stats()["requests"].get("DELETE /v1/files/{id}", 0)
