"""The SSE parser, fed bytes the way a network delivers them."""

from __future__ import annotations

import pytest

from docqa.moonshot.sse import SSEEvent, SSEParser

STREAM = (
    b": keep-alive\n"
    b'data: {"a": 1}\n'
    b"\n"
    b"event: usage\n"
    b"id: 7\n"
    b"data: first line\n"
    b"data: second line\n"
    b"\n"
    b"data: [DONE]\n"
    b"\n"
)
EXPECTED = [
    SSEEvent(data='{"a": 1}'),
    SSEEvent(data="first line\nsecond line", event="usage", id="7"),
    SSEEvent(data="[DONE]", id="7"),
]


def feed_all(pieces: list[bytes]) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for piece in pieces:
        events.extend(parser.feed(piece))
    events.extend(parser.close())
    return events


def test_whole_stream_in_one_piece():
    assert feed_all([STREAM]) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3, 5, 7, 13])
def test_stream_split_at_every_byte_boundary(size):
    pieces = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert feed_all(pieces) == EXPECTED


@pytest.mark.parametrize("size", [1, 2, 3])
def test_crlf_and_lone_cr_line_endings_even_when_split(size):
    crlf = STREAM.replace(b"\n", b"\r\n")
    lone_cr = STREAM.replace(b"\n", b"\r")
    for stream in (crlf, lone_cr):
        pieces = [stream[i : i + size] for i in range(0, len(stream), size)]
        assert feed_all(pieces) == EXPECTED


def test_event_is_returned_as_soon_as_its_blank_line_arrives():
    parser = SSEParser()
    assert parser.feed(b'data: {"x"') == []
    assert parser.feed(b": 1}\n") == []
    assert parser.feed(b"\n") == [SSEEvent(data='{"x": 1}')]


def test_crlf_split_between_cr_and_lf_does_not_make_an_extra_blank_line():
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\ndata: b\r\n\r") == []
    assert parser.feed(b"\n") == [SSEEvent(data="a\nb")]


def test_comments_only_produce_no_events():
    assert feed_all([b": ping\n\n: ping\n\n"]) == []


def test_space_after_colon_is_optional_and_only_one_is_removed():
    assert feed_all([b"data:x\n\ndata:  y\n\ndata\n\n"]) == [
        SSEEvent(data="x"),
        SSEEvent(data=" y"),
        SSEEvent(data=""),
    ]


def test_multibyte_utf8_split_across_chunks():
    raw = "data: 你好，李雷\n\n".encode()
    pieces = [raw[i : i + 1] for i in range(len(raw))]
    assert feed_all(pieces) == [SSEEvent(data="你好，李雷")]


def test_byte_order_mark_at_start_is_dropped_even_when_split():
    raw = b"\xef\xbb\xbfdata: x\n\n"
    assert feed_all([raw[:1], raw[1:2], raw[2:]]) == [SSEEvent(data="x")]


def test_last_event_without_blank_line_is_dispatched_at_close():
    assert feed_all([b"data: [DONE]"]) == [SSEEvent(data="[DONE]")]
    assert feed_all([b"data: [DONE]\n"]) == [SSEEvent(data="[DONE]")]


def test_retry_field_and_unknown_fields():
    assert feed_all([b"retry: 3000\nfoo: bar\ndata: x\n\n"]) == [SSEEvent(data="x", retry=3000)]
