"""One Redis Stream per answer: the task appends deltas, the SSE view reads them.

Entries are `{"k": "c"|"r", "t": text}` for a content or reasoning delta and `{"k": "end"}`
once the answer's final state is in the database. The stream is capped (the database holds
everything older than about a second) and expires soon after the end.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import Future

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

# Called once a publish is sent: (last entry id, Stop asked for, the error or None).
OnDone = Callable[[str | None, bool, BaseException | None], None]


class AnswerPublisher:
    """Appends one answer's deltas to its stream and reads its stop flag in the same round trip."""

    def __init__(self, answer_id: int) -> None:
        self.key = keys.answer_stream(answer_id)
        self.stop_key = keys.answer_stop(answer_id)
        self.redis = redis_client()
        self._expiry_set = False

    def publish(self, pieces: Sequence[tuple[str, str]]) -> tuple[str | None, bool]:
        """XADD each (kind, text); return the last entry id and whether Stop was asked for.

        Sent with every other answer's deltas of the moment by the process's `PublishBatcher`.
        """
        return self.submit(pieces).result()

    def submit(self, pieces: Sequence[tuple[str, str]], on_done: OnDone | None = None) -> Future | None:
        """As `publish`, without waiting: `on_done(last_id, stopped, error)` is called once the
        round is sent; without it, the future gives (last entry id, Stop asked for)."""
        future = publish_batcher.submit(
            self.key, self.stop_key, pieces, expire=not self._expiry_set, on_done=on_done
        )
        self._expiry_set = True
        return future

    def stop_requested(self) -> bool:
        return bool(self.redis.exists(self.stop_key))

    def refresh(self, pipe=None) -> None:
        """Keep the live stream from expiring (on `pipe` when given, to batch many answers)."""
        (pipe if pipe is not None else self.redis).expire(self.key, STREAM_TTL_LIVE)


class PublishBatcher:
    """The one thread per worker process that sends every streaming answer's deltas to Redis.

    A threads-pool worker relays each answer from its own thread; each used to send its
    deltas in a pipeline of its own, one round trip per batch per answer (500 answers at
    once: ~25,000 round trips a second, each a socket write and read under the GIL in one of
    500 threads). Task threads now hand their pieces here and wait: the thread sends what
    every answer handed over meanwhile in one pipeline and gives each its own result (its
    last entry id and its stop flag), or its own error. An answer's publishes stay in order
    (one thread sends them, in the order queued). `publish` waits for its round; `submit`
    does not, so a task thread hands over its deltas and goes back to reading the upstream
    (waiting on a future per delta was 15% of the worker's CPU at 500 answers at once).
    """

    def __init__(self, idle_seconds: float = 30.0, max_answers: int = 1000) -> None:
        self.idle_seconds = idle_seconds
        self.max_answers = max_answers
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None
        self.rounds = 0  # pipelines sent (for tests and profiling)

    def publish(
        self, key: str, stop_key: str, pieces: Sequence[tuple[str, str]], *, expire: bool
    ) -> tuple[str | None, bool]:
        return self.submit(key, stop_key, pieces, expire=expire).result()

    def submit(
        self,
        key: str,
        stop_key: str,
        pieces: Sequence[tuple[str, str]],
        *,
        expire: bool,
        on_done: OnDone | None = None,
    ) -> Future | None:
        """Queue the pieces for the next round: `on_done(last_id, stopped, error)` is called on
        the sending thread once it is sent; without it, the future returned gives (last entry
        id, Stop asked for). A task thread passes `on_done` (a future per delta, its condition
        and lock, was 5% of the worker's samples).

        Rounds go out in the order handed over, so a caller need not wait for one publish
        before it hands over the next: its entries still reach the stream in order.
        """
        future: Future | None = Future() if on_done is None else None
        with self._mutex:
            self._queue.put((key, stop_key, list(pieces), expire, future, on_done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="docqa-answer-publisher", daemon=True)
                self._thread.start()
        return future

    def _run(self) -> None:
        while True:
            try:
                batch = [self._queue.get(timeout=self.idle_seconds)]
            except queue.Empty:
                with self._mutex:
                    if self._queue.empty():
                        self._thread = None
                        return
                continue
            while len(batch) < self.max_answers:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._send(batch)

    def _send(self, batch: list) -> None:
        try:
            pipe = redis_client().pipeline(transaction=False)
            for key, stop_key, pieces, expire, _future, _on_done in batch:
                for kind, text in pieces:
                    pipe.xadd(key, {"k": kind, "t": text}, maxlen=STREAM_MAXLEN, approximate=True)
                if expire:
                    pipe.expire(key, STREAM_TTL_LIVE)
                pipe.exists(stop_key)
            results = pipe.execute(raise_on_error=False)
            self.rounds += 1
        except BaseException as exc:  # noqa: BLE001 - each answer gets the error its own send would have
            for *_rest, future, on_done in batch:
                _complete(future, on_done, None, False, exc)
            return
        at = 0
        for _key, _stop_key, pieces, expire, future, on_done in batch:
            mine = results[at : at + len(pieces) + expire + 1]
            at += len(mine)
            failed = next((r for r in mine if isinstance(r, Exception)), None)
            ids = mine[: len(pieces)]
            _complete(future, on_done, (ids[-1] if ids else None), bool(mine[-1]), failed)


def _complete(
    future: Future | None,
    on_done: OnDone | None,
    last_id: str | None,
    stopped: bool,
    error: BaseException | None,
) -> None:
    if on_done is not None:
        try:
            on_done(None if error else last_id, stopped, error)
        except Exception:  # noqa: BLE001 - one answer's bookkeeping must not stop the others' rounds
            logger.exception("a publish callback failed")
    if future is None:
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result((last_id, stopped))


publish_batcher = PublishBatcher()


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
