"""A cap on each user's live Server-Sent Events streams (DOCQA_USER_MAX_STREAMS).

Each open stream holds a Redis connection and a slot in the event loop; without a cap one
user (or one script) could open a thousand. A slot is a member of the user's sorted set in
Redis, scored by when it expires: an open stream renews its slot as it sends, a closed one
gives it back, and a process that died leaves slots that expire by themselves. A stream over
the cap is refused politely (429, in the reader's language); the page's EventSource retries.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import AsyncIterator

from django.conf import settings
from django.http import HttpResponse, StreamingHttpResponse
from django.utils.translation import gettext as _

from docqa import keys
from docqa.connections import async_redis_client, redis_client

logger = logging.getLogger("docqa.live_streams")

SLOT_SECONDS = 60  # a slot not renewed for this long has lost its stream
RENEW_SECONDS = 20  # streams send at least every 15 s (keep-alives), and renew at most this often
RETRY_AFTER = 30


def _slot_ask(pipe, *, key: str, token: str) -> None:
    """Queue on `pipe`: drop expired slots, add this one, and count the user's slots."""
    now = time.time()
    pipe.zremrangebyscore(key, "-inf", now)
    pipe.zadd(key, {token: now + SLOT_SECONDS})
    pipe.expire(key, SLOT_SECONDS)
    pipe.zcard(key)


async def stream_slot_take(*, user_id: int) -> str | None:
    """A slot for one more stream of this user's, or None when they have the most allowed."""
    limit = settings.DOCQA_USER_MAX_STREAMS
    if not limit:
        return ""
    key, token = keys.user_streams(user_id), uuid.uuid4().hex
    client = async_redis_client()
    try:
        pipe = client.pipeline(transaction=True)
        _slot_ask(pipe, key=key, token=token)
        *_rest, count = await pipe.execute()
        if count > limit:
            await client.zrem(key, token)
            return None
        return token
    finally:
        await client.aclose()


def stream_slot_take_sync(*, user_id: int) -> str | None:
    """`stream_slot_take` for a view that runs on the request's thread (one Redis round trip)."""
    limit = settings.DOCQA_USER_MAX_STREAMS
    if not limit:
        return ""
    key, token = keys.user_streams(user_id), uuid.uuid4().hex
    pipe = redis_client().pipeline(transaction=True)
    _slot_ask(pipe, key=key, token=token)
    *_rest, count = pipe.execute()
    if count > limit:
        redis_client().zrem(key, token)
        return None
    return token


async def stream_slot_renew(*, user_id: int, token: str) -> None:
    client = async_redis_client()
    try:
        key = keys.user_streams(user_id)
        pipe = client.pipeline(transaction=True)
        pipe.zadd(key, {token: time.time() + SLOT_SECONDS})
        pipe.expire(key, SLOT_SECONDS)
        await pipe.execute()
    finally:
        await client.aclose()


async def stream_slot_give_back(*, user_id: int, token: str) -> None:
    client = async_redis_client()
    try:
        await client.zrem(keys.user_streams(user_id), token)
    finally:
        await client.aclose()


async def stream_in_slot(*, user_id: int, token: str, body: AsyncIterator[str]) -> AsyncIterator[str]:
    """`body`, renewing the stream's slot as it goes and giving it back when it ends."""
    renewed = time.monotonic()
    try:
        async for part in body:
            if token and time.monotonic() - renewed > RENEW_SECONDS:
                renewed = time.monotonic()
                await stream_slot_renew(user_id=user_id, token=token)
            yield part
    finally:
        if token:
            try:
                await stream_slot_give_back(user_id=user_id, token=token)
            except Exception:  # noqa: BLE001 - the slot expires by itself
                logger.warning("could not give back a stream slot of user %s", user_id, exc_info=True)


def event_stream_response(*, user_id: int, slot: str | None, body: AsyncIterator[str]) -> HttpResponse:
    """`body` as Server-Sent Events held in `slot` (from `stream_slot_take[_sync]`); the polite
    429 when there was none."""
    if slot is None:
        return streams_full_response()
    response = StreamingHttpResponse(
        stream_in_slot(user_id=user_id, token=slot, body=body), content_type="text/event-stream"
    )
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response


def streams_full_response() -> HttpResponse:
    response = HttpResponse(
        _(
            "You have %(limit)s live pages open, the most one user may. Close some tabs and this one "
            "reconnects by itself."
        )
        % {"limit": settings.DOCQA_USER_MAX_STREAMS},
        status=429,
        content_type="text/plain; charset=utf-8",
    )
    response["Retry-After"] = str(RETRY_AFTER)
    return response
