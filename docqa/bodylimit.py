"""Every request body is bounded before it is read: 413 in the reader's language.

Django's ASGI handler reads a whole request body (to a spooled temporary file) before any
view or middleware runs, so nothing inside Django can stop a 400 MB POST to the login page
early. This wrapper, around the whole application, does: an upload may be as large as
DOCQA_MAX_UPLOAD_BYTES (plus its multipart envelope), any other request DOCQA_MAX_REQUEST_BYTES.
A declared Content-Length over the limit is refused before a byte is read; a body without
one (chunked) is counted as it arrives and refused at the chunk that crosses the limit.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

from django.conf import settings
from django.utils.translation import check_for_language, override
from django.utils.translation import gettext as _

# Multipart framing and the CSRF field around the file itself.
ENVELOPE_BYTES = 1024 * 1024
UPLOAD_PATH_SUFFIX = "/documents/upload/"


def body_limit(app):
    async def bounded(scope, receive, send):
        if scope["type"] != "http":
            return await app(scope, receive, send)
        upload = scope["method"] == "POST" and scope["path"].endswith(UPLOAD_PATH_SUFFIX)
        limit = (
            settings.DOCQA_MAX_UPLOAD_BYTES + ENVELOPE_BYTES if upload else settings.DOCQA_MAX_REQUEST_BYTES
        )
        headers = dict(scope.get("headers") or [])
        try:
            declared = int(headers.get(b"content-length", b"-1"))
        except ValueError:
            declared = -1
        if declared > limit:
            return await _refuse(scope, send, upload=upload)

        received = 0
        over = False
        started = False

        async def counting_receive():
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    # Django stops reading at a disconnect and answers nothing; we answer.
                    over = True
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            nonlocal started
            if over and not started:
                return  # the refusal below is the answer
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await app(scope, counting_receive, watched_send)
        if over and not started:
            await _refuse(scope, send, upload=upload)

    return bounded


def _language(scope) -> str:
    """The reader's language as Django would pick it: the chosen one (cookie), else the browser's."""
    headers = dict(scope.get("headers") or [])
    try:
        cookies = SimpleCookie(headers.get(b"cookie", b"").decode("latin-1"))
    except CookieError:
        cookies = SimpleCookie()
    chosen = cookies.get(settings.LANGUAGE_COOKIE_NAME)
    if chosen is not None and check_for_language(chosen.value):
        return chosen.value
    accepted = headers.get(b"accept-language", b"").decode("latin-1").lower()
    return "zh-hans" if accepted.startswith("zh") else "en"


async def _refuse(scope, send, *, upload: bool) -> None:
    with override(_language(scope)):
        if upload:
            text = _("This file is larger than the %(limit)s MB limit per file.") % {
                "limit": settings.DOCQA_MAX_UPLOAD_BYTES // 1_000_000
            }
        else:
            text = _("This request is larger than the %(limit)s MB limit.") % {
                "limit": max(1, settings.DOCQA_MAX_REQUEST_BYTES // 1_000_000)
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
