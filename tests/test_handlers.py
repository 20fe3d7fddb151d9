"""docqa.handlers: Django's chain and a sync view run on the handler's own threads, in one hop.

Driven through the ASGI callable directly (no server), on a loop in a thread of its own
(the browser tests keep one running in the main thread).
"""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection

from docqa.handlers import SyncChainASGIHandler


def get(handler, path: str, cookie: str = "") -> tuple[int, bytes]:
    async def scenario():
        requests = [{"type": "http.request", "body": b"", "more_body": False}]
        sent: list[dict] = []

        async def receive():
            if requests:
                return requests.pop()
            await asyncio.Event().wait()  # the client never leaves; the handler stops listening

        async def send(message):
            sent.append(message)

        headers = [(b"host", b"127.0.0.1")] + ([(b"cookie", cookie.encode())] if cookie else [])
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        await handler(scope, receive, send)
        return sent

    with ThreadPoolExecutor(1) as pool:
        sent = pool.submit(asyncio.run, scenario()).result(timeout=30)
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return sent[0]["status"], body


@pytest.fixture
def handler():
    handler = SyncChainASGIHandler(threads=1)
    yield handler
    handler.executor.submit(lambda: connection.close()).result()
    handler.executor.shutdown()


def on_handler_thread(handler, fn):
    return handler.executor.submit(fn).result(timeout=10)


def test_the_view_runs_on_the_handlers_thread(transactional_db, handler, client, user):
    from django.test.signals import template_rendered

    client.force_login(user)
    threads = []

    def rendered(**kwargs):
        threads.append(threading.current_thread().name)

    template_rendered.connect(rendered)
    try:
        status, body = get(handler, "/documents/", f"sessionid={client.cookies['sessionid'].value}")
    finally:
        template_rendered.disconnect(rendered)
    assert status == 200
    assert user.username.encode() in body
    # Stock Django would render in a thread of the request's own (ThreadPoolExecutor-…).
    assert threads and all(name.startswith("docqa-web") for name in threads)


def test_sqlite_keeps_its_connection_between_requests_other_databases_do_not(
    transactional_db, handler, client, user
):
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    assert get(handler, "/documents/", cookie)[0] == 200
    first = on_handler_thread(handler, lambda: connection.connection)
    assert get(handler, "/chat/", cookie)[0] == 200
    second = on_handler_thread(handler, lambda: connection.connection)
    if connection.vendor == "sqlite":
        assert first is not None and second is first
    else:
        # Closed (or handed back to the pool) at the end of each request, as CONN_MAX_AGE says.
        assert first is None and second is None


def test_a_streams_work_after_its_view_returned_runs_on_the_process_threads(
    transactional_db, handler, client, user
):
    """The SSE stream renders its `done` event after the view returned: stock `sync_to_async`
    would start a thread (and open a database connection in it) for each stream;
    `stream_sync` uses a few that live as long as the process."""
    from django.db.backends.signals import connection_created

    from tests import factories

    conversation = factories.conversation_create(owner=user)
    answer = factories.exchange_create(conversation=conversation, question="Why?", content="Tides.")[1]
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    opened_in = []

    def opened(**kwargs):
        opened_in.append(threading.current_thread().name)

    connection_created.connect(opened)
    try:
        for _ in range(3):
            status, body = get(handler, f"/chat/answers/{answer.pk}/stream/", cookie)
            assert status == 200 and b"event: done" in body and b"Tides." in body
    finally:
        connection_created.disconnect(opened)
    assert all(name.startswith(("docqa-web", "docqa-stream")) for name in opened_in), opened_in
    if connection.vendor == "sqlite":
        assert len(opened_in) <= 2  # the handler's thread and one stream thread, once each


def test_no_thread_is_started_per_request(transactional_db, handler, client, user):
    """Stock Django starts a thread per request for its request signals, and one to join it."""
    client.force_login(user)
    cookie = f"sessionid={client.cookies['sessionid'].value}"
    assert get(handler, "/documents/", cookie)[0] == 200
    before = threading.enumerate()
    started = []
    original = threading.Thread.start

    def counting_start(thread):
        started.append(thread.name)
        return original(thread)

    threading.Thread.start = counting_start
    try:
        for _ in range(3):
            assert get(handler, "/documents/", cookie)[0] == 200
    finally:
        threading.Thread.start = original
    # The test's own loop runs each request in a fresh one-thread pool (`get`): one per request.
    assert [name for name in started if not name.startswith("ThreadPoolExecutor-")] == [], started
    assert len(started) == 3, (started, before)
