"""Run the abuse catalogue (tests/abuse/cases.py) against one world of two users.

Every case must get a clear answer (its status, and its message where a person reads one),
never a server error; afterwards nothing of alice's is lost or changed, and no response to
anyone else carries her text. Slow and oversized clients are driven at the ASGI level, below
Django's test client, where they actually arrive.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
from html.parser import HTMLParser

import pytest
from django.test import Client

from docqa.chat import services as chat_services
from docqa.chat.models import Conversation, Message, Role, State
from docqa.chat.verification import answer_citations
from docqa.documents.models import Document, Status
from tests import factories
from tests.abuse.cases import CASES, HOSTILE_CITATIONS, XSS, Case

pytestmark = pytest.mark.django_db

_n = itertools.count(1)
CSRF = "abusecatalogue0123456789abcdefgh"  # 32 characters, as Django's CSRF secret


def _document(owner, filename: str, text: str, status: str = Status.READY) -> Document:
    raw = factories.sample_raw(text, filename)
    return factories.document_create(
        owner=owner,
        filename=filename,
        text=text,
        status=status,
        content_raw=raw,
        content_text=text,
        size=len(text),
        tokens=len(raw) // 3 + 8,
    )


@pytest.fixture
def world(make_user, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    alice, mallory = make_user("alice"), make_user("mallory")
    doc = _document(alice, "alice-notes.txt", f"ALICE-SECRET quarterly figures. {XSS}")
    xss_named = _document(alice, f"{XSS}.txt", "a document whose name is a script")
    # Bytes alice holds (Ready): mallory uploading the same ones must learn nothing of it.
    factories.document_create(
        owner=alice, filename="alice-bytes.txt", sha256=hashlib.sha256(b"ALICE-BYTES").hexdigest()
    )
    pending = _document(alice, "pending.txt", "still extracting", status=Status.EXTRACTING)
    mallory_doc = _document(mallory, "mallory.txt", "mallory's own text")
    conversation = chat_services.conversation_create(owner=alice, document_ids=[doc.pk], language="en")
    Conversation.objects.filter(pk=conversation.pk).update(title="Alice's chat")
    question = Message.objects.create(
        conversation=conversation, role=Role.USER, content="ALICE-SECRET question?"
    )
    answer = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        question=question,
        state=State.COMPLETE,
        content=f"ALICE-SECRET answer. {XSS}\n\n[click](javascript:alert(1)) ![img](https://evil.example/x.png)",
    )
    busy = chat_services.conversation_create(owner=alice, document_ids=[doc.pk], language="en")
    busy_question = Message.objects.create(conversation=busy, role=Role.USER, content="ALICE-SECRET busy?")
    streaming = Message.objects.create(
        conversation=busy,
        role=Role.ASSISTANT,
        question=busy_question,
        state=State.STREAMING,
        content="ALICE-SECRET so far",
    )
    # Citations with HTML in the quote and in the document's name, nested and unbalanced
    # markers and a 50 KB quote, checked and stored as a finished answer's are.
    cited = chat_services.conversation_create(owner=alice, document_ids=[doc.pk, xss_named.pk], language="en")
    cited_question = Message.objects.create(conversation=cited, role=Role.USER, content="cite?")
    cited_answer = Message.objects.create(
        conversation=cited,
        role=Role.ASSISTANT,
        question=cited_question,
        state=State.COMPLETE,
        content=HOSTILE_CITATIONS,
        citations=answer_citations(
            HOSTILE_CITATIONS,
            [doc.pk, xss_named.pk],
            [f"ALICE-SECRET quarterly figures. {XSS}", "a document whose name is a script"],
        ),
    )
    cited_streaming_question = Message.objects.create(conversation=cited, role=Role.USER, content="more?")
    cited_streaming = Message.objects.create(
        conversation=cited,
        role=Role.ASSISTANT,
        question=cited_streaming_question,
        state=State.STREAMING,
        content=f"Live 【1†{XSS}】 then 【2†half-written {XSS}",
    )
    return {
        "users": {"alice": alice, "mallory": mallory},
        "ids": {
            "doc": doc.pk,
            "pending": pending.pk,
            "conv": conversation.pk,
            "answer": answer.pk,
            "question": question.pk,
            "busy": busy.pk,
            "streaming": streaming.pk,
            "mallory_doc": mallory_doc.pk,
            "cited": cited.pk,
            "cited_answer": cited_answer.pk,
            "cited_streaming": cited_streaming.pk,
        },
    }


class _Tags(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.bad: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag, attrs):
        self._in_script = tag == "script"
        for name, value in attrs:
            value = (value or "").strip().lower()
            if name.startswith("on") and "alert" in value:
                self.bad.append(f"<{tag} {name}={value}>")
            if name in ("href", "src", "action", "formaction") and value.startswith("javascript:"):
                self.bad.append(f"<{tag} {name}={value}>")
            if tag == "img" and name == "src" and "evil.example" in value:
                self.bad.append(f"<img src={value}>")

    def handle_data(self, data):
        if self._in_script and "alert(" in data:
            self.bad.append(f"<script>{data[:40]}")

    def handle_endtag(self, tag):
        self._in_script = False


def live_markup(body: str) -> list[str]:
    """Tags in the page that would run or fetch something from the payloads."""
    parser = _Tags()
    parser.feed(body)
    return parser.bad


def _snapshot(alice) -> dict:
    """Everything of alice's the cases must not lose or alter."""
    return {
        "documents": sorted(
            Document.objects.filter(owner=alice).values_list("pk", "filename", "stored_file__sha256")
        ),
        "conversations": sorted(Conversation.objects.filter(owner=alice).values_list("pk", flat=True)),
        "messages": sorted(
            Message.objects.filter(conversation__owner=alice).values_list("pk", "role", "content")
        ),
    }


