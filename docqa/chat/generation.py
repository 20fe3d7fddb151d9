"""Generating one answer (the `answers` task's body), and the sweep of answers whose worker died.

An answer is generated at most once: its lock keeps a duplicate delivery from running
alongside, and its start is one conditional `UPDATE` that only one delivery can match. Every
end (complete, stopped, failed, interrupted) is a conditional update too, so nothing undoes
it. The text is relayed to the answer's Redis Stream as it comes and saved by the saver and
writer threads of `docqa.chat.writer`.
"""

from __future__ import annotations

import enum
import logging
import time
from concurrent.futures import Future
from contextlib import closing
from datetime import timedelta

import redis
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection
from django.utils import timezone
from django.utils.translation import gettext_noop as N_

from docqa import keys
from docqa.chat.models import FinishReason, Message, Role, State
from docqa.chat.prepare import PreparedRequest, answer_prepare, request_take
from docqa.chat.refusals import ChatRefused
from docqa.chat.streams import CONTENT, REASONING, AnswerPublisher, answer_end_publish
from docqa.chat.verification import answer_citations, answer_citations_store, texts_prefetch
from docqa.chat.writer import AnswerSaver, StreamingAnswer, answer_saver, answer_writer
from docqa.connections import moonshot_client
from docqa.locks import Lease, lease_is_held
from docqa.moonshot import MoonshotError, StreamInterrupted
from docqa.notes import note
from docqa.upstream import upstream_error_note

logger = logging.getLogger("docqa.chat.generation")

ANSWER_LOCK_TTL = 60
WORKER_DIED = N_("The worker writing this answer stopped before it was finished.")
TOOK_TOO_LONG = N_("Writing this answer took too long and was stopped.")


class AnswerDeadlinePassed(Exception):
    """The answer streamed for longer than DOCQA_ANSWER_DEADLINE (checked between deltas)."""


class GenerationOutcome(enum.StrEnum):
    """What one run of `answer_generate` did (the task's result, for logs and tests)."""

    # This run wrote the answer's final state.
    COMPLETE = State.COMPLETE
    STOPPED = State.STOPPED
    FAILED = State.FAILED
    INTERRUPTED = State.INTERRUPTED
    # Another delivery holds the answer's lock: this one did nothing.
    LOCKED = "locked"
    # The answer was already finished, or stopped or started by another delivery: nothing to do.
    FINISHED = "finished"
    # Finished elsewhere while streaming (stop, sweep, deleted conversation): the run let go quietly.
    ABANDONED = "abandoned"


def answer_lock(answer_id: int) -> Lease:
    # Renewed by the saver thread, not a thread of its own: one thread renews every answer.
    return Lease(keys.answer_lock(answer_id), ttl=ANSWER_LOCK_TTL)


def answer_finish(answer_id: int, *, state: str, **fields) -> bool:
    """Record an answer's end (if it is still streaming) and tell its listeners."""
    now = timezone.now()
    done = Message.objects.filter(pk=answer_id, state=State.STREAMING).update(
        state=state, finished_at=now, heartbeat_at=now, **fields
    )
    if done:
        answer_end_publish(answer_id)
    return bool(done)


def _answer_mark_started(answer_id: int, prepared: PreparedRequest) -> bool:
    """Record that this delivery generates the answer; False when it was stopped or started elsewhere."""
    now = timezone.now()
    return bool(
        Message.objects.filter(pk=answer_id, state=State.STREAMING, started_at__isnull=True).update(
            started_at=now,
            heartbeat_at=now,
            model=prepared.model,
            dropped_turns=prepared.dropped_turns,
            max_completion_tokens=prepared.max_completion_tokens,
        )
    )


def answer_generate(*, answer_id: int, saver: AnswerSaver = answer_saver) -> GenerationOutcome:
    """Stream one answer from Moonshot into its Redis Stream and the database.

    Runs at most once per answer: a lock keeps a duplicate delivery from running alongside,
    and a delivery that finds the answer already started (its worker died) marks it
    interrupted, keeping the saved text, instead of generating a second time. The request
    is prepared before the answer is marked started (one conditional `UPDATE` that also
    records the model and budget), and only the delivery whose `UPDATE` matched streams.
    `saver` saves the text while it streams (the process's own, unless a test drives one).
    """
    lock = answer_lock(answer_id)
    if not lock.acquire():
        return GenerationOutcome.LOCKED
    try:
        prepared, stop = request_take(answer_id)
        if prepared is not None and not stop:
            # The ask built the request: straight to Moonshot (the start is still recorded
            # conditionally, so a stopped answer is not generated).
            return _answer_stream(answer_id, lock, prepared, saver)
        answer = (
            Message.objects.select_related("conversation", "question")
            .filter(pk=answer_id, role=Role.ASSISTANT)
            .first()
        )
        if answer is None or answer.state != State.STREAMING:
            return GenerationOutcome.FINISHED
        if answer.started_at is not None:
            answer_finish(answer_id, state=State.INTERRUPTED, error=note(WORKER_DIED))
            return GenerationOutcome.INTERRUPTED
        return _answer_prepare_and_stream(answer, lock, saver)
    finally:
        lock.release()


