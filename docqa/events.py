"""Per-user live events over Redis Streams.

A state change (a document's status, later an answer's) is appended to the owner's stream;
the browser's SSE connection reads it with a blocking XREAD, so pages update as it happens
(rows still in flight also re-check every few seconds, as a safety net for a lost event). The stream is capped and expires, so Redis memory stays bounded.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterable

from docqa import keys
from docqa.connections import async_redis_client, redis_client

logger = logging.getLogger("docqa.events")

STREAM_MAXLEN = 500
STREAM_TTL_SECONDS = 24 * 3600
KEEPALIVE_SECONDS = 15


def events_publish(*, user_ids: Iterable[int], event: str, data: str = "") -> None:
    """Append `event` to each user's stream. Never raises: a missed live update is only cosmetic."""
    try:
        pipe = redis_client().pipeline(transaction=False)
        for user_id in set(user_ids):
            key = keys.user_events(user_id)
            pipe.xadd(key, {"event": event, "data": data}, maxlen=STREAM_MAXLEN, approximate=True)
            pipe.expire(key, STREAM_TTL_SECONDS)
        pipe.execute()
    except Exception:  # noqa: BLE001 - Redis down must not fail the state change itself
        logger.warning("could not publish event %s", event, exc_info=True)


async def events_listen(*, user_id: int, last_id: str = "$") -> AsyncIterator[tuple[str, str, str] | None]:
    """Yield (stream id, event, data) as they arrive; None when idle, for a keep-alive."""
    client = async_redis_client()
    key = keys.user_events(user_id)
    try:
        if last_id == "$":
            # Resolve "now" once, so events between two XREADs are not skipped.
            info = await client.xinfo_stream(key) if await client.exists(key) else None
            last_id = info["last-generated-id"] if info else "0-0"
        while True:
            result = await client.xread({key: last_id}, block=KEEPALIVE_SECONDS * 1000, count=100)
            if not result:
                yield None
                continue
            for _key, entries in result:
                for entry_id, fields in entries:
                    last_id = entry_id
                    yield entry_id, fields.get("event", "message"), fields.get("data", "")
    finally:
        await client.aclose()
