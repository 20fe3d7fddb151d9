"""One XREAD for every answer stream a web process is sending, instead of one per browser.

Each SSE connection used to wait in its own `XREAD BLOCK` and, once its answer streamed,
made one round trip to Redis per delta: 500 answers at once, a delta every 20 ms each, is
25,000 reads a second, each packed, sent, parsed and awaited in Python. The hub holds one
connection per event loop and reads every watched stream with a single `XREAD`; whatever
arrived for any of them comes back in one reply, and each watcher gets its entries through
an asyncio queue. Under load one read carries many streams' deltas; when idle the hub
waits in Redis like the single reads did.

A watcher that starts while the hub waits wakes it by adding an entry to the hub's own wake
stream, which every read includes after the last wake it saw: a wake sent just before the
read reaches Redis is still seen, so no watcher waits a whole block for its first entry.
Several watchers of one answer (two tabs) share its key; each gets only the entries after
its own cursor. When the hub's read fails (Redis restarted) every watcher gets the error,
as its own read would have raised it, and the hub starts afresh with the next watcher.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import uuid
import weakref
from collections.abc import AsyncIterator, Callable

from docqa import keys
from docqa.connections import async_redis_client

logger = logging.getLogger("docqa.chat.stream_hub")

# How long one read waits in Redis when nothing arrives (a new watcher wakes it sooner).
BLOCK_MS = 5000
# At most this many entries per stream per read (a reconnecting watcher's backlog).
COUNT = 200
WAKE_MAXLEN = 16
WAKE_TTL = 3600


def _id(entry_id: str) -> tuple[int, int]:
    ms, _, seq = entry_id.partition("-")
    return int(ms), int(seq or 0)


class _Watch:
    __slots__ = ("key", "cursor", "queue")

    def __init__(self, key: str, cursor: str) -> None:
        self.key = key
        self.cursor = cursor
        self.queue: asyncio.Queue = asyncio.Queue()


class StreamHub:
    """The one reader of answer streams on one event loop."""

    def __init__(self) -> None:
        self.wake_key = keys.answer_stream_hub_wake(uuid.uuid4().hex)
        self._wake_cursor = "0-0"
        self._watches: dict[str, set[_Watch]] = {}
        self._task: asyncio.Task | None = None
        self.reads = 0  # replies received (for tests and profiling)

    async def watch(self, key: str, cursor: str) -> _Watch:
        watch = _Watch(key, cursor or "0-0")
        self._watches.setdefault(key, set()).add(watch)
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        else:
            await self._wake()
        return watch

    def unwatch(self, watch: _Watch) -> None:
        watchers = self._watches.get(watch.key)
        if watchers is not None:
            watchers.discard(watch)
            if not watchers:
                del self._watches[watch.key]

    async def _wake(self) -> None:
        client = async_redis_client()
        try:
            pipe = client.pipeline(transaction=False)
            pipe.xadd(self.wake_key, {"w": "1"}, maxlen=WAKE_MAXLEN, approximate=False)
            pipe.expire(self.wake_key, WAKE_TTL)
            await pipe.execute()
        finally:
            await client.aclose()

    async def _run(self) -> None:
        client = async_redis_client()
        try:
            while self._watches:
                streams = {
                    key: min((w.cursor for w in watchers), key=_id) for key, watchers in self._watches.items()
                }
                streams[self.wake_key] = self._wake_cursor
                try:
                    reply = await client.xread(streams, block=BLOCK_MS, count=COUNT)
                except Exception as exc:  # noqa: BLE001 - every watcher sees the error its read would have
                    logger.warning("reading the answer streams failed: %s", exc)
                    for watchers in self._watches.values():
                        for watch in watchers:
                            watch.queue.put_nowait(exc)
                    self._watches.clear()
                    break
                self.reads += 1
                for key, entries in reply or ():
                    if not entries:
                        continue
                    if key == self.wake_key:
                        self._wake_cursor = entries[-1][0]
                        continue
                    for watch in self._watches.get(key, ()):
                        after = _id(watch.cursor)
                        new = [entry for entry in entries if _id(entry[0]) > after]
                        if new:
                            watch.cursor = new[-1][0]
                            watch.queue.put_nowait(new)
            # No await between the last check and this: a watcher arriving from now on starts a new task.
            self._task = None
        finally:
            await client.aclose()


_hubs: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def stream_hub() -> StreamHub:
    """This event loop's hub."""
    loop = asyncio.get_running_loop()
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = StreamHub()
    return hub


async def answer_entries_shared(
    *, answer_id: int, after: str, wait: Callable[[], float], hub: StreamHub | None = None
) -> AsyncIterator[list[tuple[str, dict[str, str]]] | None]:
    """As `docqa.chat.streams.answer_entries`, read through the hub: batches of entries after
    `after` as they arrive (what queued meanwhile comes as one batch); None after `wait()`
    seconds without any."""
    hub = hub or stream_hub()
    watch = await hub.watch(keys.answer_stream(answer_id), after)
    try:
        while True:
            if watch.queue.empty():
                try:
                    item = await asyncio.wait_for(watch.queue.get(), max(0.001, wait()))
                except TimeoutError:
                    yield None
                    continue
            else:
                item = watch.queue.get_nowait()
            items = [item]
            while not watch.queue.empty():
                items.append(watch.queue.get_nowait())
            for failure in items:
                if isinstance(failure, BaseException):
                    raise failure
            yield list(itertools.chain.from_iterable(items))
    finally:
        hub.unwatch(watch)
