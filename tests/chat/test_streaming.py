"""The streaming path end to end: a real Celery worker, real Redis, the emulator over HTTP,
and the async SSE view under uvicorn. Faults are injected in the emulator, not patched in."""

from __future__ import annotations

import hashlib
import html
import time
from datetime import timedelta

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from docqa import keys
from docqa.chat import catalogue, generation, services, writer
from docqa.chat.models import Message, Role, State
from docqa.chat.streams import CONTENT, REASONING, AnswerPublisher
from docqa.connections import redis_client
from docqa.documents import services as document_services
from docqa.documents.models import Status
from docqa.moonshot import MoonshotClient
from tests.conftest import wait_for


def finished(answer_id: int) -> Message | None:
    answer = Message.objects.get(pk=answer_id)
    return answer if answer.state != State.STREAMING else None


def ask(conversation, question="How much did the quarterly revenue grow?"):
    return services.conversation_ask(conversation=conversation, question=question)[1]


def stream_text(answer_id: int) -> tuple[str, str]:
    entries = redis_client().xrange(keys.answer_stream(answer_id))
    content = "".join(f.get("t", "") for _i, f in entries if f.get("k") == "c")
    reasoning = "".join(f.get("t", "") for _i, f in entries if f.get("k") == "r")
    return content, reasoning


@pytest.fixture
def conversation(user, make_conversation, make_document):
    documents = [
        make_document(
            user,
            "acme.txt",
            text="Acme quarterly revenue grew by twelve percent, driven by exports to Norway.",
        ),
        make_document(
            user, "weather.txt", text="Spring in Oslo was unusually dry; rainfall fell by a third."
        ),
    ]
    return make_conversation(user, documents)


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


def test_request_carries_documents_byte_for_byte_cache_key_and_hashed_user(
    celery_worker, conversation, user, monkeypatch
):
    seen = []
    original = MoonshotClient.chat_completion_stream_batches

    def spy(self, **kwargs):
        seen.append(kwargs)
        return original(self, **kwargs)

    monkeypatch.setattr(MoonshotClient, "chat_completion_stream_batches", spy)
    first = ask(conversation, "What grew?")
    wait_for(lambda: finished(first.pk), message="first answer")
    second = ask(conversation, "And the rain?")
    wait_for(lambda: finished(second.pk), message="second answer")
    one, two = seen
    raws = [d.stored_file.content_raw for d in conversation.ordered_documents()]
    assert [m["content"] for m in one["messages"][1:3]] == raws
    assert one["messages"][0]["content"].startswith("You are Kimi")
    assert two["messages"][:3] == one["messages"][:3]
    assert two["messages"][3:] == [
        {"role": "user", "content": "What grew?"},
        {"role": "assistant", "content": Message.objects.get(pk=first.pk).content},
        {"role": "user", "content": "And the rain?"},
    ]
    assert one["prompt_cache_key"] == two["prompt_cache_key"] == str(conversation.pk)
    assert one["safety_identifier"] == two["safety_identifier"]
    assert user.username not in one["safety_identifier"] and str(user.pk) != one["safety_identifier"]


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


def test_text_is_saved_while_streaming(celery_worker, conversation, emu):
    emu.control.configure(chunk_delay=0.1, chunk_size_words=1)
    answer = ask(conversation)
    saved = wait_for(
        lambda: Message.objects.filter(pk=answer.pk).exclude(content="").first(), timeout=5, message="a save"
    )
    assert saved.state == State.STREAMING and saved.stream_cursor
    services.answer_stop(answer=saved)
    wait_for(lambda: finished(answer.pk), message="stopped")


def test_a_second_delivery_never_generates_again(transactional_db, conversation, emu):
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="q")
    answer = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        question=question,
        state=State.STREAMING,
        content="half an ans",
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    before = emu.control.stats()["requests"].get("POST /v1/chat/completions", 0)
    # While the first run holds the lock, a duplicate does nothing at all.
    lock = generation.answer_lock(answer.pk)
    assert lock.acquire()
    assert generation.answer_generate(answer_id=answer.pk) == "locked"
    lock.release()
    # After its worker died, the redelivery marks it interrupted with the saved text.
    assert generation.answer_generate(answer_id=answer.pk) == "interrupted"
    answer.refresh_from_db()
    assert answer.state == State.INTERRUPTED and answer.content == "half an ans"
    assert emu.control.stats()["requests"].get("POST /v1/chat/completions", 0) == before


def test_sweep_interrupts_answers_whose_worker_died(transactional_db, conversation, settings):
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="q")
    old = timezone.now() - timedelta(seconds=settings.DOCQA_ANSWER_STALE_AFTER + 5)
    dead = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        question=question,
        state=State.STREAMING,
        content="so far",
        started_at=old,
        heartbeat_at=old,
    )
    alive = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        question=question,
        state=State.STREAMING,
        started_at=old,
        heartbeat_at=old,
    )
    fresh = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        question=question,
        state=State.STREAMING,
        started_at=timezone.now(),
        heartbeat_at=timezone.now(),
    )
    lost = Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, question=question, state=State.STREAMING
    )
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


