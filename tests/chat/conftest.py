"""Chat fixtures: Ready documents made directly (no pipeline), conversations, a live SSE reader."""

from __future__ import annotations

import pytest
import requests
from django.utils import translation

from docqa.documents.models import Status
from tests import factories


@pytest.fixture
def make_document(db):
    def make(
        owner, filename: str | None = None, *, text: str = "", tokens: int | None = None, status=Status.READY
    ):
        return factories.document_create(
            owner=owner, filename=filename, text=text, tokens=tokens, status=status
        )

    return make


@pytest.fixture
def make_conversation(make_document):
    def make(owner, documents=None, **kwargs):
        return factories.conversation_create(owner=owner, documents=documents, **kwargs)

    return make


@pytest.fixture(autouse=True)
def _fast_passwords(settings):
    # PBKDF2's deliberate slowness costs ~0.2 s per user made; these tests are not about it.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _english():
    # A request in another language leaves it active in this thread; notes read in English here.
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


@pytest.fixture
def conversation(user, make_conversation, make_document):
    """Two short documents (Acme's revenue, Oslo's weather) the emulator answers about."""
    documents = [
        make_document(
            user,
            "acme.txt",
            text="Acme quarterly revenue grew by twelve percent, driven by exports to Norway.",
        ),
        make_document(
            user, "weather.txt", text="Spring in Oslo was unusually dry; rainfall fell by a third."
        ),
    ]
    return make_conversation(user, documents)
