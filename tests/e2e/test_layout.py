"""Every page at phone width (390 px) and desktop width (1280 px), light and dark, English and
Chinese: nothing scrolls sideways, and a screenshot of each lands in test-artifacts/.

The default run checks phone light/English and phone dark/Chinese plus the desktop in light;
`E2E_SCREENSHOT_TOUR=1` takes every combination (for looking at them before a release)."""

from __future__ import annotations

import os

import pytest

from docqa.documents.models import Status
from tests import factories
from tests.e2e.conftest import ARTIFACTS

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1280, "height": 900}
FULL_TOUR = os.environ.get("E2E_SCREENSHOT_TOUR") == "1"
COMBINATIONS = [
    ("phone", PHONE, "light", "en-US"),
    ("phone", PHONE, "dark", "zh-CN"),
    ("desktop", DESKTOP, "light", "en-US"),
]
if FULL_TOUR:
    COMBINATIONS += [
        ("phone", PHONE, "dark", "en-US"),
        ("phone", PHONE, "light", "zh-CN"),
        ("desktop", DESKTOP, "dark", "en-US"),
        ("desktop", DESKTOP, "light", "zh-CN"),
        ("desktop", DESKTOP, "dark", "zh-CN"),
    ]

LONG_NAME = "quarterly-revenue-report-for-the-northern-region-final-version-2.pdf"


@pytest.fixture
def tour(make_user):
    """A staff user with documents in every state and a conversation with an answer."""
    user = make_user("tourist", is_staff=True, is_superuser=True)
    ready = factories.document_create(
        owner=user,
        filename=LONG_NAME,
        text="Revenue grew by twelve percent, driven by exports to Norway.",
        tokens=120,
    )
    factories.document_create(owner=user, filename="演示文稿.pptx", text="幻灯片", tokens=30)
    factories.document_create(owner=user, filename="corrupt.pdf", status=Status.FAILED)
    factories.document_create(owner=user, filename="huge.txt", text="big " * 50, tokens=468_038)
    conversation = factories.conversation_create(owner=user, documents=[ready])
    factories.exchange_create(
        conversation=conversation,
        question="How much did revenue grow, and what drove it? " * 3,
        content="Revenue grew by **twelve percent** 【1†driven by exports to Norway】.\n\n"
        "```\na_very_long_line_of_code_that_would_push_the_page_sideways_if_it_were_not_contained()\n```",
    )
    return user, ready, conversation


def pages(ready, conversation) -> list[tuple[str, str]]:
    return [
        ("documents", "/documents/"),
        ("document", ready.get_absolute_url()),
        ("document-delete", f"/documents/{ready.pk}/delete/"),
        ("chats", "/chat/"),
        ("chat-new", "/chat/new/"),
        ("conversation", conversation.get_absolute_url()),
        ("chat-rename", f"/chat/{conversation.pk}/rename/"),
        ("chat-delete", f"/chat/{conversation.pk}/delete/"),
        ("admin-account", "/admin/documents/storedfile/moonshot-account/"),
    ]


def no_sideways_scroll(page) -> tuple[int, int]:
    return page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")


def test_no_page_scrolls_sideways(chromium, asgi_server, celery_worker, tour):
    user, ready, conversation = tour
    ARTIFACTS.mkdir(exist_ok=True)
    wide = []
    for device, viewport, theme, locale in COMBINATIONS:
        context = chromium.new_context(viewport=viewport, locale=locale, color_scheme=theme)
        context.set_default_timeout(15_000)
        page = context.new_page()
        tag = f"{device}-{theme}-{locale[:2]}"
        for name, path in [("login", "/accounts/login/"), ("signup", "/accounts/signup/")]:
            page.goto(f"{asgi_server}{path}")
            scroll, width = no_sideways_scroll(page)
            if scroll > width:
                wide.append((tag, name, scroll))
            page.screenshot(path=str(ARTIFACTS / f"tour-{tag}-{name}.png"), full_page=True)
        page.goto(f"{asgi_server}/accounts/login/")
        page.fill("input[name=username]", user.username)
        page.fill("input[name=password]", user.raw_password)
        page.click("main button[type=submit]")
        page.wait_for_url(f"{asgi_server}/documents/")
        for name, path in pages(ready, conversation):
            page.goto(f"{asgi_server}{path}")
            page.wait_for_load_state("load")
            scroll, width = no_sideways_scroll(page)
            if scroll > width:
                wide.append((tag, name, scroll))
            page.screenshot(path=str(ARTIFACTS / f"tour-{tag}-{name}.png"), full_page=True)
        context.close()
    assert not wide, f"pages wider than the screen: {wide}"
