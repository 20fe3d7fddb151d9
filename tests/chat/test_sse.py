"""The answer's Server-Sent Events view under uvicorn: deltas in steps, resuming, snapshots, ownership."""

from __future__ import annotations

import html
import time

import requests

from docqa import keys
from docqa.chat.models import Message, State
from docqa.chat.streams import CONTENT, REASONING, AnswerPublisher
from docqa.connections import redis_client
from tests.chat.helpers import ask, finished, stream_text
from tests.conftest import wait_for
from tests.factories import exchange_create


class SSEReader:
    """A minimal EventSource: yields (event, data, id) from a streamed response."""

    def __init__(self, session: requests.Session, url: str, last_event_id: str | None = None):
        headers = {"Accept": "text/event-stream"}
        if last_event_id:
            headers["Last-Event-ID"] = last_event_id
        self.response = session.get(url, headers=headers, stream=True, timeout=30)
        self.response.raise_for_status()
        # An event stream is always UTF-8 (WHATWG), as browsers read it; requests would
        # guess ISO-8859-1 for a text/* type without a charset.
        self.response.encoding = "utf-8"

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
    _question, answer = exchange_create(conversation=conversation, state=State.STREAMING)
    client.force_login(other_user)
    response = requests.get(
        f"{asgi_server}/chat/answers/{answer.pk}/stream/",
        cookies={"sessionid": client.cookies["sessionid"].value},
        timeout=10,
    )
    assert response.status_code == 404
    assert requests.get(f"{asgi_server}/chat/answers/{answer.pk}/stream/", timeout=10).status_code == 404
