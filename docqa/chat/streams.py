"""One Redis Stream per answer: the task appends deltas, the SSE view reads them.

Entries are `{"k": "c"|"r", "t": text}` for a content or reasoning delta and `{"k": "end"}`
once the answer's final state is in the database. The stream is capped (the database holds
everything older than about a second) and expires soon after the end.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Sequence

from docqa import keys
from docqa.connections import redis_client

logger = logging.getLogger("docqa.chat.streams")

CONTENT = "c"
REASONING = "r"
END = "end"
# Far more than a second's worth of deltas: the database is saved at least every second,
# and a reconnecting browser needs only what came after the last save.
STREAM_MAXLEN = 5000
STREAM_TTL_LIVE = 3600
STREAM_TTL_FINISHED = 600
IDLE_SECONDS = 10


class AnswerPublisher:
    """Appends one answer's deltas to its stream and reads its stop flag in the same round trip."""

    def __init__(self, answer_id: int) -> None:
        self.key = keys.answer_stream(answer_id)
        self.stop_key = keys.answer_stop(answer_id)
        self.redis = redis_client()
        self._expiry_set = False

    def publish(self, pieces: Sequence[tuple[str, str]]) -> tuple[str | None, bool]:
        """XADD each (kind, text); return the last entry id and whether Stop was asked for."""
        pipe = self.redis.pipeline(transaction=False)
        for kind, text in pieces:
            pipe.xadd(self.key, {"k": kind, "t": text}, maxlen=STREAM_MAXLEN, approximate=True)
        if not self._expiry_set:
            pipe.expire(self.key, STREAM_TTL_LIVE)
        pipe.exists(self.stop_key)
        results = pipe.execute()
        self._expiry_set = True
        ids = results[: len(pieces)]
        return (ids[-1] if ids else None), bool(results[-1])

    def stop_requested(self) -> bool:
        return bool(self.redis.exists(self.stop_key))

    def refresh(self, pipe=None) -> None:
        """Keep the live stream from expiring (on `pipe` when given, to batch many answers)."""
        (pipe if pipe is not None else self.redis).expire(self.key, STREAM_TTL_LIVE)


def answer_end_publish(answer_id: int) -> None:
    """Tell listeners the answer's final state is saved; the stream then expires soon."""
    key = keys.answer_stream(answer_id)
    try:
        pipe = redis_client().pipeline(transaction=False)
        pipe.xadd(key, {"k": END}, maxlen=STREAM_MAXLEN, approximate=True)
        pipe.expire(key, STREAM_TTL_FINISHED)
        pipe.delete(keys.answer_stop(answer_id))
        pipe.execute()
    except Exception:  # noqa: BLE001 - listeners also poll the database when idle
        logger.warning("could not publish the end of answer %s", answer_id, exc_info=True)


def answer_stop_request(answer_id: int) -> None:
    redis_client().set(keys.answer_stop(answer_id), "1", ex=STREAM_TTL_LIVE)


async def answer_entries(
    client, *, answer_id: int, after: str, wait: Callable[[], float] | None = None
) -> AsyncIterator[list[tuple[str, dict[str, str]]] | None]:
    """Yield batches of entries after `after` as they arrive (XREAD BLOCK); None when idle.

    `wait()`, when given, says how long each read may block (seconds, at most IDLE_SECONDS):
    a caller with something due sooner (a render) is woken in time by a None.
    """
    key = keys.answer_stream(answer_id)
    cursor = after or "0-0"
    while True:
        seconds = IDLE_SECONDS if wait is None else min(IDLE_SECONDS, wait())
        result = await client.xread({key: cursor}, block=max(1, int(seconds * 1000)), count=200)
        if not result:
            yield None
            continue
        for _key, entries in result:
            if entries:
                cursor = entries[-1][0]
                yield entries


async def answer_entries_since(client, *, answer_id: int, after: str) -> list[tuple[str, dict[str, str]]]:
    """The entries already in the stream after `after` ("" for all of them)."""
    entries = await client.xrange(keys.answer_stream(answer_id), min=after or "-", max="+")
    return [(entry_id, fields) for entry_id, fields in entries if entry_id != after]


async def answer_stream_has(client, *, answer_id: int, entry_id: str) -> bool:
    """Whether `entry_id` is still in the stream (so resuming after it loses nothing)."""
    try:
        found = await client.xrange(keys.answer_stream(answer_id), min=entry_id, max=entry_id, count=1)
    except Exception:  # noqa: BLE001 - a malformed Last-Event-ID is simply not there
        return False
    return bool(found)
