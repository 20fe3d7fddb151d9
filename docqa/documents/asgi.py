"""Refuse an oversized upload before its body is read.

Django's ASGI handler reads a whole request body (to a spooled temporary file) before any
view runs, so a view cannot stop a 2 GB upload early. This wrapper answers 413 from the
Content-Length header alone, and cuts off a body without one once it passes the limit.
"""

from __future__ import annotations

from http.cookies import SimpleCookie

from django.conf import settings
from django.utils.translation import check_for_language, override
from django.utils.translation import gettext as _

# Multipart framing and the CSRF field around the file itself.
ENVELOPE_BYTES = 1024 * 1024


def upload_size_guard(app):
    async def guarded(scope, receive, send):
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or not scope["path"].endswith("/documents/upload/")
        ):
            return await app(scope, receive, send)
        limit = settings.DOCQA_MAX_UPLOAD_BYTES + ENVELOPE_BYTES
        headers = dict(scope.get("headers") or [])
        try:
            declared = int(headers.get(b"content-length", b"-1"))
        except ValueError:
            declared = -1
        if declared > limit:
            return await _refuse(scope, send)

        received = 0

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    return {"type": "http.disconnect"}
            return message

        return await app(scope, counting_receive, send)

    return guarded


def _language(scope) -> str:
    """The reader's language as Django would pick it: the chosen one (cookie), else the browser's."""
    headers = dict(scope.get("headers") or [])
    cookies = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
    chosen = cookies.get(settings.LANGUAGE_COOKIE_NAME)
    if chosen is not None and check_for_language(chosen.value):
        return chosen.value
    accepted = headers.get(b"accept-language", b"").decode("latin-1").lower()
    return "zh-hans" if accepted.startswith("zh") else "en"


async def _refuse(scope, send) -> None:
    with override(_language(scope)):
        text = _("This file is larger than the %(limit)s MB limit per file.") % {
            "limit": settings.DOCQA_MAX_UPLOAD_BYTES // (1024 * 1024)
        }
    body = text.encode()
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
