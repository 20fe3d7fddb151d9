"""Each supported format's text comes back from `/v1/files/{id}/content`; bad files end in error."""

from __future__ import annotations

import io
import json
import time
import zipfile

import pytest

from docqa.emulator.guard import MAX_CONTENT_CHARS
from tests import samples


def test_pdf(api):
    file, content = api.extracted("paper.pdf", samples.pdf_bytes("Transformers attend to every token."))
    assert "Transformers attend to every token." in content["content"]
    assert content == {
        "content": content["content"],
        "file_type": "application/pdf",
        "filename": "paper.pdf",
        "title": content["title"],
        "type": "file",
    }


def test_encrypted_pdf_ends_in_error_in_plain_words(api):
    file = api.wait_done(api.upload_ok("locked.pdf", samples.pdf_bytes("secret", password="pw"))["id"])
    assert file["status"] == "error"
    assert "encrypted" in file["status_details"] and "password" in file["status_details"]
    response = api.get(f"/files/{file['id']}/content")
    assert response.status_code == 400
    assert "encrypted" in response.json()["error"]["message"]


def test_corrupt_pdf_ends_in_error(api):
    file = api.wait_done(api.upload_ok("broken.pdf", b"%PDF-1.7\nthis is not a pdf at all")["id"])
    assert file["status"] == "error"
    assert "damaged or not a PDF" in file["status_details"]


def test_docx_paragraphs_and_tables(api):
    data = samples.docx_bytes(
        "The lighthouse keeper logs the weather.", [["wind", "force 6"], ["tide", "high"]]
    )
    _, content = api.extracted("log.docx", data)
    assert "The lighthouse keeper logs the weather." in content["content"]
    assert "wind | force 6" in content["content"]
    assert content["file_type"].endswith("wordprocessingml.document")


def test_corrupt_docx_ends_in_error(api):
    file = api.wait_done(api.upload_ok("broken.docx", b"PK\x03\x04 not a real zip")["id"])
    assert file["status"] == "error"
    assert "Word" in file["status_details"]


def test_xlsx_sheets_and_cells(api):
    _, content = api.extracted(
        "budget.xlsx", samples.xlsx_bytes([["item", "cost"], ["rope", 12.5], ["lamp", 40]])
    )
    assert "## Budget" in content["content"]
    assert "rope\t12.5" in content["content"]


def test_pptx_slides(api):
    _, content = api.extracted(
        "deck.pptx", samples.pptx_bytes("Quarterly tides", "Spring tides peak in March")
    )
    assert "## Slide 1" in content["content"]
    assert "Quarterly tides" in content["content"] and "Spring tides peak in March" in content["content"]


def test_html_without_tags_scripts_or_styles(api):
    markup = (
        "<html><head><title>Harbour guide</title><style>p {color: red}</style>"
        "<script>var secret = 1;</script></head>"
        "<body><h1>Moorings</h1><p>Boats &amp; dinghies moor at <b>pier 4</b>.</p></body></html>"
    )
    _, content = api.extracted("guide.html", markup.encode())
    assert content["title"] == "Harbour guide"
    assert "Moorings" in content["content"]
    assert "Boats & dinghies moor at pier 4." in content["content"]
    assert (
        "<" not in content["content"]
        and "secret" not in content["content"]
        and "color" not in content["content"]
    )


def test_code_csv_json_and_yaml_come_back_verbatim(api):
    for name, text in (
        ("add.py", "def add(a, b):\n    return a + b\n"),
        ("people.csv", "name,age\nalice,30\n"),
        ("config.json", '{"retries": 3}'),
        ("deploy.yaml", "replicas: 2\n"),
        ("main.go", "package main\n"),
    ):
        _, content = api.extracted(name, text.encode())
        assert content["content"] == text


def test_chinese_utf8_text_and_gb18030_fallback(api):
    text = "月亮绕着地球转，一个月转一圈。"
    _, content = api.extracted("月亮.txt", text.encode("utf-8"))
    assert content["content"] == text
    assert content["filename"] == "月亮.txt"
    file, content = api.extracted("gbk.txt", text.encode("gb18030"))
    assert content["content"] == text
    assert "GB18030" in file["status_details"]


def test_content_is_json_with_unescaped_chinese(api):
    file = api.wait_done(api.upload_ok("zh.txt", "中文".encode())["id"])
    raw = api.get(f"/files/{file['id']}/content")
    assert raw.headers["content-type"].startswith("text/plain")
    assert "中文" in raw.text  # ensure_ascii=False, as Moonshot sends it
    assert json.loads(raw.text)["content"] == "中文"


