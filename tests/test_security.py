"""HTTP hardening: a self-only CSP the pages keep to, no-store for signed-in pages, cookies."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests import factories

pytestmark = pytest.mark.django_db


class _Inline(HTMLParser):
    """Everything a self-only CSP would refuse: inline scripts, handlers, style attributes."""

    def __init__(self):
        super().__init__()
        self.found: list[str] = []
        self._script_inline = False

    def handle_starttag(self, tag, attrs):
        names = dict(attrs)
        self._script_inline = (
            tag == "script" and "src" not in names and names.get("type") != "application/json"
        )
        for name, _value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"<{tag} {name}>")
        if tag == "style":
            self.found.append("<style>")

    def handle_data(self, data):
        if self._script_inline and data.strip():
            self.found.append(f"<script>{data.strip()[:40]}")

    def handle_endtag(self, tag):
        self._script_inline = False


def _pages(user) -> list[str]:
    document = factories.document_create(owner=user)
    conversation = factories.conversation_create(owner=user, documents=[document])
    factories.exchange_create(conversation=conversation)
    return [
        reverse("documents:list"),
        document.get_absolute_url(),
        reverse("chat:list"),
        reverse("chat:new"),
        conversation.get_absolute_url(),
    ]


def test_pages_hold_nothing_a_self_only_csp_refuses(auth_client, user, client):
    for url in _pages(user):
        response = auth_client.get(url)
        policy = response["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "style-src 'self'" in policy
        assert "unsafe-inline" not in policy and "frame-ancestors 'none'" in policy
        parser = _Inline()
        parser.feed(response.content.decode())
        assert parser.found == [], (url, parser.found)
        assert '"includeIndicatorStyles": false' in response.content.decode()
    client.logout()
    for url in [reverse("login"), reverse("signup")]:
        parser = _Inline()
        parser.feed(client.get(url).content.decode())
        assert parser.found == [], (url, parser.found)


def test_signed_in_pages_are_not_stored_anonymous_ones_may_be(auth_client, user, client):
    for url in _pages(user):
        assert "no-store" in auth_client.get(url)["Cache-Control"], url
    client.logout()
    assert "no-store" not in client.get(reverse("signup")).get("Cache-Control", "")


def test_the_csrf_cookie_is_http_only_and_htmx_gets_the_token_from_the_page(client, user):
    page = client.get(reverse("login"))
    assert page.cookies["csrftoken"]["httponly"] is True
    client.force_login(user)
    html = client.get(reverse("documents:list")).content.decode()
    assert 'hx-headers=\'{"X-CSRFToken": "' in html
