"""Fixtures for the housekeeping tests: stored files linked to remote records, real uploads."""

from __future__ import annotations

import hashlib
import uuid

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from docqa.documents import services
from tests import factories


@pytest.fixture
def linked_files(emu):
    """Make `count` ready stored files whose remote copies are emulator records (see factories)."""

    def make(count: int, **fields):
        return factories.linked_stored_files(emu, count, **fields)

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
