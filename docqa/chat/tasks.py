"""Celery tasks for chat, on the `answers` queue (a threads pool: one thread per streaming answer).

Data flows one way: views → services → tasks → generation/catalogue. Services import this
module to queue a task (after the transaction commits); the task bodies call down into
`docqa.chat.generation` and `docqa.chat.catalogue`, and nothing here imports services.

Unlike the ingest tasks, these are acknowledged when they start, not when they end. An
answer's message left unacknowledged while it streams (for minutes) is what crashed the
answers worker whenever its connection to Redis broke: kombu then restores unacknowledged
messages through the connection it has just closed and raises (the bug class of
celery/kombu#582 and #970), and the worker exits. Acknowledged at the start, a streaming
answer holds no message, so the worker rides out the outage and reconnects. Nothing is lost
by it: an answer whose worker died is marked interrupted, with the text saved so far, by
`answers_sweep_stale` once its heartbeat stops, and a duplicate delivery (a message handed
out twice) still never generates twice (the answer's lock and its conditional start).
"""

from __future__ import annotations

import logging

from celery import shared_task

from docqa.chat import catalogue, generation

logger = logging.getLogger("docqa.chat.tasks")


@shared_task(acks_late=False, ignore_result=True)
def answer_generate(answer_id: int) -> str:
    """Stream one answer into Redis and the database; returns a `GenerationOutcome`.

    Runs at most once per answer: a delivery that finds it started marks it interrupted
    instead of generating again; `answers_sweep_stale` catches an answer whose worker died.
    """
    return generation.answer_generate(answer_id=answer_id)


@shared_task(acks_late=False, ignore_result=True)
def answers_sweep_stale() -> int:
    """Beat: no answer stays `streaming` after its worker died."""
    count = generation.answers_sweep_stale()
    if count:
        logger.warning("marked %s stale answers interrupted", count)
    return count


@shared_task(name=catalogue.MODELS_REFRESH_TASK, acks_late=False, ignore_result=True)
def models_refresh() -> int:
    """Refresh the cached model list (`GET /v1/models`)."""
    return len(catalogue.models_refresh())
