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
