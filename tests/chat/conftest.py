"""Chat fixtures: Ready documents made directly (no pipeline), conversations, a live SSE reader."""

from __future__ import annotations

import hashlib
import itertools

import pytest
import requests
from django.core.files.base import ContentFile

from docqa.chat import services
from docqa.documents.models import Document, Status, StoredFile

_counter = itertools.count(1)


def sample_raw(text: str, filename: str = "doc.txt") -> str:
    """Extracted content shaped like Moonshot's (a JSON string), kept byte for byte."""
    import json

    return json.dumps(
        {"content": text, "file_type": "text/plain", "filename": filename, "title": "", "type": "file"},
        ensure_ascii=False,
    )


@pytest.fixture
def make_document(db):
    def make(
        owner,
        filename: str | None = None,
        *,
        text: str = "",
        tokens: int | None = None,
        status: str = Status.READY,
    ):
        n = next(_counter)
        filename = filename or f"doc{n}.txt"
        text = text or f"Document {n}: the quarterly revenue of Acme grew by {n * 7} percent in spring."
        raw = sample_raw(text, filename)
        digest = hashlib.sha256(f"{n}:{text}".encode()).hexdigest()
        stored = StoredFile(
            sha256=digest,
            size=len(text),
            extension="txt",
            status=status,
            content_raw=raw,
            content_text=text,
            token_count=tokens if tokens is not None else len(raw) // 3 + 8,
        )
        stored.file.save(f"{digest}.txt", ContentFile(text.encode()), save=False)
        stored.save()
        return Document.objects.create(owner=owner, stored_file=stored, filename=filename)

    return make


@pytest.fixture
def make_conversation(make_document):
    def make(owner, documents=None, **kwargs):
        documents = documents or [make_document(owner)]
        return services.conversation_create(
            owner=owner, document_ids=[d.pk for d in documents], language="en", **kwargs
        )

    return make


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2's deliberate slowness costs ~0.2 s per user made; these tests are not about it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _english():
    # A request in another language leaves it active in this thread; notes read in English here.
    from django.utils import translation

    translation.activate("en")
    yield
    translation.activate("en")


@pytest.fixture
def session(asgi_server, client, user):
    """A requests session logged in as `user` against the live ASGI server (`session.base`)."""
    client.force_login(user)
    s = requests.Session()
    s.cookies.set("sessionid", client.cookies["sessionid"].value)
    s.base = asgi_server
    return s
