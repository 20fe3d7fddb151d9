"""Drive docqa's ASGI application directly (no server), on a loop in a thread of its own."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest


@dataclass
class Reply:
    status: int
    headers: dict[bytes, bytes]
    body: bytes


def asgi_request(app, path: str, *, method: str = "GET", headers: list[tuple[bytes, bytes]] = ()) -> Reply:
    async def scenario():
        requests = [{"type": "http.request", "body": b"", "more_body": False}]
        sent: list[dict] = []

        async def receive():
            if requests:
                return requests.pop()
            await asyncio.Event().wait()  # the client never leaves; the app stops listening

        async def send(message):
            sent.append(message)

        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [(b"host", b"127.0.0.1"), *headers],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 80),
        }
        await app(scope, receive, send)
        return sent

    with ThreadPoolExecutor(1) as pool:
        sent = pool.submit(asyncio.run, scenario()).result(timeout=30)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return Reply(start["status"], {k.lower(): v for k, v in start.get("headers", ())}, body)


@pytest.fixture
def app(transactional_db):
    """docqa's whole ASGI application, as uvicorn serves it (the database visible to its threads)."""
    from docqa.asgi import application

    return application
