"""Generating answers end to end: a real Celery worker, real Redis, the emulator over HTTP.

Faults are injected in the emulator, not patched in. What the saver threads do while an answer
streams is in test_writer.py; the SSE view in test_sse.py.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from docqa import keys
from docqa.chat import catalogue, generation, services
from docqa.chat.generation import GenerationOutcome
from docqa.chat.models import Message, Role, State
from docqa.connections import redis_client
from docqa.documents import services as document_services
from docqa.documents.models import Status
from tests.chat.helpers import ask, finished, stream_text
from tests.conftest import wait_for
from tests.factories import exchange_create


def test_answer_streams_to_complete_with_usage(celery_worker, conversation, emu):
    emu.control.configure(chunk_delay=0.01)
    answer = ask(conversation)
    done = wait_for(lambda: finished(answer.pk), message="answer finished")
    assert done.state == State.COMPLETE, done.error
    assert "twelve percent" in done.content
    assert done.finish_reason == "stop"
    assert done.prompt_tokens and done.completion_tokens
    assert done.model == "kimi-k2-turbo-preview"
    assert done.started_at <= done.first_token_at <= done.finished_at
    content, _ = stream_text(answer.pk)
    assert content == done.content
    ttl = redis_client().ttl(keys.answer_stream(answer.pk))
    assert 0 < ttl <= 600
    entries = redis_client().xrange(keys.answer_stream(answer.pk))
    assert entries[-1][1] == {"k": "end"}


def test_thinking_model_streams_reasoning_apart(celery_worker, conversation):
    catalogue.models_refresh()
    services.conversation_set_model(conversation=conversation, model="kimi-k2-thinking")
    answer = ask(conversation)
    done = wait_for(lambda: finished(answer.pk), message="answer finished")
    assert done.state == State.COMPLETE
    assert done.reasoning and done.content
    assert done.reasoning not in done.content
    assert stream_text(answer.pk) == (done.content, done.reasoning)


def test_moonshot_v1_auto_picks_the_smallest_window(celery_worker, conversation):
    services.conversation_set_model(conversation=conversation, model="moonshot-v1-auto")
    answer = ask(conversation)
    done = wait_for(lambda: finished(answer.pk), message="answer finished")
    assert done.state == State.COMPLETE and done.model == "moonshot-v1-8k"


def test_rate_limited_once_then_answers(celery_worker, conversation, emu):
    emu.control.add_fault(
        "POST", "/v1/chat/completions", status=429, error_type="rate_limit_reached_error", count=1
    )
    answer = ask(conversation)
    done = wait_for(lambda: finished(answer.pk), timeout=30, message="answer finished")
    assert done.state == State.COMPLETE and "twelve percent" in done.content


@pytest.mark.parametrize(
    ("status", "error_type", "words"),
    [
        (500, "server_error", "server error"),
        (429, "exceeded_current_quota_error", "run out of quota"),
        (401, "invalid_authentication_error", "rejected the API key"),
    ],
)
def test_errors_fail_the_answer_in_plain_words_and_keep_the_question(
    celery_worker, conversation, emu, status, error_type, words
):
    emu.control.add_fault("POST", "/v1/chat/completions", status=status, error_type=error_type, count=None)
    answer = ask(conversation)
    done = wait_for(lambda: finished(answer.pk), timeout=30, message="answer finished")
    assert done.state == State.FAILED
    assert words in done.error_display
    assert Message.objects.filter(role=Role.USER, content__startswith="How much").exists()
    emu.control.clear_faults()
    retried = services.answer_regenerate(answer=done)
    assert wait_for(lambda: finished(retried.pk), message="retried").state == State.COMPLETE


def test_cut_stream_keeps_the_partial_text_as_interrupted(celery_worker, conversation, emu):
    emu.control.configure(chunk_delay=0.01)
    emu.control.add_fault("POST", "/v1/chat/completions", kind="cut_stream", after_chunks=4, count=1)
    answer = ask(conversation)
    done = wait_for(lambda: finished(answer.pk), timeout=30, message="answer finished")
    assert done.state == State.INTERRUPTED
    assert done.content, "the partial text is kept"
    assert stream_text(answer.pk)[0] == done.content
    assert "cut" in done.error_display


def test_stop_keeps_what_came(celery_worker, conversation, emu):
    emu.control.configure(chunk_delay=0.05, chunk_size_words=1)
    answer = ask(conversation)
    wait_for(lambda: stream_text(answer.pk)[0], message="some text")
    services.answer_stop(answer=Message.objects.get(pk=answer.pk))
    done = wait_for(lambda: finished(answer.pk), message="answer stopped")
    assert done.state == State.STOPPED
    assert done.content and done.content == stream_text(answer.pk)[0]
    full = services.answer_regenerate(answer=done)
    emu.control.configure(chunk_delay=0.0, chunk_size_words=4)
    complete = wait_for(lambda: finished(full.pk), message="regenerated")
    assert complete.content.startswith(done.content.strip()[:20])
    assert len(complete.content) > len(done.content)


def test_a_second_delivery_never_generates_again(transactional_db, conversation, emu):
    _question, answer = exchange_create(
        conversation=conversation, state=State.STREAMING, content="half an ans", started_at=timezone.now()
    )
    before = emu.control.stats()["requests"].get("POST /v1/chat/completions", 0)
    # While the first run holds the lock, a duplicate does nothing at all.
    lock = generation.answer_lock(answer.pk)
    assert lock.acquire()
    assert generation.answer_generate(answer_id=answer.pk) == GenerationOutcome.LOCKED
    lock.release()
    # After its worker died, the redelivery marks it interrupted with the saved text.
    assert generation.answer_generate(answer_id=answer.pk) == GenerationOutcome.INTERRUPTED
    answer.refresh_from_db()
    assert answer.state == State.INTERRUPTED and answer.content == "half an ans"
    assert emu.control.stats()["requests"].get("POST /v1/chat/completions", 0) == before


def test_sweep_interrupts_answers_whose_worker_died(transactional_db, conversation, settings):
    old = timezone.now() - timedelta(seconds=settings.DOCQA_ANSWER_STALE_AFTER + 5)

    def streaming(**fields) -> Message:
        return exchange_create(conversation=conversation, state=State.STREAMING, **fields)[1]

    dead = streaming(content="so far", started_at=old, heartbeat_at=old)
    alive = streaming(started_at=old, heartbeat_at=old)
    fresh = streaming(started_at=timezone.now(), heartbeat_at=timezone.now())
    lost = streaming()
    Message.objects.filter(pk=lost.pk).update(
        created_at=timezone.now() - timedelta(seconds=settings.DOCQA_ANSWER_QUEUE_TIMEOUT + 5)
    )
    lock = generation.answer_lock(alive.pk)
    lock.acquire()
    try:
        assert generation.answers_sweep_stale() == 2
    finally:
        lock.release()
    states = dict(Message.objects.filter(role=Role.ASSISTANT).values_list("pk", "state"))
    assert states == {
        dead.pk: State.INTERRUPTED,
        alive.pk: State.STREAMING,
        fresh.pk: State.STREAMING,
        lost.pk: State.INTERRUPTED,
    }
    assert Message.objects.get(pk=dead.pk).content == "so far"
    assert redis_client().xrange(keys.answer_stream(dead.pk))[-1][1] == {"k": "end"}


def test_documents_through_the_real_pipeline(celery_worker, user):
    data = b"Bergen harbour handled 4,200 ships in 2023, most of them ferries.\n"
    uploaded = SimpleUploadedFile("harbour.txt", data)
    document = document_services.document_upload(
        owner=user, uploaded_file=uploaded, sha256=hashlib.sha256(data).hexdigest()
    ).document
    wait_for(
        lambda: document.stored_file.__class__.objects.get(pk=document.stored_file_id).status == Status.READY,
        message="ready",
    )
    conversation = services.conversation_create(owner=user, document_ids=[document.pk], language="en")
    answer = ask(conversation, "How many ships did Bergen harbour handle?")
    done = wait_for(lambda: finished(answer.pk), message="answer")
    assert done.state == State.COMPLETE and "4,200" in done.content
    # Moonshot knows the file by its neutral stored name; the prompt maps it to the user's.
    assert "harbour.txt" in done.content and "docqa-" not in done.content
