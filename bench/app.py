"""Driving docqa as a browser does: a logged-in user, uploads, conversations, asks, streams.

Users and their sessions are made directly in the database (a thousand password hashes
would cost more CPU than the benchmark itself); everything measured goes over HTTP to the
real URLs, with the session cookie, the CSRF cookie and header, and the page's
`X-Requested-With` header, exactly as the pages' scripts send them.
"""

from __future__ import annotations

import html
import itertools
import re
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from bench import http

_names = itertools.count(1)


@dataclass
class BenchUser:
    pk: int
    username: str
    session_key: str
    csrf: str

    def headers(self, **extra: str) -> dict[str, str]:
        return {
            "Cookie": f"sessionid={self.session_key}; csrftoken={self.csrf}",
            "X-CSRFToken": self.csrf,
            **extra,
        }


def user_create(prefix: str = "bench") -> BenchUser:
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.utils.crypto import get_random_string

    username = f"{prefix}{next(_names)}-{secrets.token_hex(3)}"
    user = get_user_model().objects.create_user(username=username, password=None)
    session = SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    return BenchUser(user.pk, username, session.session_key, get_random_string(32))


def form(data: dict | list[tuple[str, str]]) -> bytes:
    return urlencode(data, doseq=True).encode()


FORM = {"Content-Type": "application/x-www-form-urlencoded"}


class Docqa:
    """The URLs of one running docqa."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url

    async def upload(
        self,
        user: BenchUser,
        path: Path,
        *,
        name: str | None = None,
        write_delay: float = 0.0,
        chunk_size: int = 256 * 1024,
        timeout: float = 600,
    ) -> http.Response:
        upload = http.Upload("files", path, name or path.name, fields={"csrfmiddlewaretoken": user.csrf})
        return await http.request(
            "POST",
            f"{self.base}/documents/upload/",
            headers=user.headers(**{"X-Requested-With": "XMLHttpRequest"}),
            upload=upload,
            write_delay=write_delay,
            chunk_size=chunk_size,
            timeout=timeout,
        )

    async def conversation_new(self, user: BenchUser, document_ids: list[int]) -> int:
        response = await http.request(
            "POST",
            f"{self.base}/chat/new/",
            headers=user.headers(**FORM),
            body=form([("documents", str(pk)) for pk in document_ids]),
        )
        if response.status != 302:
            raise http.HTTPError(f"new conversation: {response.status} {response.text[:300]}")
        return int(re.search(r"/chat/(\d+)/", response.headers["location"]).group(1))

    async def ask(self, user: BenchUser, conversation_id: int, question: str) -> int:
        """POST the question as the page does without htmx; returns the answer's id."""
        response = await http.request(
            "POST",
            f"{self.base}/chat/{conversation_id}/ask/",
            headers=user.headers(**FORM),
            body=form({"question": question}),
        )
        if response.status != 302:
            raise http.HTTPError(f"ask answered {response.status}")
        return int(re.search(r"#answer-(\d+)", response.headers["location"]).group(1))

    def answer_stream(self, user: BenchUser, answer_id: int, *, last_event_id: str | None = None):
        headers = user.headers()
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        return http.sse("GET", f"{self.base}/chat/answers/{answer_id}/stream/", headers=headers)


@dataclass
class Timeline:
    """When the text of a stream grew: (time, total characters so far) per event."""

    started: float
    points: list[tuple[float, int]]
    text: str
    done: bool
    error: str = ""
    done_at: float | None = None
    answer_id: int | None = None

    @property
    def first(self) -> float | None:
        return self.points[0][0] if self.points else None

    @property
    def last(self) -> float | None:
        return self.points[-1][0] if self.points else None

    def time_at(self, chars: int) -> float | None:
        """When the stream had at least `chars` characters."""
        for at, total in self.points:
            if total >= chars:
                return at
        return None

    def complete_with(self, text: str) -> None:
        """The answer is known (from the database) to be `text`: a stream that connected after
        some or all of it was written saw the rest in its `done` event."""
        if self.done_at is not None and len(self.text) < len(text):
            self.points.append((self.done_at, len(text)))
        self.text = text


async def docqa_timeline(app: Docqa, user: BenchUser, answer_id: int, started: float) -> Timeline:
    """Read one answer's SSE stream to the end (the `done` event)."""
    text = ""
    points: list[tuple[float, int]] = []
    done = False
    done_at = None
    error = ""
    try:
        async for event in app.answer_stream(user, answer_id):
            if event.event in ("content", "snapshot-content"):
                piece = html.unescape(event.data)
                text = piece if event.event == "snapshot-content" else text + piece
                if text:
                    points.append((event.at, len(text)))
            elif event.event == "done":
                done = True
                done_at = event.at
                break
    except Exception as exc:  # noqa: BLE001 - counted as a failed stream
        error = f"{type(exc).__name__}: {exc}"
    return Timeline(started, points, text, done, error, done_at, answer_id)


async def direct_timeline(emulator_url: str, payload: dict) -> Timeline:
    """The same chat completion read straight from the emulator."""
    import json

    started = http.now()
    body = json.dumps({**payload, "stream": True}).encode()
    text = ""
    points: list[tuple[float, int]] = []
    done = False
    error = ""
    try:
        async for event in http.sse(
            "POST",
            f"{emulator_url}/chat/completions",
            headers={"Authorization": "Bearer emulator-key", "Content-Type": "application/json"},
            body=body,
        ):
            if event.data == "[DONE]":
                done = True
                break
            chunk = json.loads(event.data)
            for choice in chunk.get("choices") or []:
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece:
                    text += piece
                    points.append((event.at, len(text)))
    except Exception as exc:  # noqa: BLE001
        error = f"{type(exc).__name__}: {exc}"
    return Timeline(started, points, text, done, error)


def wait_until(predicate, *, timeout: float, interval: float = 0.2) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
