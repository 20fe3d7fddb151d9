"""Per-user counters by clock minute in Redis: the ask and upload rate limits."""

from __future__ import annotations

import time
from collections.abc import Callable

from docqa.connections import redis_client

# A minute's counter outlives its minute, so a late INCR never starts it again from zero.
WINDOW_TTL = 120


def minute_count_add(key: Callable[[int], str]) -> int:
    """Count one more event in this clock minute; returns the minute's count so far.

    `key(minute)` names the counter (`docqa.keys.asks_window`, `uploads_window`).
    """
    name = key(int(time.time() // 60))
    pipe = redis_client().pipeline()
    pipe.incr(name)
    pipe.expire(name, WINDOW_TTL)
    count, _ok = pipe.execute()
    return count