def _fill(value, ids):
    if isinstance(value, str):
        return value.format(**ids)
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def _send(case: Case, world) -> tuple[int, str]:
    client = Client(enforce_csrf_checks=True)
    if case.who != "anon":
        client.force_login(world["users"][case.who])
    client.cookies["csrftoken"] = CSRF
    headers = {}
    if case.csrf:
        headers["HTTP_X_CSRFTOKEN"] = CSRF
    if case.xhr:
        headers["HTTP_X_REQUESTED_WITH"] = "XMLHttpRequest"
    headers.update(case.headers)
    path = _fill(case.path, world["ids"])
    data = {k: _fill(v, world["ids"]) for k, v in case.data.items()}
    if case.files:
        # Built by hand: Django's own test helpers refuse the names a hostile client sends.
        body, content_type = _multipart(data, case.files)
        response = client.generic("POST", path, body, content_type=content_type, **headers)
    else:
        response = getattr(client, case.method)(path, data, follow=case.follow, **headers)
    first = response.redirect_chain[0][1] if case.follow and response.redirect_chain else response.status_code
    if case.location:
        assert response["Location"] == case.location, f"{case.name}: redirected to {response['Location']}"
    if getattr(response, "streaming", False):
        # A stream route: read what it sends first, never wait on a live stream.
        body = b""
        iterator = (
            aiter(response.streaming_content) if response.is_async else iter(response.streaming_content)
        )
        body = _first_chunks(iterator, response.is_async)
        return first, body.decode(errors="replace")
    return first, response.content.decode(errors="replace")


def _multipart(fields: dict, files) -> tuple[bytes, str]:
    boundary = "abuse-catalogue-boundary"
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
    for filename, content in files:
        quoted = filename.replace('"', "%22")
        out += (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="{quoted}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + content
            + b"\r\n"
        )
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


def _first_chunks(iterator, is_async: bool, count: int = 3) -> bytes:
    if not is_async:
        return b"".join(chunk for _, chunk in zip(range(count), iterator, strict=False))

    async def read():
        out = b""
        for _ in range(count):
            try:
                chunk = await asyncio.wait_for(anext(iterator), 2)
            except (TimeoutError, StopAsyncIteration):
                break
            out += chunk if isinstance(chunk, bytes) else chunk.encode()
        await iterator.aclose()
        return out

    return asyncio.run(read())


