"""The Content-Security-Policy (self only, no inline code or style) holds on every page in
Chromium: docqa's own pages and the admin pages docqa uses. Violations are collected both
from the console and from `securitypolicyviolation` events, so a blocked inline <style>,
style="…" attribute, inline script or on*= handler fails the test."""

from __future__ import annotations

import pytest
from django.urls import reverse

from docqa.documents.housekeeping.reconcile import remote_files_reconcile
from tests import factories
from tests.documents.housekeeping.helpers import docqa_name
from tests.e2e.conftest import screenshot

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

# Runs in every page before its own scripts, whatever the page's policy (Playwright injects it).
COLLECT = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(
    `${event.violatedDirective} blocked ${event.blockedURI || "inline"} at ${event.sourceFile}:${event.lineNumber} ${event.sample}`
  );
});
"""


def _visit_all(page, base_url: str, paths: list[str]) -> list[str]:
    console: list[str] = []
    page.on(
        "console",
        lambda message: (
            console.append(f"{page.url}: {message.text}")
            if "Content Security Policy" in message.text or "Content-Security-Policy" in message.text
            else None
        ),
    )
    found: list[str] = []
    for path in paths:
        response = page.goto(base_url + path)
        assert response is not None and response.status == 200, path
        page.wait_for_load_state("networkidle")
        found += [f"{path}: {v}" for v in page.evaluate("window.__cspViolations")]
    return found + console


def _log_in(page, base_url: str, user) -> None:
    page.goto(f"{base_url}/admin/login/?next=/admin/")
    page.fill("input[name=username]", user.username)
    page.fill("input[name=password]", user.raw_password)
    page.click("input[type=submit]")
    page.wait_for_url(f"{base_url}/admin/")


def test_no_page_breaks_the_content_security_policy(page, asgi_server, emu, make_user, settings):
    settings.DOCQA_ORPHAN_GRACE = 3600
    staff = make_user("root", is_staff=True, is_superuser=True)
    (stored,) = factories.linked_stored_files(emu, 1)
    document = factories.document_create(owner=staff, stored_file=stored, filename="report.pdf")
    conversation = factories.conversation_create(owner=staff, documents=[document])
    factories.exchange_create(conversation=conversation, question="What grew?", content="Revenue **grew**.")
    emu.control.fake_files(count=1, bytes_each=10, filename=docqa_name())
    remote_files_reconcile()
    page.add_init_script(COLLECT)

    anonymous = _visit_all(page, asgi_server, ["/accounts/login/", "/accounts/signup/", "/admin/login/"])
    _log_in(page, asgi_server, staff)
    docqa_pages = [
        "/documents/",
        f"/documents/{document.pk}/",
        f"/documents/{document.pk}/delete/",
        "/chat/",
        "/chat/new/",
        f"/chat/{conversation.pk}/",
        f"/chat/{conversation.pk}/rename/",
        f"/chat/{conversation.pk}/delete/",
    ]
    admin_pages = [
        reverse("admin:index"),
        reverse("admin:documents_storedfile_account"),
        reverse("admin:documents_document_changelist"),
        reverse("admin:documents_document_change", args=[document.pk]),
        reverse("admin:documents_storedfile_changelist"),
        reverse("admin:documents_storedfile_change", args=[stored.pk]),
        reverse("admin:chat_conversation_changelist"),
        reverse("admin:chat_conversation_change", args=[conversation.pk]),
        reverse("admin:auth_user_changelist"),
        reverse("admin:auth_user_change", args=[staff.pk]),
    ]
    violations = anonymous + _visit_all(page, asgi_server, docqa_pages + admin_pages)
    page.goto(asgi_server + reverse("admin:documents_storedfile_account"))
    screenshot(page, "csp-admin-account")
    assert not violations, "\n".join(violations)
