"""The threads that write streaming answers to the database, off the threads that relay them.

`StreamingAnswer` is one answer's text so far; `AnswerSaver` saves every streaming answer's
text about once a second; `AnswerWriter` is the one thread per worker process that writes
answers' rows (start, progress, finish), so however many answers stream, the process writes
with one connection, one statement at a time.
"""

from __future__ import annotations

import functools
import logging
import queue
import threading
import time
from concurrent.futures import Future

from django.db import connection, transaction
from django.utils import timezone

from docqa.chat.models import Message, State
from docqa.chat.streams import CONTENT, AnswerPublisher
from docqa.connections import redis_client
from docqa.locks import Lease

logger = logging.getLogger("docqa.chat.writer")

# Saved text is at most this old while an answer streams.
SAVE_INTERVAL = 1.0
# A task hands over at most this many publishes before it waits for them to be sent.
MAX_IN_FLIGHT = 16
# An answer with nothing new (waiting for a slot on a busy account, or a model thinking
# silently) is written only this often: its heartbeat, and the check that it was not
# finished elsewhere. 450 answers queued on a tier-1 account were 450 UPDATEs a second.
IDLE_SAVE_INTERVAL = 10.0


class StreamingAnswer:
    """One answer's text so far, shared by the task thread (which appends) and the saver.

    The content, reasoning and stream cursor change together under `mutex`, so a save is
    always a consistent snapshot: the text up to the cursor, and nothing after it (the SSE
    view's snapshot is the saved text plus the stream entries after the saved cursor).
    """

    def __init__(self, answer_id: int, lock: Lease, publisher: AnswerPublisher) -> None:
        self.answer_id = answer_id
        self.lock = lock
        self.publisher = publisher
        self.mutex = threading.Lock()
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.cursor = ""
        self.first_token_at = None
        # Set by the saver: the answer was finished elsewhere (stop, sweep, deleted conversation),
        # or the lock could not be renewed (the error, raised in the task thread). Set by a
        # publish: Redis refused it (the error, likewise).
        self.abandoned = False
        self.failure: BaseException | None = None
        self.stop_seen = False
        self._saved: tuple = ()  # what the last save wrote (pieces and cursor), and when
        self._saved_at = 0.0
        self._out = 0  # publishes handed over and not sent yet
        self._sent = threading.Condition(self.mutex)  # notified as each is sent

    def publish(self, pieces: list[tuple[str, str]]) -> bool:
        """Hand deltas to the Redis Stream; True once a publish has seen Stop asked for.

        The task thread does not wait for its deltas to be sent: the process's publisher sends
        every answer's at once, in the order handed over, and the task goes back to reading
        the upstream (it waits only when `MAX_IN_FLIGHT` publishes are still out). The text
        and the cursor are kept when a round is sent (`_published`), together: a save is the
        text up to the cursor and nothing after it.
        """
        with self.mutex:
            while self._out >= MAX_IN_FLIGHT:
                self._sent.wait()
            self._out += 1
        self.publisher.submit(pieces, on_done=functools.partial(self._published, pieces))
        return self.stop_seen

    def flush(self) -> None:
        """Wait until every delta handed over is sent (or failed, which `failure` then says)."""
        with self.mutex:
            while self._out:
                self._sent.wait()

    def _published(
        self, pieces: list[tuple[str, str]], last_id: str | None, stopped: bool, error: BaseException | None
    ) -> None:
        with self.mutex:
            # A failed publish's text is kept all the same (the answer ends interrupted with it).
            for kind, text in pieces:
                (self.content if kind == CONTENT else self.reasoning).append(text)
            self.cursor = last_id or self.cursor
            if error is not None:
                self.failure = self.failure or error
            else:
                self.stop_seen = self.stop_seen or stopped
                if self.first_token_at is None:
                    # After the delta is out: the first token never waits on the database.
                    self.first_token_at = timezone.now()
            # Last, so a flush that wakes on it sees all of the above.
            self._out -= 1
            self._sent.notify_all()

    def progress_if_due(self, now: float) -> dict | None:
        """`progress()` for the saver's round, or None when nothing changed since the last
        save and it was less than IDLE_SAVE_INTERVAL ago."""
        with self.mutex:
            mark = (len(self.content), len(self.reasoning), self.cursor)
        if mark == self._saved and now - self._saved_at < IDLE_SAVE_INTERVAL:
            return None
        self._saved, self._saved_at = mark, now
        return self.progress()

    def progress(self) -> dict:
        """The text so far (what has been sent to the stream), for a save."""
        with self.mutex:
            fields = {
                "content": "".join(self.content),
                "reasoning": "".join(self.reasoning),
                "stream_cursor": self.cursor,
            }
        if self.first_token_at is not None:
            fields["first_token_at"] = self.first_token_at
        return fields