def test_catalogue_is_large_enough():
    assert len(CASES) >= 40
    assert len({case.name for case in CASES}) == len(CASES), "case names must be unique"


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_case(case: Case, world, settings):
    for name, value in case.settings.items():
        setattr(settings, name, value)
    alice = world["users"]["alice"]
    before = _snapshot(alice)
    mallory_before = Document.objects.filter(owner=world["users"]["mallory"]).count()

    status, body = _send(case, world)

    assert status in case.status, f"{case.name}: got {status}, expected {case.status}: {body[:500]}"
    for text in case.says:
        assert text in body, f"{case.name}: the answer does not say {text!r}"
    for text in case.never:
        assert text not in body, f"{case.name}: the answer contains {text!r}"
    if case.inert:
        assert not live_markup(body), f"{case.name}: live markup {live_markup(body)}"
    if case.who != "alice":
        assert "ALICE-SECRET" not in body, f"{case.name}: alice's text reached {case.who}"
        assert _snapshot(alice) == before, f"{case.name}: {case.who} changed alice's data"
        # Only an upload of her own may add to mallory's documents.
        added = Document.objects.filter(owner=world["users"]["mallory"]).count() - mallory_before
        assert added == (1 if case.files and case.status == (200,) else 0)
    else:
        after = _snapshot(alice)
        # Alice's own cases may add (an upload, a question) but never lose or alter a row.
        assert set(before["documents"]) <= set(after["documents"]), f"{case.name}: a document was lost"
        assert set(before["conversations"]) <= set(after["conversations"]), (
            f"{case.name}: a conversation was lost"
        )
        assert set(before["messages"]) <= set(after["messages"]), (
            f"{case.name}: a message was lost or altered"
        )


# --- slow and oversized clients, at the ASGI level --------------------------------------------


def _asgi(
    scope_headers: list[tuple[bytes, bytes]], messages: list[dict], *, path: str = "/documents/upload/"
):
    """Call docqa's ASGI application with these body messages; return (status, body, messages read)."""
    from docqa.asgi import application

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), *scope_headers],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }
    pending = list(messages)
    read = 0
    sent: list[dict] = []

    async def receive():
        nonlocal read
        if pending:
            read += 1
            return pending.pop(0)
        await asyncio.sleep(3600)  # a client that never sends the rest

    async def send(message):
        sent.append(message)

    async def run():
        await asyncio.wait_for(application(scope, receive, send), 10)

    asyncio.run(run())
    status = next((m["status"] for m in sent if m["type"] == "http.response.start"), None)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body.decode(errors="replace"), read


def test_a_huge_body_to_the_login_page_is_refused_before_it_is_read(transactional_db):
    status, body, read = _asgi(
        [(b"content-length", str(400 * 1024 * 1024).encode())], [], path="/accounts/login/"
    )
    assert status == 413 and "larger than the 2 MB limit" in body and read == 0


def test_a_chunked_body_to_the_login_page_is_cut_off_with_413(transactional_db):
    chunk = b"x" * (512 * 1024)
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for _ in range(20)]
    status, _body, read = _asgi([], messages, path="/accounts/login/")
    assert status == 413 and read <= 6


def test_slow_client_declaring_a_huge_body_is_refused_before_it_sends_a_byte(transactional_db, settings):
    settings.DOCQA_MAX_UPLOAD_BYTES = 1024 * 1024
    status, body, read = _asgi(
        [
            (b"content-length", str(50 * 1024 * 1024).encode()),
            (b"content-type", b"multipart/form-data; boundary=x"),
        ],
        [],
    )
    assert status == 413 and "larger than the 1 MB limit" in body
    assert read == 0


def test_the_refusal_speaks_the_language_the_user_chose(transactional_db, settings):
    settings.DOCQA_MAX_UPLOAD_BYTES = 1024 * 1024
    status, body, _read = _asgi(
        [
            (b"content-length", str(50 * 1024 * 1024).encode()),
            (b"accept-language", b"en-US"),
            (b"cookie", b"csrftoken=x; django_language=zh-hans"),
        ],
        [],
    )
    assert status == 413 and "100" not in body and "1 MB" in body and "文件" in body


def test_client_sending_more_than_it_declared_is_cut_off(transactional_db, settings):
    settings.DOCQA_MAX_UPLOAD_BYTES = 64 * 1024
    chunk = b"x" * (512 * 1024)
    messages = [{"type": "http.request", "body": chunk, "more_body": True} for _ in range(8)]
    # No Content-Length (chunked): the guard counts what arrives and stops reading past the limit.
    status, _body, read = _asgi([(b"content-type", b"multipart/form-data; boundary=x")], messages)
    assert read <= 4, "the guard kept reading a body far past the limit"
    # Django sees a disconnect and answers nothing; the guard answers 413 for it.
    assert status == 413


def test_the_markup_check_catches_the_payloads_when_live():
    # The catalogue's XSS cases rely on this check; it must see each payload unescaped.
    found = live_markup(XSS + '<img src="https://evil.example/x.png">')
    assert len(found) == 4, found
    assert live_markup("&lt;script&gt;alert(1)&lt;/script&gt; &lt;img src=x onerror=alert(1)&gt;") == []
