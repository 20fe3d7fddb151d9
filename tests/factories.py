"""Rows for tests, made the one way: plain functions with keyword arguments and sane defaults.

Fixtures in the conftest files wrap these; tests that need an unusual row pass the fields that
make it unusual and nothing else.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid

from django.contrib.auth import get_user_model
from django.core.files.base import ContentFile
from django.utils import timezone

from docqa.chat import services as chat_services
from docqa.chat.models import Conversation, Message, Role, State
from docqa.documents.models import Document, Status, StoredFile

PASSWORD = "correct horse battery staple"
_counter = itertools.count(1)


def sample_raw(text: str, filename: str = "doc.txt") -> str:
    """Extracted content shaped like Moonshot's (a JSON string), kept byte for byte."""
    return json.dumps(
        {"content": text, "file_type": "text/plain", "filename": filename, "title": "", "type": "file"},
        ensure_ascii=False,
    )


def user_create(username: str | None = None, *, password: str = PASSWORD, **extra):
    """A user whose password is on `user.raw_password`, for logging in through forms."""
    username = username or f"user{next(_counter)}"
    user = get_user_model().objects.create_user(username=username, password=password, **extra)
    user.raw_password = password
    return user


def stored_file_create(
    *,
    text: str = "",
    status: str = Status.READY,
    extension: str = "txt",
    tokens: int | None = None,
    with_file: bool = True,
    **fields,
) -> StoredFile:
    """A stored file as ingest leaves it (Ready with its text), without running the pipeline.

    `with_file=False` skips writing bytes to the media folder (the row then names a path that
    does not exist, as housekeeping tests of remote copies need no local bytes).
    """
    n = next(_counter)
    text = text or f"Document {n}: the quarterly revenue of Acme grew by {n * 7} percent in spring."
    raw = sample_raw(text, f"doc{n}.{extension}")
    digest = fields.pop("sha256", None) or hashlib.sha256(f"{n}:{uuid.uuid4()}:{text}".encode()).hexdigest()
    values = {
        "sha256": digest,
        "size": len(text.encode()),
        "extension": extension,
        "status": status,
        "content_raw": raw if status == Status.READY else "",
        "content_text": text if status == Status.READY else "",
        "token_count": tokens if tokens is not None else len(raw) // 3 + 8,
    }
    values.update(fields)
    stored = StoredFile(**values)
    if with_file:
        stored.file.save(f"{digest}.{extension}", ContentFile(text.encode()), save=False)
    elif not stored.file:
        stored.file = f"files/{digest[:2]}/{digest}.{extension}"
    stored.save()
    return stored


def document_create(
    *, owner, filename: str | None = None, stored_file: StoredFile | None = None, **stored_fields
) -> Document:
    """A user's document over a new stored file (or the one given)."""
    stored = stored_file or stored_file_create(**stored_fields)
    filename = filename or f"doc{next(_counter)}.{stored.extension}"
    return Document.objects.create(owner=owner, stored_file=stored, filename=filename)


def conversation_create(*, owner, documents: list[Document] | None = None, **fields) -> Conversation:
    """A conversation over `documents` (one new document when none are given), as a user starts one."""
    documents = documents if documents is not None else [document_create(owner=owner)]
    return chat_services.conversation_create(
        owner=owner, document_ids=[d.pk for d in documents], language=fields.pop("language", "en"), **fields
    )


def exchange_create(
    *, conversation: Conversation, question: str = "q", state: str = State.COMPLETE, **answer_fields
) -> tuple[Message, Message]:
    """A question and its answer in `state` (streaming answers get a heartbeat of now)."""
    asked = Message.objects.create(conversation=conversation, role=Role.USER, content=question)
    if state == State.STREAMING:
        answer_fields.setdefault("heartbeat_at", timezone.now())
    answer_fields.setdefault("model", conversation.model)
    answer = Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, question=asked, state=state, **answer_fields
    )
    return asked, answer
