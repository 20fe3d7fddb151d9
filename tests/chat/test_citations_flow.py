"""Citations end to end: stored when an answer ends (a real worker and the emulator), shown on
the pages from what was stored, streamed rendered, marked on the document page, exported."""

from __future__ import annotations

import html
import re
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from docqa.chat import generation
from docqa.chat.citations_render import CitedDocument
from docqa.chat.live import LiveAnswer
from docqa.chat.models import Message, State
from docqa.chat.verification import answer_citations
from tests.chat.helpers import ask, finished
from tests.chat.test_sse import SSEReader
from tests.conftest import wait_for
from tests.factories import exchange_create, sample_raw

ACME = "Acme quarterly revenue grew by twelve percent, driven by exports to Norway."
WEATHER = "Spring in Oslo was unusually dry; rainfall fell by a third."
# What the model is sent for the second document holds a sentence its stored text does not:
# the emulator quotes it (as a model inventing a quote would), and docqa cannot find it.
INVENTED = "Oslo also reported record tulip sales during spring."


@pytest.fixture
def docs(user, make_document):
    acme = make_document(user, "acme.txt", text=ACME)
    weather = make_document(user, "weather.txt", text=WEATHER)
    weather.stored_file.content_raw = sample_raw(f"{INVENTED}\n\n{WEATHER}", "weather.txt")
    weather.stored_file.save(update_fields=["content_raw"])
    return acme, weather


def test_a_finished_answer_stores_its_checked_citations(celery_worker, make_conversation, user, docs):
    acme, weather = docs
    conversation = make_conversation(user, [acme, weather])
    answer = ask(conversation, "Did revenue grow, and what about spring in Oslo and record tulip sales?")
    done = wait_for(lambda: finished(answer.pk), message="answer finished")
    assert done.state == State.COMPLETE, done.error
    by_quote = {c["quote"]: c for c in done.citations}
    verified = by_quote[ACME]
    assert verified["verified"] and verified["document_id"] == acme.pk and verified["document_number"] == 1
    start, end = verified["span"]
    assert ACME[start:end] == ACME
    invented = next(c for q, c in by_quote.items() if INVENTED in q)
    assert invented["document_id"] == weather.pk and not invented["verified"] and invented["span"] is None


def test_a_swept_answer_gets_its_citations_checked(user, make_conversation, docs):
    conversation = make_conversation(user, list(docs))
    long_ago = timezone.now() - timedelta(hours=1)
    _, answer = exchange_create(
        conversation=conversation,
        state=State.STREAMING,
        content=f"So far: 【1†{ACME}】",
        started_at=long_ago,
        heartbeat_at=long_ago,
    )
    assert generation.answers_sweep_stale() == 1
    answer.refresh_from_db()
    assert answer.state == State.INTERRUPTED and answer.citations[0]["verified"]


@pytest.fixture
def cited_answer(user, make_conversation, docs):
    acme, weather = docs
    conversation = make_conversation(user, [acme, weather])
    content = f"Revenue: 【1†{ACME.upper()}】 Tulips: 【2†{INVENTED}】 Weather: 【2†{WEATHER}】"
    citations = answer_citations(content, [acme.pk, weather.pk], [ACME, WEATHER])
    return exchange_create(conversation=conversation, content=content, citations=citations)[1]


def test_the_page_shows_stored_citations_without_reading_any_document_text(client, user, cited_answer):
    client.force_login(user)
    url = reverse("chat:detail", args=[cited_answer.conversation_id])
    with CaptureQueriesContext(connection) as queries:
        page = client.get(url).content.decode()
    assert not [q["sql"] for q in queries if "content_text" in q["sql"] or "content_raw" in q["sql"]]
    citations = re.findall(
        r'<a href="([^"]*)" class="citation [^"]*" data-role="citation" '
        r'data-verified="(true|false)"[^>]*data-document="([0-9]+)"',
        page,
    )
    acme_id, weather_id = cited_answer.citations[0]["document_id"], cited_answer.citations[1]["document_id"]
    assert [(v, int(d)) for _, v, d in citations] == [
        ("true", acme_id),
        ("false", weather_id),
        ("true", weather_id),
    ]
    assert html.unescape(citations[0][0]) == f"/documents/{acme_id}/?mark=0-{len(ACME)}#cite"
    assert "not found in the document" in page and "acme.txt" in page
    assert 'data-role="citation-summary">2 of 3 verified<' in page


def test_the_document_page_marks_the_cited_passage(client, user, cited_answer):
    client.force_login(user)
    citation = cited_answer.citations[2]
    start, end = citation["span"]
    url = reverse("documents:detail", args=[citation["document_id"]])
    page = client.get(f"{url}?mark={start}-{end}").content.decode()
    assert f'<mark id="cite" tabindex="-1">{html.escape(WEATHER)}</mark>' in page
    for bad in ("0-99999", "5-2", "x"):
        assert "<mark" not in client.get(f"{url}?mark={bad}").content.decode()


def test_the_export_writes_citations_as_footnotes(client, user, cited_answer):
    client.force_login(user)
    text = client.get(reverse("chat:export", args=[cited_answer.conversation_id])).content.decode()
    assert "Revenue: [^1] Tulips: [^2] Weather: [^3]" in text
    assert f"[^2]: weather.txt: “{INVENTED}” (not found in the document)" in text
    assert f"[^3]: weather.txt: “{WEATHER}”\n" in text


def test_the_live_render_holds_back_an_open_marker_and_reads_each_text_once():
    loads = []

    def load(document_id):
        loads.append(document_id)
        return {7: ACME, 8: WEATHER}[document_id]

    documents = [
        CitedDocument(7, "acme.txt", "/documents/7/"),
        CitedDocument(8, "weather.txt", "/documents/8/"),
    ]
    live = LiveAnswer(documents, load, "**Revenue** grew: 【1†" + ACME[:20])
    first = live.render()
    assert "<strong>Revenue</strong>" in first and "【" not in first and "Acme" not in first
    live.append(ACME[20:] + "】 and 【1†" + ACME + "】 `code`")
    second = live.render()
    assert second.count('data-verified="true"') == 2 and "<code>code</code>" in second
    assert loads == [7], "one read per cited document, not per render or per marker"
    assert not live.pending and live.wait() > 0


def test_the_page_stream_sends_renders_that_never_show_half_a_marker(
    celery_worker, session, conversation, emu
):
    emu.control.configure(chunk_delay=0.02, chunk_size_words=1)
    answer = ask(conversation)
    reader = SSEReader(session, f"{session.base}/chat/answers/{answer.pk}/stream/?html=1")
    renders, done = [], None
    for event, data, _ in reader.events():
        assert event != "content", "the page gets renders, not raw deltas"
        if event == "render":
            renders.append(data)
        elif event == "done":
            done = data
            break
    reader.close()
    final = Message.objects.get(pk=answer.pk)
    assert len(renders) >= 2 and final.state == State.COMPLETE
    for render in renders:
        assert "【" not in render and "†" not in render, "no half-written marker, ever"
    assert 'data-verified="true"' in renders[-1]
    # The last render is the finished answer's body: swapping it in changes nothing.
    body = re.search(r'data-role="answer-text">(.*?)</div>\s*<textarea', done, re.S).group(1)
    assert body == renders[-1]