def _answer_prepare_and_stream(answer: Message, lock: Lease, saver: AnswerSaver) -> GenerationOutcome:
    now = timezone.now()
    if AnswerPublisher(answer.pk).stop_requested():
        answer_finish(answer.pk, state=State.STOPPED, started_at=now)
        return GenerationOutcome.STOPPED
    try:
        prepared = answer_prepare(answer=answer)
    except ChatRefused as exc:
        answer_finish(answer.pk, state=State.FAILED, error=exc.message, started_at=now)
        return GenerationOutcome.FAILED
    except MoonshotError as exc:
        answer_finish(answer.pk, state=State.FAILED, error=upstream_error_note(exc), started_at=now)
        return GenerationOutcome.FAILED
    # Nothing below reads the database from this thread: its connection goes back now rather
    # than when the answer ends (a thousand streaming answers must not hold a thousand).
    if not connection.in_atomic_block:
        connection.close()
    return _answer_stream(answer.pk, lock, prepared, saver)


def _answer_stream(
    answer_id: int, lock: Lease, prepared: PreparedRequest, saver: AnswerSaver
) -> GenerationOutcome:
    publisher = AnswerPublisher(answer_id)
    # The start is recorded on the writer thread once Moonshot has accepted the request, while
    # it works on the first token; no delta is published before the record is known to have
    # matched. When it did not (the answer was stopped, or another delivery started it,
    # meanwhile) the stream is closed unread.
    start: Future | None = None
    confirmed = False

    def start_record() -> None:
        nonlocal start
        if start is None:
            start = answer_writer.submit(_answer_mark_started, answer_id, prepared)

    def start_confirmed() -> bool:
        nonlocal confirmed
        if not confirmed:
            start_record()
            confirmed = start.result()
        return confirmed

    streaming = StreamingAnswer(answer_id, lock, publisher)
    if prepared.prefix or prepared.prefix_reasoning:
        # A continuation appends to the text so far (the saver writes the whole).
        streaming.content.append(prepared.prefix)
        streaming.reasoning.append(prepared.prefix_reasoning)
    # The documents' texts load and normalise while the model writes; the quotes are checked
    # once, when the answer ends, and stored with its final state.
    texts = texts_prefetch(prepared.document_ids)

    def progress() -> dict:
        streaming.flush()  # every delta handed over is sent (or its failure known) first
        fields = streaming.progress()
        if fields["content"]:
            fields["citations"] = answer_citations(fields["content"], prepared.document_ids, texts)
        return fields

    # The threads pool ignores Celery's time limits: the deadline is checked here.
    deadline = time.monotonic() + settings.DOCQA_ANSWER_DEADLINE
    usage: dict = {}
    finish_reason = ""
    stopped = False
    saver.add(streaming)
    try:
        stream = moonshot_client().chat_completion_stream_batches(
            model=prepared.model, messages=prepared.messages, on_sent=start_record, **prepared.params()
        )
        with closing(stream):
            # Chunks that arrived together (the relay fell behind) go out as one entry per kind.
            for chunks in stream:
                if not confirmed and not start_confirmed():
                    return GenerationOutcome.FINISHED
                pieces: list[tuple[str, str]] = []
                for chunk in chunks:
                    if chunk.usage:
                        usage = chunk.usage
                    if chunk.finish_reason:
                        finish_reason = chunk.finish_reason
                    for kind, text in ((REASONING, chunk.reasoning_content), (CONTENT, chunk.content)):
                        if not text:
                            continue
                        if pieces and pieces[-1][0] == kind:
                            pieces[-1] = (kind, pieces[-1][1] + text)
                        else:
                            pieces.append((kind, text))
                if pieces and streaming.publish(pieces):
                    stopped = True
                    break
                if streaming.failure is not None:
                    raise streaming.failure
                if streaming.abandoned:
                    # Finished elsewhere (swept, or the conversation was deleted): stop quietly.
                    return GenerationOutcome.ABANDONED
                if time.monotonic() > deadline:
                    raise AnswerDeadlinePassed()
            streaming.flush()
            if streaming.failure is not None:
                raise streaming.failure
    except AnswerDeadlinePassed:
        logger.warning(
            "answer %s: still streaming after %s s, stopped", answer_id, settings.DOCQA_ANSWER_DEADLINE
        )
        answer_writer.call(
            answer_finish, answer_id, state=State.INTERRUPTED, error=note(TOOK_TOO_LONG), **progress()
        )
        return GenerationOutcome.INTERRUPTED
    except StreamInterrupted as exc:
        logger.warning("answer %s: stream cut: %s", answer_id, exc)
        if not start_confirmed():
            return GenerationOutcome.FINISHED
        answer_writer.call(
            answer_finish, answer_id, state=State.INTERRUPTED, error=upstream_error_note(exc), **progress()
        )
        return GenerationOutcome.INTERRUPTED
    except MoonshotError as exc:
        logger.warning("answer %s failed: %s", answer_id, exc)
        if not start_confirmed():
            return GenerationOutcome.FINISHED
        # An error event after some text: a passing one (overloaded, server error) cut the
        # answer, which a retry may finish; any other (a content filter, say) failed it.
        mid_stream = bool(exc.partial_content or exc.partial_reasoning)
        state = State.INTERRUPTED if mid_stream and exc.retryable else State.FAILED
        answer_writer.call(
            answer_finish, answer_id, state=state, error=upstream_error_note(exc), **progress()
        )
        return GenerationOutcome(state)
    except BaseException as exc:
        # The soft time limit, Redis going away, or a crash: keep what arrived, say which,
        # and let the user retry.
        if isinstance(exc, SoftTimeLimitExceeded):
            reason = note(TOOK_TOO_LONG)
        elif isinstance(exc, redis.exceptions.ConnectionError):
            reason = note(N_("docqa lost its connection to Redis while writing this answer."))
        else:
            reason = note(WORKER_DIED)
        if start is not None:
            start.result(timeout=ANSWER_LOCK_TTL)  # its outcome does not matter: the finish is conditional
        answer_finish(answer_id, state=State.INTERRUPTED, error=reason, **progress())
        raise
    finally:
        saver.remove(streaming)
    if not start_confirmed():
        return GenerationOutcome.FINISHED
    state = State.STOPPED if stopped else State.COMPLETE
    answer_writer.call(
        answer_finish,
        answer_id,
        state=state,
        finish_reason=FinishReason.STOPPED if stopped else finish_reason,
        **usage_fields(usage, prepared.usage_before),
        **progress(),
    )
    return GenerationOutcome(state)