def test_png_gets_an_honest_note_with_its_size(api):
    _, content = api.extracted("chart.png", samples.png_bytes(64, 32))
    assert content["content"] == "[offline mode: image chart.png, 64×32; no OCR offline]"
    assert content["file_type"] == "image/png"


def test_broken_image_ends_in_error(api):
    file = api.wait_done(api.upload_ok("photo.jpg", b"not a jpeg")["id"])
    assert file["status"] == "error"
    assert "not an image" in file["status_details"]


def test_epub_chapters_in_spine_order(api):
    _, content = api.extracted("book.epub", samples.epub_bytes(["First written", "Second written"]))
    text = content["content"]
    assert text.index("Second written") < text.index("First written")


def test_legacy_doc_gives_best_effort_text_with_a_warning(api):
    file, content = api.extracted("memo.doc", samples.legacy_doc_bytes("Meet at the harbour at nine o'clock"))
    assert "Meet at the harbour at nine o'clock" in content["content"]
    assert "best effort" in file["status_details"]


def test_legacy_file_with_no_text_ends_in_an_honest_error(api):
    file = api.wait_done(api.upload_ok("empty.xls", bytes([0, 1, 2, 200, 201]) * 200)["id"])
    assert file["status"] == "error"
    assert "legacy binary format" in file["status_details"]


def _zip_bomb(members: dict[str, bytes], bomb_name: str, unpacked_mb: int = 30) -> bytes:
    """A small zip whose `bomb_name` entry inflates to `unpacked_mb` MB of zeros."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        with archive.open(bomb_name, "w", force_zip64=True) as entry:
            chunk = b"0" * 1_000_000
            for _ in range(unpacked_mb):
                entry.write(chunk)
    return buffer.getvalue()


_OOXML_TYPES = (
    b'<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>'
)


@pytest.mark.parametrize(
    "filename, members, bomb_name",
    [
        ("bomb.docx", {"[Content_Types].xml": _OOXML_TYPES}, "word/document.xml"),
        ("bomb.xlsx", {"[Content_Types].xml": _OOXML_TYPES}, "xl/worksheets/sheet1.xml"),
        ("bomb.pptx", {"[Content_Types].xml": _OOXML_TYPES}, "ppt/slides/slide1.xml"),
        ("bomb.epub", {"mimetype": b"application/epub+zip"}, "OEBPS/chapter1.xhtml"),
    ],
)
def test_zip_bomb_is_refused_from_its_directory_without_being_read(api, filename, members, bomb_name):
    data = _zip_bomb(members, bomb_name)
    assert len(data) < 100_000  # tens of KB that would unpack to 30 MB
    started = time.monotonic()
    file = api.wait_done(api.upload_ok(filename, data)["id"])
    assert time.monotonic() - started < 5
    assert file["status"] == "error"
    assert "zip bomb" in file["status_details"] and "would expand to 30,0" in file["status_details"]
    response = api.get(f"/files/{file['id']}/content")
    assert response.status_code == 400 and "zip bomb" in response.json()["error"]["message"]


def test_a_compressible_but_reasonable_docx_still_reads(api):
    # Repetitive text compresses well; under the ratio floor it is no bomb.
    _, content = api.extracted("long.docx", samples.docx_bytes("The tide turns. " * 20_000))
    assert content["content"].count("The tide turns.") == 20_000


@pytest.mark.parametrize(
    "filename, data",
    [
        ("broken.docx", b"PK\x03\x04 not a real zip"),
        ("broken.xlsx", b"PK\x03\x04 not a real zip"),
        ("broken.pptx", b"not a zip at all"),
        ("broken.pdf", b"%PDF-1.7\nthis is not a pdf at all"),
        ("broken.epub", b"PK\x03\x04 nope"),
    ],
)
def test_extraction_errors_name_no_server_path(emu, api, filename, data):
    file = api.wait_done(api.upload_ok(filename, data)["id"])
    assert file["status"] == "error" and file["status_details"]
    details = file["status_details"]
    for leak in (str(emu.data_dir), "/tmp", "var/", file["id"], "/files/"):
        assert leak not in details, details


def test_extracted_text_is_capped_and_said_so(api):
    text = "a" * (MAX_CONTENT_CHARS + 1000)
    file, content = api.extracted("huge.txt", text.encode())
    assert len(content["content"]) == MAX_CONTENT_CHARS
    assert "cut at" in file["status_details"]
