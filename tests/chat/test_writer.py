"""Saving an answer while it streams: the saver's rounds, each a consistent snapshot, and none after the end.

The saver's clock is taken out of the tests that count saves: `AnswerSaver(interval=None)`
runs no thread, and the test runs each round itself with `save_round()` at the moments it
chooses, while the emulator streams the answer at its own pace.
"""

from __future__ import annotations

from docqa import keys
from docqa.chat import generation, services
from docqa.chat.generation import GenerationOutcome
from docqa.chat.models import Message, State
from docqa.chat.writer import AnswerSaver
from docqa.connections import redis_client
from tests.chat.helpers import ask, finished, run_in_thread, stream_text
from tests.conftest import wait_for
from tests.factories import exchange_create


def test_text_is_saved_while_streaming(celery_worker, conversation, emu):
    emu.control.configure(chunk_delay=0.1, chunk_size_words=1)
    answer = ask(conversation)
    saved = wait_for(
        lambda: Message.objects.filter(pk=answer.pk).exclude(content="").first(), timeout=5, message="a save"
    )
    assert saved.state == State.STREAMING and saved.stream_cursor
    services.answer_stop(answer=saved)
    wait_for(lambda: finished(answer.pk), message="stopped")


def _streaming_answer(conversation) -> Message:
    """A question and its answer as the ask leaves them: `streaming`, not started."""
    return exchange_create(
        conversation=conversation, question="How did revenue grow?", state=State.STREAMING
    )[1]


def test_each_save_round_writes_the_stream_so_far_consistently(transactional_db, conversation, emu):
    emu.control.configure(chunk_delay=0.1, chunk_size_words=1)
    answer = _streaming_answer(conversation)
    saver = AnswerSaver(interval=None)
    thread, result = run_in_thread(lambda: generation.answer_generate(answer_id=answer.pk, saver=saver))
    saved: list[int] = []
    for _round in range(2):
        # A round once the stream has grown past the last save: the saved text must grow with it.
        published = saved[-1] if saved else 0
        wait_for(lambda p=published: len(stream_text(answer.pk)[0]) > p, message="more text")
        assert saver.save_round(), "the answer is still streaming"
        row = Message.objects.get(pk=answer.pk)
        assert row.state == State.STREAMING and row.content
        # Each save is consistent: its text is exactly the stream up to its cursor.
        entries = redis_client().xrange(keys.answer_stream(answer.pk), max=row.stream_cursor)
        assert "".join(f.get("t", "") for _i, f in entries if f.get("k") == "c") == row.content
        assert row.first_token_at is not None and row.started_at <= row.first_token_at
        saved.append(len(row.content))
    thread.join(timeout=30)
    assert not thread.is_alive() and result["value"] == GenerationOutcome.COMPLETE
    done = Message.objects.get(pk=answer.pk)
    assert saved[0] < saved[1] < len(done.content), f"saved text should grow mid-stream: {saved}"
    assert done.first_token_at and done.started_at <= done.first_token_at <= done.finished_at
    assert done.model and done.max_completion_tokens


def test_an_answer_finished_elsewhere_makes_the_task_stop_quietly(transactional_db, conversation, emu):
    emu.control.configure(chunk_delay=0.1, chunk_size_words=1)
    answer = _streaming_answer(conversation)
    saver = AnswerSaver(interval=None)
    thread, result = run_in_thread(lambda: generation.answer_generate(answer_id=answer.pk, saver=saver))
    wait_for(lambda: stream_text(answer.pk)[0], message="some text")
    # The sweep (or a deleted conversation) finishes it while the task still streams.
    Message.objects.filter(pk=answer.pk).update(state=State.INTERRUPTED, content="kept by the sweep")
    assert saver.save_round()  # the round finds the row finished and tells the task
    thread.join(timeout=10)
    assert not thread.is_alive() and result["value"] == GenerationOutcome.ABANDONED
    # The task left the saver as it ended: no later round can overwrite what the sweep kept.
    assert not saver.save_round()
    row = Message.objects.get(pk=answer.pk)
    assert row.state == State.INTERRUPTED and row.content == "kept by the sweep"
    assert not redis_client().exists(keys.answer_lock(answer.pk))


def test_an_answer_with_nothing_new_is_written_only_now_and_then(transactional_db):
    """Queued answers (a busy account) or a silent model: no UPDATE a second each, but a heartbeat
    every IDLE_SAVE_INTERVAL, and every change at the next round."""
    from docqa.chat.streams import CONTENT, AnswerPublisher
    from docqa.chat.writer import IDLE_SAVE_INTERVAL, StreamingAnswer
    from docqa.locks import Lease

    streaming = StreamingAnswer(21, Lease(keys.answer_lock(21), ttl=60), AnswerPublisher(21))
    assert streaming.progress_if_due(100.0) is not None  # the first round writes its heartbeat
    assert streaming.progress_if_due(101.0) is None
    assert streaming.progress_if_due(100.0 + IDLE_SAVE_INTERVAL) is not None
    streaming.publish([(CONTENT, "news")])
    streaming.flush()
    assert streaming.progress_if_due(100.5 + IDLE_SAVE_INTERVAL)["content"] == "news"
    assert streaming.progress_if_due(101.0 + IDLE_SAVE_INTERVAL) is None
