"""The shell in Chromium: keyboard paths, Ask ⇄ Stop, answer versions, dark mode remembered,
the phone menu, the language menu, and "Ask about selected" from the documents list."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from docqa.chat.models import Conversation, Message, Role, State
from tests.chat.conftest import make_document  # noqa: F401 - a fixture, used by name
from tests.conftest import wait_for
from tests.e2e.conftest import screenshot, signup
from tests.e2e.test_chat import (
    LIVE_TEXT,
    documents,  # noqa: F401 - a fixture, used by name
    start_conversation,
)

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

ANSWER = "[data-role=answer]"


def active_id(page) -> str:
    return page.evaluate("document.activeElement && document.activeElement.id")


def test_keyboard_stop_and_versions(page, asgi_server, celery_worker, emu, documents):  # noqa: F811
    signup(page, asgi_server, "e2e-keys")
    documents("e2e-keys")
    conversation = start_conversation(page, asgi_server, ["acme-report.txt"])
    # The question box has focus on arrival; Shift+Enter breaks the line, Enter sends.
    assert active_id(page) == "question-input"
    emu.control.configure(first_token_delay=0.1, chunk_delay=0.15, chunk_size_words=1)
    page.keyboard.type("What happened")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("to margins?")
    assert page.locator("#question-input").input_value() == "What happened\nto margins?"
    assert not Message.objects.filter(conversation=conversation).exists()
    page.keyboard.press("Enter")
    page.wait_for_selector(LIVE_TEXT)
    # While it streams, Ask is Stop; Esc stops it.
    expect(page.locator("[data-role=composer-stop]")).to_be_visible()
    expect(page.locator("[data-role=ask]")).to_be_hidden()
    # Polled from here: wait_for_function evaluates a string in the page, which the CSP refuses.
    streaming_text = page.locator("[data-role=answer][data-state=streaming] [data-role=answer-text]")
    wait_for(lambda: streaming_text.count() and len(streaming_text.first.text_content() or "") > 5)
    page.keyboard.press("Escape")
    page.wait_for_selector(f"{ANSWER}[data-state=stopped]")
    expect(page.locator("[data-role=ask]")).to_be_visible()
    stopped = Message.objects.get(conversation=conversation, role=Role.ASSISTANT)
    assert stopped.state == State.STOPPED
    # The finished answer is announced once, in its own live region.
    shown = page.locator(f"#answer-{stopped.pk} [data-role=answer-text]").text_content().strip()
    assert shown and page.locator("[data-role=announce]").text_content() == shown[:4000]
    assert page.locator("#chat-log[aria-live]").count() == 0

    # Regenerate keeps the stopped answer: ‹ 2/2 ›, and ‹ shows the first again.
    emu.control.configure(first_token_delay=0.0, chunk_delay=0.0, chunk_size_words=4)
    page.get_by_role("button", name="Regenerate").click()
    page.wait_for_selector(f"{ANSWER}[data-state=complete]")
    expect(page.locator("[data-role=version-label]")).to_have_text("2/2")
    newer = Message.objects.filter(conversation=conversation, role=Role.ASSISTANT).latest("id")
    assert newer.pk != stopped.pk and Message.objects.filter(pk=stopped.pk).exists()
    page.get_by_role("button", name="Previous version").click()
    expect(page.locator("[data-role=version-label]")).to_have_text("1/2")
    expect(page.locator(f"#answer-{stopped.pk}")).to_be_visible()
    expect(page.locator(f"#answer-{newer.pk}")).to_be_hidden()
    # Export writes the version shown.
    assert f"answers={stopped.pk}" in page.locator("[data-role=export]").get_attribute("href")
    screenshot(page, "shell-versions")
    page.reload()
    expect(page.locator("[data-role=version-label]")).to_have_text("2/2")

    # `?` opens the shortcuts; Esc closes them. `/` focuses search; Ctrl+K starts a new chat.
    page.locator("#question-input").blur()  # outside a text field, `?` is a shortcut
    page.keyboard.press("?")
    expect(page.locator("dialog#shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.locator("dialog#shortcuts")).to_be_hidden()
    page.keyboard.press("/")
    assert active_id(page) == "sidebar-search"
    page.goto(f"{asgi_server}/chat/")
    page.keyboard.press("/")
    assert active_id(page) == "chat-search-input"
    page.keyboard.press("Control+k")
    page.wait_for_url(f"{asgi_server}/chat/new/")


def test_dark_mode_is_remembered(page, asgi_server):
    page.goto(f"{asgi_server}/accounts/login/")
    background = "getComputedStyle(document.body).backgroundColor"
    assert page.evaluate(background) == "rgb(246, 247, 249)"
    toggle = page.locator("[data-role=theme-toggle]")
    toggle.click()  # system → light
    toggle.click()  # light → dark
    expect(toggle).to_have_text("Theme: dark")
    page.reload()
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert page.evaluate(background) == "rgb(15, 18, 23)"
    screenshot(page, "shell-dark-login")


def test_system_dark_is_followed(chromium, asgi_server):
    context = chromium.new_context(color_scheme="dark")
    page = context.new_page()
    page.goto(f"{asgi_server}/accounts/login/")
    assert page.evaluate("getComputedStyle(document.body).backgroundColor") == "rgb(15, 18, 23)"
    context.close()


def test_phone_menu_and_explicit_language(chromium, asgi_server):
    context = chromium.new_context(viewport={"width": 390, "height": 844})
    page = context.new_page()
    page.goto(f"{asgi_server}/accounts/login/")
    english = page.get_by_role("button", name="English")
    expect(english).to_be_hidden()  # inside the closed menu
    page.get_by_text("Menu").click()
    expect(english).to_be_visible()
    # Focus and arrow keys do not switch the language; only pressing a language does.
    english.focus()
    page.keyboard.press("ArrowDown")
    page.keyboard.press("Tab")
    assert page.evaluate("document.documentElement.lang") == "en"
    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    context.close()


def test_ask_about_selected_documents(page, asgi_server, celery_worker, documents):  # noqa: F811
    signup(page, asgi_server, "e2e-select")
    documents("e2e-select")
    page.goto(f"{asgi_server}/documents/")
    page.get_by_label("Select acme-report.txt").check()
    page.get_by_label("Select oslo-weather.txt").check()
    page.get_by_role("button", name="Ask about selected").click()
    page.wait_for_url(f"{asgi_server}/chat/*/")
    conversation = Conversation.objects.latest("id")
    assert sorted(d.filename for d in conversation.documents.all()) == ["acme-report.txt", "oslo-weather.txt"]
    assert active_id(page) == "question-input"
