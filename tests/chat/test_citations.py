"""Citation markers: parsing, streaming holdback, verification results and the summary."""

from __future__ import annotations

import pytest
from django.utils import translation

from docqa.chat.citations import Citation, citations_check, citations_summary, markers_find, stream_split

DOCS = [
    "Slide 1\nTides are caused by the moon's gravity.\n\nSlide 2\nThe harbour master publishes a tide table.",
    "第 3 页\n潮汐是由月球引力引起的。灯塔使用菲涅耳透镜。",
]


def test_markers_in_english_chinese_and_mixed_text():
    text = "Tides【1†moon's gravity】 and 潮汐【2†月球引力引起的】, see 【２†灯塔】 and 【1:0†tide table】."
    markers = markers_find(text)
    assert [(m.number, m.quote) for m in markers] == [
        (1, "moon's gravity"),
        (2, "月球引力引起的"),
        (2, "灯塔"),
        (1, "tide table"),
    ]
    assert [m.index for m in markers] == [0, 1, 2, 3]
    assert text[markers[0].start : markers[0].end] == "【1†moon's gravity】"


def test_brackets_without_a_dagger_are_text_and_other_references_are_unverifiable():
    assert markers_find("【注意】 this is not a citation, nor is 【1: words】") == []
    [marker] = markers_find("see 【report.pdf†growth was 12%】")
    assert marker.number is None and marker.reference == "report.pdf"
    [citation] = citations_check("see 【report.pdf†growth】 and", DOCS, [10, 11])
    assert not citation.verified and citation.document_id is None


def test_nested_and_unbalanced_markers_innermost_wins():
    text = "a 【1†outer 【2†月球引力】 tail】 b】 c 【1†never closed"
    markers = markers_find(text)
    assert [(m.number, m.quote) for m in markers] == [(2, "月球引力")]
    [marker] = markers_find("】】【【1†x】")
    assert (marker.start, marker.end, marker.number, marker.quote) == (3, 8, 1, "x")


def test_stream_holds_back_an_open_marker_until_it_closes():
    assert stream_split("Tides 【1†moon's gra") == ("Tides ", "【1†moon's gra")
    assert stream_split("Tides 【") == ("Tides ", "【")
    assert stream_split("Tides 【1†moon】 rise") == ("Tides 【1†moon】 rise", "")
    # At the end, an unclosed marker is plain text.
    assert stream_split("Tides 【1†moon's gra", final=True) == ("Tides 【1†moon's gra", "")
    # Ordinary brackets are released as soon as they cannot be a marker.
    assert stream_split("note 【注意\n") == ("note 【注意\n", "")
    assert stream_split("x 【" + "a" * 81) == ("x 【" + "a" * 81, "")
    # An open marker followed by another is plain text; only the last one is held.
    assert stream_split("【1†a 【2†b") == ("【1†a ", "【2†b")


def test_streamed_prefixes_never_show_half_a_marker():
    answer = "Tides【1†moon's gravity】 rise, 潮汐【2†月球引力】【注意】 end 【1†open"
    final = markers_find(answer)
    for cut in range(len(answer) + 1):
        shown, held = stream_split(answer[:cut])
        assert shown + held == answer[:cut]
        assert "†" not in shown[shown.rfind("】") + 1 :] or "【" not in shown[shown.rfind("】") + 1 :]
        assert markers_find(shown) == final[: len(markers_find(shown))]


def test_a_50_kb_quote_parses_in_linear_time_and_is_checked_boundedly():
    quote = "word " * 10_000
    text = "【" * 20_000 + f"【1†{quote}】" + "】" * 20_000
    [marker] = markers_find(text)
    assert len(marker.quote) == len(quote.strip())
    [citation] = citations_check(text, DOCS, [10, 11])
    assert not citation.verified and citation.span is None


def test_check_fills_ids_spans_and_locations():
    answer = "【1†the harbour master publishes】 【2†潮汐是由月球引力引起的.】 【3†no such document】 【1†made up words here】"
    first, second, third, fourth = citations_check(answer, DOCS, [10, 11])
    assert first.verified and first.document_id == 10 and first.location == "Slide 2"
    assert DOCS[0][first.span[0] : first.span[1]] == "The harbour master publishes"
    assert second.verified and second.document_id == 11 and second.location == "第 3 页"
    assert DOCS[1][second.span[0] : second.span[1]] == "潮汐是由月球引力引起的。"
    assert third.document_number == 3 and third.document_id is None and not third.verified
    assert not fourth.verified and fourth.document_id == 10 and fourth.span is None


def test_citation_round_trips_through_json_values():
    [citation] = citations_check("【1†moon's gravity】", DOCS, [10, 11])
    assert Citation.from_dict(citation.to_dict()) == citation


def _citations(verified: int, total: int) -> list[Citation]:
    return [
        Citation(i, 1, 1, "q", i < verified, 1.0 if i < verified else 0.0, None, "") for i in range(total)
    ]


@pytest.mark.parametrize(
    "verified, total, english, chinese",
    [
        (3, 3, "3 quotes, 3 verified", "3 条引文，3 条已核实"),
        (1, 1, "1 quote, 1 verified", "1 条引文，1 条已核实"),
        (2, 3, "2 of 3 verified", "3 条引文中 2 条已核实"),
        (0, 0, "", ""),
    ],
)
def test_summary_in_english_and_chinese(verified, total, english, chinese):
    with translation.override("en"):
        assert citations_summary(_citations(verified, total)) == english
    with translation.override("zh-hans"):
        assert citations_summary(_citations(verified, total)) == chinese
