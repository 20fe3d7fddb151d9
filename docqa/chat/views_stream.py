"""The answer's Server-Sent Events: raw deltas for scripts, rendered HTML for the page.

`answer_stream`'s body is async: it holds one connection per watching browser on the event
loop (not a thread) while it waits on the answer's Redis Stream.
"""

from __future__ import annotations

import html
import itertools
import time

from django.http import Http404, HttpRequest, HttpResponse

from docqa import live_streams
from docqa.chat import selectors, streams
from docqa.chat.live import LiveAnswer
from docqa.chat.models import Message, Role, State
from docqa.chat.stream_hub import answer_entries_shared
from docqa.chat.streams import CONTENT, END, REASONING
from docqa.chat.verification import document_texts
from docqa.chat.views import answer_html_render
from docqa.connections import async_redis_client
from docqa.handlers import stream_sync

_EVENT_NAMES = {CONTENT: "content", REASONING: "reasoning"}


def _sse(event: str, data: str, entry_id: str | None = None) -> str:
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    head = f"id: {entry_id}\n" if entry_id else ""
    return head + f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def _document_text(document_id: int) -> str:
    return document_texts([document_id])[0]


def _answer_state(answer_id: int) -> str | None:
    return Message.objects.filter(pk=answer_id).values_list("state", flat=True).first()


def _live_answer(conversation_id: int, content: str) -> LiveAnswer:
    return LiveAnswer(selectors.cited_documents(conversation_id), _document_text, content)


def answer_stream(request: HttpRequest, pk: int) -> HttpResponse:
    """The answer as Server-Sent Events, read from its Redis Stream.

    Two forms. By default (scripts, the benchmarks) each content delta is a `content` event
    of escaped text, as soon as it arrives. With `?html=1` (the page) the content comes as
    `render` events instead: the HTML of the whole answer so far, Markdown and citations
    rendered exactly as the finished answer will be, at a bounded rate (`docqa.chat.live`),
    with a marker still being written held back. Reasoning is `reasoning` deltas in both.

    Every event carries its stream id as the SSE `id`. A script that reconnects with
    `Last-Event-ID` resumes right after it; otherwise (and always in the HTML form, whose
    renders replace each other) a connection first gets a snapshot of the answer so far (the
    database's text plus the deltas after its last save). Either way no token is repeated
    or dropped. A finished answer is one `done` event from the database, and the page
    closes the stream on it.
    """
    # The view itself is sync (its two reads run on the handler's thread, like any page's);
    # only the body is async. An async view would run inside `async_to_sync` on that thread,
    # whose context copying was 10% of the web process's samples at 500 answers at once.
    user = request.user
    if not user.is_authenticated:
        raise Http404
    answer = Message.objects.filter(pk=pk, role=Role.ASSISTANT, conversation__owner=user).first()
    if answer is None:
        raise Http404
    as_html = request.GET.get("html") == "1"
    last_event_id = "" if as_html else request.headers.get("Last-Event-ID", "")

    async def done() -> str:
        return _sse("done", await stream_sync(answer_html_render)(request, pk))

    async def events():
        yield "retry: 1000\n\n"
        if answer.state != State.STREAMING:
            yield await done()
            return
        client = async_redis_client()
        live: LiveAnswer | None = None
        try:
            if last_event_id and await streams.answer_stream_has(
                client, answer_id=pk, entry_id=last_event_id
            ):
                cursor = last_event_id
            else:
                # Snapshot: the saved text (as read a moment ago), then whatever came after that save.
                backlog = await streams.answer_entries_since(client, answer_id=pk, after=answer.stream_cursor)
                content = answer.content + "".join(
                    f.get("t", "") for _i, f in backlog if f.get("k") == CONTENT
                )
                reasoning = answer.reasoning + "".join(
                    f.get("t", "") for _i, f in backlog if f.get("k") == REASONING
                )
                cursor = backlog[-1][0] if backlog else answer.stream_cursor
                if answer.state != State.STREAMING or any(f.get("k") == END for _i, f in backlog):
                    yield await done()
                    return
                yield _sse("snapshot-reasoning", html.escape(reasoning), cursor or None)
                if as_html:
                    live = await stream_sync(_live_answer)(answer.conversation_id, content)
                    yield _sse("render", await stream_sync(live.render)(), cursor or None)
                else:
                    yield _sse("snapshot-content", html.escape(content), cursor or None)
            idle_since = time.monotonic()

            def wait() -> float:
                return live.wait() if live is not None and live.pending else streams.IDLE_SECONDS

            async for batch in answer_entries_shared(answer_id=pk, after=cursor, wait=wait):
                if batch is None:
                    if live is not None and live.pending:
                        yield _sse("render", await stream_sync(live.render)(), cursor or None)
                        continue
                    if time.monotonic() - idle_since < streams.IDLE_SECONDS:
                        continue
                    idle_since = time.monotonic()
                    state = await stream_sync(_answer_state)(pk)
                    if state != State.STREAMING:
                        yield await done()
                        return
                    yield ": keep-alive\n\n"
                    continue
                idle_since = time.monotonic()
                # Entries that arrived together go out as one event per run of the same kind
                # (the browser appends the same text, with fewer events to handle).
                kinds = [fields.get("k") for _entry_id, fields in batch]
                ended = END in kinds
                entries = batch[: kinds.index(END)] if ended else batch
                out = []
                for kind, run in itertools.groupby(entries, key=lambda entry: entry[1].get("k")):
                    run = list(run)
                    text = "".join(fields.get("t", "") for _entry_id, fields in run)
                    cursor = run[-1][0]
                    if live is not None and kind == CONTENT:
                        live.append(text)
                    else:
                        out.append(_sse(_EVENT_NAMES.get(kind, "reasoning"), html.escape(text), cursor))
                if ended:
                    if live is not None:
                        # The last render, as the finished answer shows: the swap does not jump.
                        out.append(_sse("render", await stream_sync(live.render)(final=True), cursor))
                    out.append(await done())
                    yield "".join(out)
                    return
                if live is not None and live.pending and live.wait() == 0:
                    out.append(_sse("render", await stream_sync(live.render)(), cursor))
                if out:
                    yield "".join(out)
        finally:
            await client.aclose()

    # At most DOCQA_USER_MAX_STREAMS live streams per user, across every web process.
    slot = live_streams.stream_slot_take_sync(user_id=user.pk)
    return live_streams.event_stream_response(user_id=user.pk, slot=slot, body=events())
