"""A person signs up, uploads three documents with the page's own controls, and reads one."""

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import screenshot, signup
from tests.samples import docx_bytes, pdf_bytes, xlsx_bytes

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def test_signup_upload_three_formats_see_ready_and_read_text(page, asgi_server, celery_worker, tmp_path, emu):
    emu.control.configure(extract_delay=0.6)  # slow enough to see the live status change
    files = {
        "plan.pdf": pdf_bytes("The launch is planned for March."),
        "memo.docx": docx_bytes("Budget approved: 40,000 euros."),
        "figures.xlsx": xlsx_bytes([["region", "sales"], ["north", 1234]]),
    }
    paths = []
    for name, data in files.items():
        path = tmp_path / name
        path.write_bytes(data)
        paths.append(str(path))

    signup(page, asgi_server, "e2e-user")
    page.get_by_label("Upload documents").set_input_files(paths)

    for name in files:
        row = page.locator("tr.document-row", has_text=name)
        row.wait_for()
    # Live updates over SSE move each row on, without a reload.
    # A locator, not wait_for_function: that evaluates a string in the page, which the CSP refuses.
    expect(page.locator("tr.document-row[data-status=ready]")).to_have_count(3, timeout=30_000)
    for name in files:
        assert "Ready" in page.locator("tr.document-row", has_text=name).inner_text()
    screenshot(page, "documents-ready")

    page.get_by_role("link", name="memo.docx").click()
    text = page.locator("[data-role=extracted-text]")
    assert "Budget approved: 40,000 euros." in text.inner_text()
    assert page.locator("dd code").count() == 0  # the Moonshot file id is for staff only
    screenshot(page, "document-detail")


def test_bad_upload_shows_the_reason_in_the_page(page, asgi_server, celery_worker, tmp_path):
    bad = tmp_path / "program.exe"
    bad.write_bytes(b"MZ")
    empty = tmp_path / "empty.txt"
    empty.write_bytes(b"")
    signup(page, asgi_server, "e2e-bad")
    page.get_by_label("Upload documents").set_input_files([str(bad), str(empty)])
    page.locator(".upload-item.failed", has_text="program.exe").wait_for()
    page.locator(".upload-item.failed", has_text="empty.txt").wait_for()
    assert ".exe files are not supported" in page.locator("#upload-progress").inner_text()
    assert "is empty" in page.locator("#upload-progress").inner_text()
    assert page.locator("tr.document-row").count() == 0
    screenshot(page, "upload-errors")


def test_drag_and_drop_uploads_each_file_with_its_own_progress(page, asgi_server, celery_worker):
    signup(page, asgi_server, "e2e-drop")
    # What a browser does when files are dropped on the zone: a drop event carrying them.
    page.evaluate(
        """() => {
            const transfer = new DataTransfer();
            transfer.items.add(new File(["alpha notes"], "alpha.txt", {type: "text/plain"}));
            transfer.items.add(new File(["# beta\\nbody"], "beta.md", {type: "text/markdown"}));
            const zone = document.getElementById("upload-form");
            zone.dispatchEvent(new DragEvent("dragover", {dataTransfer: transfer, bubbles: true}));
            zone.dispatchEvent(new DragEvent("drop", {dataTransfer: transfer, bubbles: true}));
        }"""
    )
    assert page.locator(".upload-item progress").count() == 2
    # A locator, not wait_for_function: that evaluates a string in the page, which the CSP refuses.
    expect(page.locator("tr.document-row[data-status=ready]")).to_have_count(2, timeout=30_000)
    names = page.locator("tr.document-row .document-name").all_inner_texts()
    assert sorted(names) == ["alpha.txt", "beta.md"]


def test_the_language_menu_switches_without_an_inline_handler(page, asgi_server):
    """The CSP refuses inline handlers: the menu is a button per language, no script needed."""
    csp_errors: list[str] = []
    page.on(
        "console",
        lambda message: csp_errors.append(message.text) if "Content Security" in message.text else None,
    )
    signup(page, asgi_server, "e2e-lang")
    page.get_by_role("button", name="简体中文").click()
    expect(page.locator("html")).to_have_attribute("lang", "zh-hans")
    assert csp_errors == []