# --- the SSE view -------------------------------------------------------------------------


class SSEReader:
    """A minimal EventSource: yields (event, data, id) from a streamed response."""

    def __init__(self, session: requests.Session, url: str, last_event_id: str | None = None):
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.response = session.get(url, headers=headers, stream=True, timeout=30)
        self.response.raise_for_status()

    def events(self):
        event, data, entry_id = "message", [], None
        for raw in self.response.iter_lines(chunk_size=1, decode_unicode=True):
            if raw == "":
                if data:
                    yield event, "\n".join(data), entry_id
                event, data, entry_id = "message", [], None
                continue
            if raw.startswith(":"):
                continue
            name, _, value = raw.partition(":")
            value = value[1:] if value.startswith(" ") else value
            if name == "event":
                event = value
            elif name == "data":
                data.append(value)
            elif name == "id":
                entry_id = value

    def close(self):
        self.response.close()


def apply(events, text=""):
    """Apply SSE events as the page does: snapshot replaces, delta appends; stop at done."""
    last_id = None
    for event, data, entry_id in events:
        if event == "snapshot-content":
            text = html.unescape(data)
        elif event == "content":
            text += html.unescape(data)
        elif event == "done":
            return text, last_id, data
        last_id = entry_id or last_id
    return text, last_id, None


def test_sse_streams_in_steps_and_matches_the_database(celery_worker, session, conversation, emu):
    emu.control.configure(chunk_delay=0.03)
    answer = ask(conversation)
    url = f"{session.base}/chat/answers/{answer.pk}/stream/"
    started = time.monotonic()
    reader = SSEReader(session, url)
    assert reader.response.headers["Cache-Control"] == "no-cache"
    assert reader.response.headers["X-Accel-Buffering"] == "no"
    seen, first_delta_at = [], None
    for item in reader.events():
        seen.append(item)
        if item[0] == "content" and first_delta_at is None:
            first_delta_at = time.monotonic() - started
        if item[0] == "done":
            break
    reader.close()
    text, _, done_html = apply(iter(seen))
    deltas = [s for s in seen if s[0] == "content"]
    assert len(deltas) > 3 and all(s[2] for s in deltas), "each delta carries its stream id"
    final = Message.objects.get(pk=answer.pk)
    assert text == final.content
    assert 'data-state="complete"' in done_html
    print(f"time to first delta through the SSE view: {first_delta_at * 1000:.0f} ms")


def test_sse_resume_with_last_event_id_and_with_snapshot(celery_worker, session, conversation, emu):
    emu.control.configure(chunk_delay=0.05, chunk_size_words=2)
    answer = ask(conversation)
    url = f"{session.base}/chat/answers/{answer.pk}/stream/"
    reader = SSEReader(session, url)
    partial, last_id = "", None
    for event, data, entry_id in reader.events():
        if event == "snapshot-content":
            partial = html.unescape(data)
        elif event == "content":
            partial += html.unescape(data)
            last_id = entry_id
            if len(partial) > 40:
                break
    reader.close()
    # A browser reconnecting by itself sends Last-Event-ID: the rest follows, nothing repeated.
    resumed = SSEReader(session, url, last_event_id=last_id)
    rest, _, _ = apply(resumed.events(), partial)
    resumed.close()
    # htmx's reconnect has no Last-Event-ID: the snapshot replaces what the page shows.
    final = Message.objects.get(pk=answer.pk)
    assert rest == final.content
    fresh = SSEReader(session, url)
    _, _, done_html = apply(fresh.events(), "garbage that must be replaced")
    fresh.close()
    assert done_html and 'data-state="complete"' in done_html


def test_sse_sends_entries_that_arrived_together_as_one_event_per_kind(
    transactional_db, session, conversation
):
    """No worker here: the answer stays `streaming` while the test writes its stream."""
    answer = ask(conversation)
    publisher = AnswerPublisher(answer.pk)
    first_id, _ = publisher.publish([(CONTENT, "a")])
    last_id, _ = publisher.publish([(CONTENT, "b"), (CONTENT, "<c>"), (REASONING, "r1"), (REASONING, "r2")])
    reader = SSEReader(session, f"{session.base}/chat/answers/{answer.pk}/stream/", last_event_id=first_id)
    items = reader.events()
    content, reasoning = next(items), next(items)
    reader.close()
    assert content[:2] == ("content", "b&lt;c&gt;")
    assert reasoning == ("reasoning", "r1r2", last_id)  # resuming after it repeats nothing
    assert content[2] and content[2] < last_id


