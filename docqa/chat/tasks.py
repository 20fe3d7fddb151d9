"""Celery tasks for chat, on the `answers` queue (a threads pool: one thread per streaming answer)."""

from __future__ import annotations

import logging

from celery import shared_task

from docqa.chat import services

logger = logging.getLogger("docqa.chat.tasks")


@shared_task(acks_late=True, reject_on_worker_lost=True, ignore_result=True)
def answer_generate(answer_id: int) -> str:
    """Stream one answer into Redis and the database.

    Acknowledged only when done, so a killed worker's answer is delivered again; that
    second delivery finds the answer started and marks it interrupted (never a second
    generation). `answers_sweep_stale` catches the rest.
    """
    return services.answer_generate(answer_id=answer_id)


@shared_task(ignore_result=True)
def answers_sweep_stale() -> int:
    """Beat: no answer stays `streaming` after its worker died."""
    count = services.answers_sweep_stale()
    if count:
        logger.warning("marked %s stale answers interrupted", count)
    return count


@shared_task(ignore_result=True)
def models_refresh() -> int:
    """Refresh the cached model list (`GET /v1/models`)."""
    return len(services.models_refresh())
