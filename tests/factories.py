"""Rows for tests, made the one way: plain functions with keyword arguments and sane defaults.

Fixtures in the conftest files wrap these; tests that need an unusual row pass the fields that
make it unusual and nothing else.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import uuid
from collections.abc import Callable

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
    *,
    owner,
    filename: str | None = None,
    stored_file: StoredFile | None = None,
    last_used_at=None,
    **stored_fields,
) -> Document:
    """A user's document over a new stored file of theirs (or the one given)."""
    stored = stored_file or stored_file_create(owner=owner, **stored_fields)
    filename = filename or f"doc{next(_counter)}.{stored.extension}"
    extra = {"last_used_at": last_used_at} if last_used_at is not None else {}
    return Document.objects.create(owner=owner, stored_file=stored, filename=filename, **extra)


def docqa_remote_name(token: uuid.UUID | None = None, ext: str = "pdf") -> str:
    """A remote file name as docqa gives its uploads (`StoredFile.remote_filename`)."""
    return f"docqa-{(token or uuid.uuid4()).hex}.{ext}"


def linked_stored_files(
    emu,
    count: int = 1,
    *,
    remote_ids: list[str] | None = None,
    bytes_each: int = 1000,
    status: str = Status.READY,
    each: Callable[[int], dict] | None = None,
    **fields,
) -> list[StoredFile]:
    """Stored files with their text whose remote copies are records in the emulator's account.

    New records, named as docqa names its uploads, are made unless `remote_ids` names existing
    ones. No local bytes are written; `each(i)` gives the i-th row's own fields. One INSERT for
    all of them, so a full account of 1,000 files is quick to make.
    """
    now = timezone.now()
    rows = []
    for i in range(len(remote_ids) if remote_ids is not None else count):
        token = uuid.uuid4()
        if remote_ids is not None:
            remote_id = remote_ids[i]
        else:
            remote_id = emu.control.fake_files(
                count=1, bytes_each=bytes_each, filename=docqa_remote_name(token)
            )[0]
        values = {
            "sha256": uuid.uuid4().hex * 2,
            "size": bytes_each,
            "extension": "pdf",
            "file": "files/none.pdf",
            "upload_token": token,
            "status": status,
            "remote_id": remote_id,
            "remote_uploaded_at": now,
            "upload_started_at": now,
            "content_raw": '{"content": "kept text"}',
            "content_text": "kept text",
            **fields,
            **(each(i) if each else {}),
        }
        rows.append(StoredFile(**values))
    return StoredFile.objects.bulk_create(rows)


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