def test_sse_snapshot_mid_stream_then_deltas(celery_worker, session, conversation, emu):
    emu.control.configure(chunk_delay=0.05, chunk_size_words=2)
    answer = ask(conversation)
    wait_for(lambda: len(stream_text(answer.pk)[0]) > 30, message="some text")
    reader = SSEReader(session, f"{session.base}/chat/answers/{answer.pk}/stream/")
    items = reader.events()
    first = next(items)
    assert first[0] == "snapshot-reasoning"
    second = next(items)
    assert second[0] == "snapshot-content" and len(second[1]) > 30
    text, _, done_html = apply(items, html.unescape(second[1]))
    reader.close()
    assert text == Message.objects.get(pk=answer.pk).content
    assert done_html


def test_sse_for_a_finished_answer_is_one_done_event_from_the_database(celery_worker, session, conversation):
    answer = ask(conversation)
    wait_for(lambda: finished(answer.pk), message="finished")
    redis_client().delete(keys.answer_stream(answer.pk))
    reader = SSEReader(session, f"{session.base}/chat/answers/{answer.pk}/stream/")
    items = list(reader.events())
    assert [i[0] for i in items] == ["done"]
    assert "twelve percent" in items[0][1]


def test_sse_404_for_another_user(asgi_server, client, other_user, conversation, transactional_db):
    question = Message.objects.create(conversation=conversation, role=Role.USER, content="q")
    answer = Message.objects.create(
        conversation=conversation, role=Role.ASSISTANT, question=question, state=State.STREAMING
    )
    client.force_login(other_user)
    response = requests.get(
        f"{asgi_server}/chat/answers/{answer.pk}/stream/",
        cookies={"sessionid": client.cookies["sessionid"].value},
        timeout=10,
    )
    assert response.status_code == 404
    assert requests.get(f"{asgi_server}/chat/answers/{answer.pk}/stream/", timeout=10).status_code == 404


def _run_in_thread(fn):
    """Run `fn` in a thread of its own (as a worker thread would), closing its connection after."""
    import threading

    from django.db import connection

    result: dict = {}

    def target():
        try:
            result["value"] = fn()
        finally:
            connection.close()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    return thread, result


def test_saves_keep_coming_while_a_slow_stream_relays(celery_worker, conversation, emu):
    # About 3 s of deltas: the saver thread writes the text each second beside the relay.
    emu.control.configure(chunk_delay=0.1, chunk_size_words=1)
    answer = ask(conversation)
    seen: list[tuple[int, str]] = []
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        row = Message.objects.get(pk=answer.pk)
        if row.state != State.STREAMING:
            break
        if row.content and (not seen or seen[-1][1] != row.content):
            seen.append((len(row.content), row.stream_cursor))
            # Each save is consistent: its text is exactly the stream up to its cursor.
            entries = redis_client().xrange(keys.answer_stream(answer.pk), max=row.stream_cursor)
            assert "".join(f.get("t", "") for _i, f in entries if f.get("k") == "c") == row.content
            assert row.first_token_at is not None and row.started_at <= row.first_token_at
        time.sleep(0.1)
    done = wait_for(lambda: finished(answer.pk), message="answer finished")
    assert done.state == State.COMPLETE
    lengths = [length for length, _cursor in seen]
    assert len(lengths) >= 2 and lengths == sorted(lengths), f"saved text should grow mid-stream: {lengths}"
    assert lengths[-1] < len(done.content)
    assert done.first_token_at and done.started_at <= done.first_token_at <= done.finished_at
    assert done.model and done.max_completion_tokens


def test_an_answer_finished_elsewhere_makes_the_task_stop_quietly(transactional_db, conversation, emu):
    emu.control.configure(chunk_delay=0.1, chunk_size_words=1)
    question = Message.objects.create(
        conversation=conversation, role=Role.USER, content="How did revenue grow?"
    )
    answer = Message.objects.create(
        conversation=conversation,
        role=Role.ASSISTANT,
        question=question,
        state=State.STREAMING,
        model=conversation.model,
        heartbeat_at=timezone.now(),
    )
    thread, result = _run_in_thread(lambda: generation.answer_generate(answer_id=answer.pk))
    wait_for(lambda: stream_text(answer.pk)[0], message="some text")
    # The sweep (or a deleted conversation) finishes it while the task still streams.
    Message.objects.filter(pk=answer.pk).update(state=State.INTERRUPTED, content="kept by the sweep")
    thread.join(timeout=10)
    assert not thread.is_alive() and result["value"] == "abandoned"
    time.sleep(writer.SAVE_INTERVAL * 1.5)  # no save after the end overwrites what the sweep kept
    row = Message.objects.get(pk=answer.pk)
    assert row.state == State.INTERRUPTED and row.content == "kept by the sweep"
    assert not redis_client().exists(keys.answer_lock(answer.pk))
