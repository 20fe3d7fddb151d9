"""The quote matcher: normalisation, the near-miss tolerance, offsets and locations."""

from __future__ import annotations

import random
import time

import pytest

from docqa.chat.citations_match import FUZZY_MAX_CHARS, normalise, prepared, quote_find

ENGLISH = (
    "Page 1\nThe harbour master publishes a tide table every Monday morning, and the pilots read "
    "it before they take a ship through the narrow channel at the mouth of the river. "
    "Lighthouses use Fresnel lenses to focus their beams over many kilometres of open sea.\n"
)
CHINESE = (
    "第 2 页\n潮汐是由月球引力引起的，每天大约发生两次。港务长每周一发布潮汐表，引航员据此安排船只进出港口。"
)


def _quote_with_edits(text: str, edits: int) -> str:
    """`text` with `edits` characters replaced by one that is nowhere in the document."""
    chars = list(text)
    step = len(chars) // edits
    for k in range(edits):
        chars[k * step + step // 2] = "#"
    return "".join(chars)


def test_exact_quote_in_english_chinese_and_mixed_text():
    mixed = ENGLISH + CHINESE + "\n使用 Python 编写的脚本。"
    for quote in ("the pilots read it", "港务长每周一发布潮汐表", "使用Python编写的脚本"):
        found = quote_find(quote, mixed)
        assert found.verified and found.score == 1.0
        assert normalise(mixed[found.span[0] : found.span[1]]) == normalise(quote)


def test_normalisation_unifies_case_quotes_dashes_and_cjk_punctuation():
    document = "He said “Don’t — ever” here.\n潮汐，由月球引起：真的！（是）。"
    assert quote_find('HE SAID "DON\'T - EVER" HERE', document).score == 1.0
    assert quote_find("潮汐,由月球引起:真的!(是).", document).score == 1.0
    assert quote_find("潮汐，由月球引起：真的！（是）。", document).score == 1.0


def test_offsets_map_back_through_ligatures_fullwidth_and_collapsed_whitespace():
    document = "Intro. The ﬁnal ＲＥＰＯＲＴ   is\n\n  ready now."
    found = quote_find("final report is ready", document)
    assert document[found.span[0] : found.span[1]] == "ﬁnal ＲＥＰＯＲＴ   is\n\n  ready"
    # Half a ligature still marks the whole character.
    found = quote_find("inal", document)
    assert document[found.span[0] : found.span[1]] == "ﬁnal"
    found = quote_find("is ready", document)
    assert document[found.span[0] : found.span[1]] == "is\n\n  ready"


def test_offsets_across_chunk_boundaries_of_a_long_mixed_document():
    rng = random.Random(7)
    pieces = [
        "The ﬁnal report ",
        "潮汐是由\n月球",
        "ＦＵＬＬ　ｗｉｄｔｈ，",
        "Straße  ",
        "“quoted” — ",
        "  \n\n",
        "x" * 40,
    ]
    document = "".join(rng.choice(pieces) for _ in range(1500))
    checked = 0
    while checked < 150:
        start = rng.randrange(len(document) - 200)
        quote = document[start : start + rng.randrange(5, 150)]
        if not normalise(quote):
            continue
        checked += 1
        found = quote_find(quote, document)
        assert found.verified and found.score == 1.0, quote
        assert normalise(quote) in normalise(document[found.span[0] : found.span[1]])


@pytest.mark.parametrize("edits, verified", [(9, True), (10, True), (11, False)])
def test_tolerance_boundary_english(edits, verified):
    exact = normalise(ENGLISH)[60:160]
    assert len(exact) == 100
    found = quote_find(_quote_with_edits(exact, edits), ENGLISH)
    assert found.verified is verified
    if verified:
        assert found.score == pytest.approx(1 - edits / 100)
        assert normalise(ENGLISH[found.span[0] : found.span[1]]) == exact
    else:
        # Below the tolerance the search may give up early: the score is only "under 0.90".
        assert found.score < 0.9 and found.span is None


@pytest.mark.parametrize("edits, verified", [(2, True), (3, False)])
def test_tolerance_boundary_chinese(edits, verified):
    exact = "潮汐是由月球引力引起的,每天大约发生两次"
    assert len(exact) == 20
    found = quote_find(_quote_with_edits(exact, edits), CHINESE)
    assert found.verified is verified
    assert found.score == pytest.approx(1 - edits / 20) if verified else found.score < 0.9


def test_near_misses_a_model_makes():
    # A changed word ending and a dropped article: within the tolerance.
    found = quote_find("The harbour master published a tide table every Monday morning", ENGLISH)
    assert found.verified and 0.9 <= found.score < 1
    assert ENGLISH[found.span[0] : found.span[1]].startswith("The harbour master publishes")
    found = quote_find("潮汐是由月亮引力引起的，每天大约发生两次", CHINESE)
    assert found.verified and found.location == "第 2 页"
    # A paraphrase is not a quote.
    assert not quote_find("Harbour tide tables appear each Monday for the pilots", ENGLISH).verified
    assert not quote_find("潮汐表由引航员每周发布", CHINESE).verified


def test_invented_and_empty_quotes_are_not_found():
    assert quote_find("Submarines navigate by starlight alone", ENGLISH).verified is False
    assert quote_find("   ", ENGLISH).verified is False
    assert quote_find("tide", "").verified is False


@pytest.mark.parametrize(
    "heading, label",
    [
        ("## Slide 2", "Slide 2"),
        ("--- Page 3 of 9 ---", "Page 3 of 9"),
        ("Sheet: Q3", "Sheet: Q3"),
        ("Sheet 2: Sales", "Sheet 2: Sales"),
        ("第 3 页", "第 3 页"),
        ("第5张幻灯片", "第5张幻灯片"),
        ("Page layout matters a lot", ""),
        ("The page 3 results", ""),
    ],
)
def test_nearest_location_heading(heading, label):
    document = f"Preface text.\n{heading}\nRevenue grew by twelve percent in the quarter."
    found = quote_find("revenue grew by twelve percent", document)
    assert found.verified and found.location == label


def test_location_is_the_nearest_preceding_one():
    document = "Slide 1\nalpha beta gamma\nSlide 2\ndelta epsilon zeta\nSlide 3\neta theta"
    assert quote_find("delta epsilon", document).location == "Slide 2"
    assert quote_find("alpha beta", document).location == "Slide 1"
    assert [label for _, label in prepared(document).locations] == ["Slide 1", "Slide 2", "Slide 3"]


def test_long_quotes_bounded_cost():
    rng = random.Random(3)
    words = [
        "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 9)))
        for _ in range(3000)
    ]
    document = " ".join(rng.choice(words) for _ in range(40_000))[:200_000]
    fifty_kb = document[100_000:150_000]
    started = time.perf_counter()
    assert quote_find(fifty_kb, document).verified
    # Past FUZZY_MAX_CHARS only an exact quote counts, so one typo is not searched for.
    assert not quote_find("#" + fifty_kb[1:], document).verified
    invented = " ".join(rng.choice(words) for _ in range(FUZZY_MAX_CHARS // 6))[:FUZZY_MAX_CHARS]
    assert not quote_find(invented, document).verified
    near = _quote_with_edits(document[5000 : 5000 + FUZZY_MAX_CHARS], 150)
    assert quote_find(near, document).verified
    # Generous: the point is "not quadratic" (a full alignment would take minutes).
    assert time.perf_counter() - started < 5
