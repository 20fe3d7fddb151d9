"""The one thread per worker process that sends every streaming answer's deltas (real Redis)."""

from __future__ import annotations

import threading

import pytest
import redis

from docqa import keys
from docqa.chat.streams import CONTENT, PublishBatcher, answer_stop_request
from docqa.connections import redis_client


def texts(answer_id: int) -> list[str]:
    return [fields["t"] for _id, fields in redis_client().xrange(keys.answer_stream(answer_id))]


def test_many_answers_publish_in_order_in_fewer_rounds_each_with_its_own_result():
    batcher = PublishBatcher()
    answers, steps = 40, 5
    answer_stop_request(7)  # answer 7 was asked to stop
    results: dict[int, list] = {}
    start = threading.Barrier(answers)

    def relay(answer_id: int) -> None:
        start.wait()
        results[answer_id] = [
            batcher.publish(
                keys.answer_stream(answer_id),
                keys.answer_stop(answer_id),
                [(CONTENT, f"{answer_id}.{step}a"), (CONTENT, f"{answer_id}.{step}b")],
                expire=step == 0,
            )
            for step in range(steps)
        ]

    threads = [threading.Thread(target=relay, args=(i,)) for i in range(answers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    for answer_id in range(answers):
        assert texts(answer_id) == [f"{answer_id}.{s}{half}" for s in range(steps) for half in "ab"]
        entries = redis_client().xrange(keys.answer_stream(answer_id))
        # Each publish returns its own last entry id, and whether that answer was stopped.
        assert [last for last, _stopped in results[answer_id]] == [entries[i][0] for i in range(1, 10, 2)]
        assert {stopped for _last, stopped in results[answer_id]} == {answer_id == 7}
        assert redis_client().ttl(keys.answer_stream(answer_id)) > 0
    assert batcher.rounds < answers * steps


def test_an_answers_error_reaches_it_and_the_batcher_goes_on():
    batcher = PublishBatcher()
    redis_client().set(keys.answer_stream(2), "not a stream")
    with pytest.raises(redis.exceptions.ResponseError, match="WRONGTYPE"):
        batcher.publish(keys.answer_stream(2), keys.answer_stop(2), [(CONTENT, "x")], expire=True)
    last, stopped = batcher.publish(keys.answer_stream(3), keys.answer_stop(3), [(CONTENT, "y")], expire=True)
    assert last and not stopped and texts(3) == ["y"]


def _streaming(answer_id: int):
    from docqa.chat.streams import AnswerPublisher
    from docqa.chat.writer import StreamingAnswer
    from docqa.locks import Lease

    return StreamingAnswer(answer_id, Lease(keys.answer_lock(answer_id), ttl=60), AnswerPublisher(answer_id))


def test_a_task_hands_over_its_deltas_without_waiting_and_a_save_never_runs_ahead_of_the_stream():
    """The task thread goes on reading the upstream while its deltas are sent; what a save sees
    is always the text up to its cursor, whatever moment it looks."""
    streaming = _streaming(11)
    snapshots = []
    for step in range(200):
        streaming.publish([(CONTENT, f"{step},")])
        snapshots.append(streaming.progress())
    streaming.flush()
    final = streaming.progress()
    entries = redis_client().xrange(keys.answer_stream(11))
    assert (
        final["content"] == "".join(f"{step}," for step in range(200)) == "".join(f["t"] for _i, f in entries)
    )
    assert final["stream_cursor"] == entries[-1][0]
    by_id = {entry_id: index for index, (entry_id, _fields) in enumerate(entries)}
    for snapshot in snapshots:
        # The snapshot's text is exactly the stream up to (and including) its cursor.
        upto = by_id[snapshot["stream_cursor"]] + 1 if snapshot["stream_cursor"] else 0
        assert snapshot["content"] == "".join(f["t"] for _i, f in entries[:upto])
    # Not every publish waited for its round: some snapshots were taken with a delta still out.
    assert any(s["content"] != "".join(f"{k}," for k in range(i + 1)) for i, s in enumerate(snapshots))
    assert streaming.failure is None and streaming.first_token_at is not None


def test_a_refused_publish_keeps_its_text_and_fails_the_task_at_its_next_look():
    streaming = _streaming(12)
    streaming.publish([(CONTENT, "saved ")])
    streaming.flush()
    redis_client().delete(keys.answer_stream(12))
    redis_client().set(keys.answer_stream(12), "not a stream")
    streaming.publish([(CONTENT, "kept")])
    streaming.flush()
    assert isinstance(streaming.failure, redis.exceptions.ResponseError)
    assert streaming.progress()["content"] == "saved kept"


def test_stop_is_seen_by_the_next_publish():
    streaming = _streaming(13)
    assert streaming.publish([(CONTENT, "a")]) is False
    answer_stop_request(13)
    streaming.flush()
    streaming.publish([(CONTENT, "b")])
    streaming.flush()
    assert streaming.publish([(CONTENT, "c")]) is True