def usage_fields(usage: dict, before: dict | None = None) -> dict:
    """The answer's token counts from Moonshot's usage (plus a continued answer's earlier ones).

    `cached_tokens` is Moonshot's prefix cache (top level, or OpenAI-style under
    `prompt_tokens_details`); absent when not reported.
    """
    if not usage:
        return {}
    details = usage.get("prompt_tokens_details") or {}
    counts = {
        "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"),
        "cached_tokens": usage.get("cached_tokens", details.get("cached_tokens")),
    }
    for name, earlier in (before or {}).items():
        if counts.get(name) is not None:
            counts[name] += earlier
    return counts


def answers_sweep_stale() -> int:
    """Beat: mark interrupted the answers whose worker died (no lock, no heartbeat for a while)
    and those never started (their task was lost), keeping the text saved so far."""
    now = timezone.now()
    stale_started = Message.objects.filter(
        state=State.STREAMING,
        started_at__isnull=False,
        heartbeat_at__lt=now - timedelta(seconds=settings.DOCQA_ANSWER_STALE_AFTER),
    )
    never_started = Message.objects.filter(
        state=State.STREAMING,
        started_at__isnull=True,
        created_at__lt=now - timedelta(seconds=settings.DOCQA_ANSWER_QUEUE_TIMEOUT),
    )
    count = 0
    for answer_id in stale_started.values_list("pk", flat=True):
        if lease_is_held(keys.answer_lock(answer_id)):
            continue  # still being written, just slowly
        if answer_finish(answer_id, state=State.INTERRUPTED, error=note(WORKER_DIED)):
            count += 1
            answer_citations_store(answer_id)
    for answer_id in never_started.values_list("pk", flat=True):
        count += answer_finish(
            answer_id, state=State.INTERRUPTED, error=note(N_("This answer was never started. Please retry."))
        )
    return count
