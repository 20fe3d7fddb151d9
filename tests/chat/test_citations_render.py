"""Citation elements: escaping, the verified/unverified look, streaming, the document mark."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.utils import translation

from docqa.chat.citations import citations_check
from docqa.chat.citations_render import (
    QUOTE_SHOWN_CHARS,
    CitedDocument,
    answer_html,
    answer_markdown_footnotes,
    document_marked_html,
    mark_parse,
)

TEXT = "Slide 2\nTides are caused by the moon's gravity. <b>Bold</b> claims & more."
DOCUMENTS = [
    CitedDocument(id=41, name='<img src=x onerror=alert(1)>"report".pdf', url="/documents/41/", text=TEXT),
    CitedDocument(id=42, name="潮汐.txt", url="/documents/42/", text="潮汐是由月球引力引起的。"),
]


class _Elements(HTMLParser):
    def __init__(self):
        super().__init__()
        self.elements = []

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))


def elements(html):
    parser = _Elements()
    parser.feed(html)
    return parser.elements


def citations_in(html):
    return [(tag, attrs) for tag, attrs in elements(html) if attrs.get("data-role") == "citation"]


def test_verified_and_invented_quotes_look_different():
    answer = "**Tides** come from gravity 【1†the moon's gravity】 and 【2†月亮是奶酪做的】."
    html = answer_html(answer, documents=DOCUMENTS)
    (tag1, first), (tag2, second) = citations_in(html)
    assert tag1 == tag2 == "a"
    assert first["data-verified"] == "true" and first["data-document"] == "41"
    assert first["data-quote-index"] == "0"
    start, end = (int(n) for n in first["href"].split("mark=")[1].split("#")[0].split("-"))
    assert TEXT[start:end] == "the moon's gravity"
    assert first["href"].endswith("#cite")
    assert second["data-verified"] == "false" and second["data-document"] == "42"
    assert second["href"] == "/documents/42/"
    assert "not found in the document" in html
    assert html.count("not found in the document") == 1
    assert "<strong>Tides</strong>" in html
    assert "【" not in html and "†" not in html


def test_unverified_label_is_translated():
    with translation.override("zh-hans"):
        html = answer_html("见【2†不存在的话】", documents=DOCUMENTS)
    assert "文档中未找到" in html


def test_a_document_number_outside_the_list_is_a_span_without_a_document():
    html = answer_html("see 【7†the moon's gravity】 and 【x.pdf†moon】", documents=DOCUMENTS)
    found = citations_in(html)
    assert [tag for tag, _ in found] == ["span", "span"]
    assert all(attrs["data-verified"] == "false" and "data-document" not in attrs for _, attrs in found)
    assert html.count("unknown document") == 2


@pytest.mark.parametrize(
    "answer",
    [
        "【1†<script>alert(1)</script>】",
        '【1†"><img src=x onerror=alert(1)>】',
        "【1†<b>Bold</b> claims & more】",
        "a 【1†outer 【2†<svg onload=alert(1)>】 tail】 b】 【1†<iframe",
        "[x](javascript:alert(1)) 【1†moon】 <a href=javascript:alert(1)>y</a>",
    ],
)
def test_quotes_and_names_with_html_are_escaped(answer):
    html = answer_html(answer, documents=DOCUMENTS)
    tags = {tag for tag, _ in elements(html)}
    assert tags <= {"p", "a", "span", "q"}, html
    for _, attrs in elements(html):
        assert not any(name.startswith("on") for name in attrs)
        assert not (attrs.get("href") or "").startswith("javascript")
    if 'data-document="41"' in html:
        assert "&lt;img src=x onerror=alert(1)&gt;&quot;report&quot;.pdf" in html


def test_a_quote_with_html_is_verified_against_the_raw_text():
    [(_, attrs)] = citations_in(answer_html("【1†<b>Bold</b> claims & more】", documents=DOCUMENTS))
    assert attrs["data-verified"] == "true"


def test_the_model_cannot_forge_a_placeholder():
    html = answer_html("\ue0000\ue001 and \ue0001\ue001 【1†moon】", documents=DOCUMENTS)
    assert len(citations_in(html)) == 1


def test_a_50_kb_quote_is_shown_shortened():
    quote = "moon " * 10_000
    html = answer_html(f"【1†{quote}】", documents=DOCUMENTS)
    [(_, attrs)] = citations_in(html)
    assert attrs["data-verified"] == "false"
    assert len(html) < QUOTE_SHOWN_CHARS + 1000


def test_streaming_never_shows_half_a_marker_and_ends_as_the_final_render():
    answer = "Tides **rise** 【1†the moon's gravity】 daily 【2†潮汐是由月球引力引起的】."
    final = answer_html(answer, documents=DOCUMENTS)
    for cut in range(len(answer)):
        html = answer_html(answer[:cut], documents=DOCUMENTS, final=False)
        assert "【" not in html and "†" not in html
    assert answer_html(answer, documents=DOCUMENTS, final=False) == final
    # An unclosed marker at the end of the answer is shown as text.
    assert "【1†never" in answer_html("x 【1†never", documents=DOCUMENTS, final=True)


def test_stored_citations_are_used_without_the_document_text():
    answer = "【1†the moon's gravity】"
    stored = citations_check(answer, [TEXT], [41])
    documents = [CitedDocument(id=41, name="r.pdf", url="/documents/41/")]
    [(_, attrs)] = citations_in(answer_html(answer, documents=documents, citations=stored))
    assert attrs["data-verified"] == "true"


def test_document_page_marks_the_span_and_escapes_the_rest():
    start = TEXT.index("<b>")
    html = document_marked_html(TEXT, (start, start + len("<b>Bold</b>")))
    assert '<mark id="cite" tabindex="-1">&lt;b&gt;Bold&lt;/b&gt;</mark>' in html
    assert "<b>" not in html
    assert document_marked_html("a<b", (5, 9)) == "a&lt;b"
    assert mark_parse("3-9", 10) == (3, 9)
    assert mark_parse("3-11", 10) is None
    assert mark_parse("9-3", 10) is None
    assert mark_parse("x", 10) is None


def test_markdown_export_writes_footnotes_marking_unverified_ones():
    answer = "Tides【1†the moon's gravity】 and cheese【2†月亮是奶酪】."
    citations = citations_check(answer, [TEXT, "潮汐"], [41, 42])
    exported = answer_markdown_footnotes(answer, citations, ["r.pdf", "潮汐.txt"])
    assert exported.startswith("Tides[^1] and cheese[^2].")
    assert "[^1]: r.pdf: “the moon's gravity” (Slide 2)" in exported
    assert "[^2]: 潮汐.txt: “月亮是奶酪” (not found in the document)" in exported