class AnswerSaver:
    """Saves every streaming answer's text so far, one round every `interval` seconds.

    Each round renews each answer's lock and stream expiry and writes all their texts in one
    transaction, off the task threads that relay deltas (so no delta waits on the database,
    and SQLite sees one write a second instead of one per answer). With an interval, one
    thread per worker process runs the rounds: it starts with the first answer and stops
    (closing its database connection) when none is left. With `interval=None` no thread is
    started and rounds run only when `save_round()` is called (tests drive it step by step).
    """

    def __init__(self, interval: float | None = SAVE_INTERVAL) -> None:
        self.interval = interval
        self._mutex = threading.Lock()
        self._answers: dict[int, StreamingAnswer] = {}
        self._thread: threading.Thread | None = None

    def add(self, answer: StreamingAnswer) -> None:
        with self._mutex:
            self._answers[answer.answer_id] = answer
            if self._thread is None and self.interval is not None:
                self._thread = threading.Thread(target=self._run, name="docqa-answer-saver", daemon=True)
                self._thread.start()

    def remove(self, answer: StreamingAnswer) -> None:
        with self._mutex:
            if self._answers.get(answer.answer_id) is answer:
                del self._answers[answer.answer_id]

    def save_round(self) -> bool:
        """Run one round now, on this thread; False when there was no answer to save."""
        with self._mutex:
            batch = list(self._answers.values())
        if batch:
            self._save_batch(batch)
        return bool(batch)

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval
        try:
            while True:
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += self.interval
                with self._mutex:
                    batch = list(self._answers.values())
                    if not batch:
                        self._thread = None
                        return
                self._save_batch(batch)
                if time.monotonic() > next_at:
                    next_at = time.monotonic()  # a slow round: save again at once, do not pile up
        finally:
            connection.close()

    def _save_batch(self, batch: list[StreamingAnswer]) -> None:
        try:
            self.save(batch)
        except Exception:  # noqa: BLE001 - the next round tries again; the end state is saved by the task
            logger.warning("saving %s streaming answers failed", len(batch), exc_info=True)
            connection.close()  # the next round reconnects if this one broke the connection

    def save(self, batch: list[StreamingAnswer]) -> None:
        """Renew the locks, then write every answer's text (and heartbeat) in one transaction."""
        live = []
        for answer in batch:
            try:
                answer.lock.renew()
            except Exception as exc:  # noqa: BLE001 - raised in the task thread, as if renewed there
                answer.failure = exc
                continue
            live.append(answer)
        pipe = redis_client().pipeline(transaction=False)
        for answer in live:
            answer.publisher.refresh(pipe)
        pipe.execute()
        answer_writer.call(_answers_progress_save, live)


def _answers_progress_save(live: list[StreamingAnswer]) -> None:
    now, clock = timezone.now(), time.monotonic()
    due = [(answer, fields) for answer in live if (fields := answer.progress_if_due(clock)) is not None]
    if not due:
        return
    with transaction.atomic():
        for answer, fields in due:
            if not Message.objects.filter(pk=answer.answer_id, state=State.STREAMING).update(
                heartbeat_at=now, **fields
            ):
                answer.abandoned = True


class AnswerWriter:
    """The one thread per worker process that writes answers' rows, in the order asked.

    Task threads hand it their start and finish, the saver its batch, and go on relaying:
    the start of an answer is recorded while Moonshot works on the first token instead of
    before the request is sent, and however many answers stream at once the process writes
    with one connection, one statement at a time (SQLite has a single writer; a thousand
    threads polling for its lock starve each other). The thread keeps its connection while
    there is work and closes it after `idle_seconds` without any (or on `stop()`).
    """

    def __init__(self, idle_seconds: float = 30.0) -> None:
        self.idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        with self._mutex:
            self._queue.put((future, fn, args, kwargs))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="docqa-answer-writer", daemon=True)
                self._thread.start()
        return future

    def call(self, fn, /, *args, **kwargs):
        """Run `fn` on the writer thread and return its result (or raise its exception)."""
        return self.submit(fn, *args, **kwargs).result()

    def stop(self, timeout: float = 10.0) -> None:
        """Let the thread finish what was handed to it, close its connection and end."""
        with self._mutex:
            thread = self._thread
            if thread is None:
                return
            self._queue.put(None)
        thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.idle_seconds)
                except queue.Empty:
                    item = None
                if item is None:  # idle, or stop()
                    with self._mutex:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                future, fn, args, kwargs = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    connection.close()  # the next job reconnects if this one broke the connection
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        finally:
            connection.close()


# One of each per worker process.
answer_saver = AnswerSaver()
answer_writer = AnswerWriter()
