"""Streamed chat: against a raw socket server for timing, cuts and resets the emulator cannot
stage, then against the emulator's injected faults (retries while opening, never after)."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from docqa.moonshot import ServerError, StreamInterrupted
from tests.moonshot.rawserver import (
    chunk_event,
    end_chunked,
    reset,
    send_chunk,
    send_response,
    start_event_stream,
)

MESSAGES = [{"role": "user", "content": "hi"}]
STORY = [{"role": "user", "content": "Tell me a story about a lighthouse."}]


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "close-delimited"])
def test_each_event_is_yielded_while_the_server_still_holds_the_next(raw_server, make_client, chunked):
    """The server waits for the test to see an event before sending the next one; a client
    that buffered deltas would deadlock here (and fail on the timeout)."""
    seen = [threading.Event() for _ in range(3)]
    sent_at: list[float] = []

    def handler(request, conn):
        start_event_stream(conn, chunked=chunked)
        for index, text in enumerate(["Hel", "lo", "!"]):
            finish = "stop" if index == 2 else None
            sent_at.append(time.monotonic())
            send_chunk(conn, chunk_event(text, finish_reason=finish), chunked=chunked)
            if not seen[index].wait(5):
                return
        send_chunk(conn, b"data: [DONE]\n\n", chunked=chunked)
        if chunked:
            end_chunked(conn)

    server = raw_server(handler)
    client = make_client(server.base_url, read_timeout=3.0)
    texts = []
    for index, chunk in enumerate(client.chat_completion_stream(model="m", messages=MESSAGES)):
        texts.append(chunk.content)
        seen[index].set()
    # A buffering client never sees "Hel" before the server gives up waiting, and the cut
    # stream then fails this; no clock is needed to prove the events come one at a time.
    assert texts == ["Hel", "lo", "!"]
    assert len(sent_at) == 3
    assert server.requests[0].json()["stream"] is True


def test_batches_hold_what_one_read_completed_and_nothing_waits_for_more(raw_server, make_client):
    """Three events in one network write come as one batch; an event sent alone (the server
    holds the next until the client has seen it) comes alone, so batching adds no wait."""
    seen_alone = threading.Event()

    def handler(request, conn):
        start_event_stream(conn)
        send_chunk(conn, chunk_event("a") + chunk_event("b") + chunk_event("c"))
        send_chunk(conn, chunk_event("d"))
        if not seen_alone.wait(5):
            return
        send_chunk(conn, chunk_event("e", finish_reason="stop") + b"data: [DONE]\n\n")
        end_chunked(conn)

    client = make_client(raw_server(handler).base_url, read_timeout=3.0)
    batches = []
    for batch in client.chat_completion_stream_batches(model="m", messages=MESSAGES):
        batches.append([chunk.content for chunk in batch])
        if batch[-1].content == "d":
            seen_alone.set()
    assert "".join("".join(b) for b in batches) == "abcde"
    assert batches[0][:3] == ["a", "b", "c"]  # one write, one batch
    assert batches[-1] == ["e"]  # "d" was handed over before "e" was even sent


def test_event_split_across_network_writes_is_reassembled(raw_server, make_client):
    def handler(request, conn):
        start_event_stream(conn)
        event = chunk_event("你好", finish_reason="stop")
        for i in range(0, len(event), 7):
            send_chunk(conn, event[i : i + 7].replace(b"\n", b"\r\n"))
            time.sleep(0.001)
        send_chunk(conn, b": keep-alive\r\n\r\ndata: [DONE]\r\n\r\n")
        end_chunked(conn)

    client = make_client(raw_server(handler).base_url)
    chunks = list(client.chat_completion_stream(model="m", messages=MESSAGES))
    assert [c.content for c in chunks] == ["你好"]
    assert chunks[0].finish_reason == "stop"


def test_connection_reset_mid_stream_raises_interrupted_with_partial_text(raw_server, make_client, sleep):
    # The reset waits until the client has both chunks: a reset that overtook them would
    # discard them unread and make this a failure to open instead.
    both_received = threading.Event()

    def handler(request, conn):
        start_event_stream(conn)
        send_chunk(conn, chunk_event("Once upon", reasoning_content=""))
        send_chunk(conn, chunk_event(" a time"))
        both_received.wait(5)
        reset(conn)

    server = raw_server(handler)
    client = make_client(server.base_url)
    received = []
    with pytest.raises(StreamInterrupted) as caught:
        for chunk in client.chat_completion_stream(model="m", messages=MESSAGES):
            received.append(chunk.content)
            if len(received) == 2:
                both_received.set()
    assert received == ["Once upon", " a time"]
    assert caught.value.partial_content == "Once upon a time"
    assert caught.value.retryable
    # Events had flowed: no second request, no wait.
    assert len(server.requests) == 1
    assert sleep.waits == []


def test_clean_close_without_done_or_finish_reason_is_interrupted(raw_server, make_client):
    def handler(request, conn):
        start_event_stream(conn)
        send_chunk(conn, b'data: {"choices":[{"index":0,"delta":{"reasoning_content":"Let me"}}]}\n\n')
        send_chunk(conn, chunk_event("Partial"))
        end_chunked(conn)

    client = make_client(raw_server(handler).base_url)
    with pytest.raises(StreamInterrupted) as caught:
        list(client.chat_completion_stream(model="m", messages=MESSAGES))
    assert caught.value.partial_content == "Partial"
    assert caught.value.partial_reasoning == "Let me"


def test_finish_reason_without_done_completes(raw_server, make_client):
    def handler(request, conn):
        start_event_stream(conn)
        send_chunk(conn, chunk_event("All", finish_reason="stop"))
        end_chunked(conn)

    client = make_client(raw_server(handler).base_url)
    chunks = list(client.chat_completion_stream(model="m", messages=MESSAGES))
    assert [c.finish_reason for c in chunks] == ["stop"]


def test_usage_inside_choice_and_at_top_level(raw_server, make_client):
    usage = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}

    def handler(request, conn):
        start_event_stream(conn)
        send_chunk(conn, chunk_event("a", finish_reason="stop", usage=usage))
        send_chunk(conn, b'data: {"id":"x","choices":[],"usage":{"total_tokens":5}}\n\n')
        send_chunk(conn, b"data: [DONE]\n\n")
        end_chunked(conn)

    client = make_client(raw_server(handler).base_url)
    first, second = client.chat_completion_stream(model="m", messages=MESSAGES)
    assert first.usage == usage
    assert (second.content, second.finish_reason, second.usage) == ("", None, {"total_tokens": 5})


def test_reset_before_first_event_is_retried(raw_server, make_client, sleep):
    def handler(request, conn):
        if len(server.requests) == 1:
            start_event_stream(conn)
            reset(conn)
            return
        start_event_stream(conn)
        send_chunk(conn, chunk_event("ok", finish_reason="stop") + b"data: [DONE]\n\n")
        end_chunked(conn)

    server = raw_server(handler)
    client = make_client(server.base_url)
    assert [c.content for c in client.chat_completion_stream(model="m", messages=MESSAGES)] == ["ok"]
    assert len(server.requests) == 2
    assert len(sleep.waits) == 1


def test_html_502_is_a_server_error_with_readable_message_and_is_retried(raw_server, make_client, sleep):
    page = "<html><body><h1>502 Bad Gateway</h1><hr><center>nginx</center></body></html>"

    def handler(request, conn):
        if len(server.requests) <= 2:
            send_response(conn, 502, page, content_type="text/html")
        else:
            send_response(conn, 200, {"object": "list", "data": []})

    server = raw_server(handler)
    client = make_client(server.base_url)
    assert client.models_list() == []
    assert len(server.requests) == 3
    assert len(sleep.waits) == 2

    failing = make_client(server.base_url, max_retries=0)
    server.requests.clear()
    with pytest.raises(ServerError) as caught:
        failing.models_list()
    assert str(caught.value) == "502 Bad Gateway nginx (HTTP 502)"


def test_closing_the_stream_early_closes_the_connection(raw_server, make_client):
    stop = threading.Event()

    def handler(request, conn):
        start_event_stream(conn)
        try:
            while not stop.is_set():
                send_chunk(conn, chunk_event("x"))
                time.sleep(0.01)
        except OSError:
            stop.set()

    client = make_client(raw_server(handler).base_url)
    with contextlib.closing(client.chat_completion_stream(model="m", messages=MESSAGES)) as it:
        next(it)
    # The server notices the closed socket when its writes start failing.
    assert stop.wait(3)


def test_empty_stream_before_any_event_is_retried(raw_server, make_client, sleep):
    def handler(request, conn):
        start_event_stream(conn)
        if len(server.requests) == 1:
            end_chunked(conn)
            return
        send_chunk(conn, chunk_event("ok", finish_reason="stop") + b"data: [DONE]\n\n")
        end_chunked(conn)

    server = raw_server(handler)
    client = make_client(server.base_url)
    assert [c.content for c in client.chat_completion_stream(model="m", messages=MESSAGES)] == ["ok"]
    assert len(server.requests) == 2
    assert len(sleep.waits) == 1


def test_error_event_in_place_of_the_first_chunk_is_typed_and_retried(raw_server, make_client, sleep):
    def handler(request, conn):
        start_event_stream(conn)
        if len(server.requests) == 1:
            send_chunk(conn, b'data: {"error":{"message":"busy","type":"rate_limit_reached_error"}}\n\n')
        else:
            send_chunk(conn, chunk_event("ok", finish_reason="stop") + b"data: [DONE]\n\n")
        end_chunked(conn)

    server = raw_server(handler)
    client = make_client(server.base_url)
    assert [c.content for c in client.chat_completion_stream(model="m", messages=MESSAGES)] == ["ok"]
    assert len(sleep.waits) == 1 and sleep.waits[0] >= 3.0


def test_error_event_after_chunks_raises_its_type_with_the_partial_text(raw_server, make_client):
    def handler(request, conn):
        start_event_stream(conn)
        send_chunk(conn, chunk_event("Half"))
        send_chunk(conn, b'data: {"error":{"message":"engine overloaded","type":"server_error"}}\n\n')
        end_chunked(conn)

    client = make_client(raw_server(handler).base_url)
    # The error's own type (not "the connection was cut"), with what had arrived.
    with pytest.raises(ServerError) as caught:
        list(client.chat_completion_stream(model="m", messages=MESSAGES))
    assert "engine overloaded" in str(caught.value)
    assert caught.value.partial_content == "Half"


# Against the emulator's injected faults


def requests_to(emu, route: str) -> int:
    return emu.control.stats()["requests"].get(route, 0)


def test_stream_opening_is_retried_after_rate_limit(client, emu, sleep):
    emu.control.add_fault("POST", "/v1/chat/completions", status=429, count=1)
    chunks = list(client.chat_completion_stream(model="moonshot-v1-8k", messages=STORY))
    assert chunks[-1].finish_reason == "stop"
    assert len(sleep.waits) == 1 and sleep.waits[0] >= 3.0


def test_stream_opening_server_errors_exhausted(emu, make_client, sleep):
    client = make_client(emu.base_url, emu.api_key, max_retries=2)
    emu.control.add_fault("POST", "/v1/chat/completions", status=500, error_type="server_error", count=None)
    with pytest.raises(ServerError):
        list(client.chat_completion_stream(model="moonshot-v1-8k", messages=STORY))
    assert requests_to(emu, "POST /v1/chat/completions") == 3


def test_stream_cut_after_events_raises_interrupted_and_is_not_retried(client, emu, sleep):
    emu.control.configure(chunk_size_words=1)
    emu.control.add_fault("POST", "/v1/chat/completions", kind="cut_stream", after_chunks=4, count=1)
    received = []
    with pytest.raises(StreamInterrupted) as caught:
        for chunk in client.chat_completion_stream(model="moonshot-v1-8k", messages=STORY):
            received.append(chunk.content)
    assert len(received) == 4
    assert caught.value.partial_content == "".join(received)
    assert caught.value.partial_content
    assert caught.value.retryable
    assert requests_to(emu, "POST /v1/chat/completions") == 1
    assert sleep.waits == []


def test_stream_cut_of_a_thinking_model_keeps_partial_reasoning(client, emu):
    emu.control.configure(chunk_size_words=1)
    emu.control.add_fault("POST", "/v1/chat/completions", kind="cut_stream", after_chunks=3, count=1)
    with pytest.raises(StreamInterrupted) as caught:
        list(client.chat_completion_stream(model="kimi-k2-thinking", messages=STORY))
    assert caught.value.partial_reasoning
    assert caught.value.partial_content == ""


def test_stream_read_timeout_between_events_is_interrupted(emu, make_client, sleep):
    client = make_client(emu.base_url, emu.api_key, read_timeout=0.3)
    emu.control.configure(chunk_delay=1.0)
    stream = client.chat_completion_stream(model="moonshot-v1-8k", messages=STORY)
    first = next(stream)
    with pytest.raises(StreamInterrupted) as caught:
        list(stream)
    assert "0.3 s" in str(caught.value)
    assert caught.value.partial_content.startswith(first.content)
    assert sleep.waits == []
