"""Is a quoted passage really in the document? Normalised search with a bounded near-miss rule.

Pure functions of plain strings (no database, no Django), so `docqa.chat.citations` and the
benchmark call them directly.

**Normalisation** (applied to quote and document alike): Unicode NFKC (fullwidth ，：；！？（）
become ASCII, ligatures like "ﬁ" become "fi"), case folding (`str.casefold`, which folds every
cased script, not only Latin), curly/straight quotes, dashes and the CJK marks 。、「」『』【】
unified, soft hyphens and zero-width characters removed, whitespace runs collapsed to one space,
and a space next to a CJK character dropped (PDF extraction breaks Chinese lines anywhere, and
mixed text is written both "使用 Python" and "使用Python").

**Tolerance:** a quote is verified when some stretch of the document is within Levenshtein
distance ⌊m/10⌋ of it, m being the quote's normalised length, i.e. the score
1 - distance/m is at least 0.90 (100 characters: 10 edits verified, 11 not). The highlighted
span is that stretch, in the document's original offsets.

**Bounded cost:** the exact normalised substring search (C speed) is tried first. Only when it
fails, and only for quotes up to `FUZZY_MAX_CHARS`, the fuzzy search runs: the quote is cut into
⌊m/10⌋+1 pieces, one of which must occur exactly in any stretch within the tolerance
(pigeonhole); the diagonals where pieces occur vote for a few candidate windows, and Myers'
bit-parallel edit distance runs on those windows only. A longer quote must match exactly.

**Cache:** a document's normalised text, its chunk table and its page/slide/sheet markers are
kept in an in-process LRU of `PREPARED_CACHE_SIZE` documents keyed by the text itself (Python's
string hash), so the answers of a conversation normalise each document once.
"""

from __future__ import annotations

import bisect
import functools
import re
import unicodedata
from dataclasses import dataclass, field

FUZZY_MAX_CHARS = 2000
# Edits allowed per normalised character of the quote: 1/10, i.e. a 0.90 score.
TOLERANCE_DIVISOR = 10
PREPARED_CACHE_SIZE = 32
# A piece found more often than this says little about where the quote is; it is skipped.
_PIECE_OCCURRENCES_MAX = 200
# Candidate windows examined, and the total edit-distance work (window chars × 64-bit words).
_WINDOWS_MAX = 8
_WORK_MAX = 400_000
_CHUNK_CHARS = 2048

_CJK = (
    "\u2e80-\u2fff\u3000-\u303f\u3040-\u30ff\u3100-\u312f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef"
)
_CJK_CHAR = re.compile(f"[{_CJK}]")
# Starts with a literal space, so the engine skips ahead instead of testing every position.
_SPACE_BY_CJK = re.compile(f" (?:(?=[{_CJK}])|(?<=[{_CJK}] ))")
_SPACE = re.compile(r"\s")

_UNIFY = {
    **dict.fromkeys("‘’‚‛′‵`´", "'"),
    **dict.fromkeys("“”„‟″‶«»〝〞〟「」『』", '"'),
    **dict.fromkeys("‐‑‒–—―−﹘﹣─", "-"),
    "。": ".",
    "｡": ".",
    "、": ",",
    "【": "[",
    "】": "]",
    "〔": "[",
    "〕": "]",
    "〖": "[",
    "〗": "]",
    "〜": "~",
    **dict.fromkeys("\u00ad\u200b\u200c\u200d\u2060\ufeff", ""),
}

_LOCATION_HINT = re.compile("slide|page|sheet|第", re.IGNORECASE)
# A line that is only a page, slide or sheet heading: "Slide 2", "## Page 3 of 9",
# "--- Sheet: Q3 ---", "Sheet 2: Sales", "第 3 页", "第3张幻灯片".
_LOCATION = re.compile(
    r"^[ \t#>*=\-\[(|]*"
    r"((?:slide|page|sheet)\s*(?:[0-9]+(?:\s*(?:of|/)\s*[0-9]+)?(?:\s*[:：.]\s*[^\n]{0,60}?)?|[:：]\s*[^\n]{1,60}?)"
    r"|第\s*[0-9一二三四五六七八九十百千]+\s*[页頁张張](?:幻灯片|工作表)?)"
    r"[ \t#*=\-\])|]*$",
    re.IGNORECASE | re.MULTILINE,
)


def _fold(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    # One C-speed replace per character present: str.translate with a dict looks up every
    # character of a 200 KB text in Python objects and is ten times slower.
    for char, replacement in _UNIFY.items():
        if char in text:
            text = text.replace(char, replacement)
    return text


def _normalise_chunk(text: str) -> str:
    text = _fold(text)
    # str.split collapses whitespace runs at C speed; the ends keep one space each so that
    # chunks join as the whole text would.
    words = text.split()
    if not words:
        text = " " if text else ""
    else:
        text = (" " if text[0].isspace() else "") + " ".join(words) + (" " if text[-1].isspace() else "")
    return _SPACE_BY_CJK.sub("", text) if " " in text and _CJK_CHAR.search(text) else text


def _chunk_starts(text: str) -> list[int]:
    """Cut points about every 2 KB, at the start of a whitespace run where there is one.

    Normalisation never reaches across such a cut (a space is a starter for NFKC, and a run is
    never split), so the chunks normalise independently and a span maps back within one chunk.
    """
    starts = [0]
    while starts[-1] + _CHUNK_CHARS < len(text):
        target = starts[-1] + _CHUNK_CHARS
        found = _SPACE.search(text, target, target + _CHUNK_CHARS)
        if found:
            cut = found.start()
            while cut > starts[-1] + 1 and text[cut - 1].isspace():
                cut -= 1
        else:
            cut = target
            while cut < len(text) and unicodedata.combining(text[cut]):
                cut += 1
        if cut >= len(text):
            break
        starts.append(cut)
    return starts


def _join(previous_last: str, chunk: str) -> tuple[str, bool]:
    """The chunk as it continues the text so far; whether its leading space was dropped."""
    if chunk.startswith(" ") and (previous_last in ("", " ") or _CJK_CHAR.match(previous_last)):
        return chunk[1:], True
    return chunk, False


def _normalise_chunks(text: str) -> tuple[list[int], list[int], list[bool], str]:
    """Chunk starts (original, normalised), which chunks lost a leading space, and the text."""
    starts = _chunk_starts(text)
    parts: list[str] = []
    normalised_starts: list[int] = []
    dropped: list[bool] = []
    size = 0
    last = ""
    for index, start in enumerate(starts):
        end = starts[index + 1] if index + 1 < len(starts) else len(text)
        part, drop = _join(last, _normalise_chunk(text[start:end]))
        normalised_starts.append(size)
        dropped.append(drop)
        parts.append(part)
        size += len(part)
        if part:
            last = part[-1]
    return starts, normalised_starts, dropped, "".join(parts)


def normalise(text: str) -> str:
    """The form quotes and documents are compared in (see the module docstring)."""
    return _normalise_chunks(text)[3].strip()


@dataclass(eq=False)
class Prepared:
    """A document's normalised text and what it takes to map offsets back."""

    original: str
    normalised: str
    chunk_original: list[int]
    chunk_normalised: list[int]
    chunk_dropped_space: list[bool]
    locations: list[tuple[int, str]]
    _maps: dict[int, list[tuple[int, int]] | None] = field(default_factory=dict)

    def original_span(self, start: int, end: int) -> tuple[int, int]:
        """Original offsets (start, end) of the normalised span [start, end)."""
        return self._original_at(start)[0], self._original_at(end - 1)[1]

    def _original_at(self, position: int) -> tuple[int, int]:
        chunk = bisect.bisect_right(self.chunk_normalised, position) - 1
        offset = self.chunk_original[chunk]
        local = position - self.chunk_normalised[chunk]
        if chunk not in self._maps:
            self._maps[chunk] = self._chunk_map(chunk)
        mapping = self._maps[chunk]
        if mapping is not None and local < len(mapping):
            start, end = mapping[local]
            return offset + start, offset + end
        # The per-character walk disagreed with the fast path (e.g. Hangul jamo composing
        # across characters): fall back to proportional offsets within the chunk.
        original_end = self._chunk_end(chunk, self.chunk_original, len(self.original))
        normalised_end = self._chunk_end(chunk, self.chunk_normalised, len(self.normalised))
        ratio = (original_end - offset) / max(1, normalised_end - self.chunk_normalised[chunk])
        at = min(original_end - 1, offset + int(local * ratio))
        return at, at + 1

    @staticmethod
    def _chunk_end(chunk: int, starts: list[int], total: int) -> int:
        return starts[chunk + 1] if chunk + 1 < len(starts) else total

    def _chunk_map(self, chunk: int) -> list[tuple[int, int]] | None:
        """(original start, original end) of each normalised character of a chunk."""
        begin = self.chunk_original[chunk]
        text = self.original[begin : self._chunk_end(chunk, self.chunk_original, len(self.original))]
        entries: list[tuple[str, int, int]] = []
        i = 0
        while i < len(text):
            j = i + 1
            while j < len(text) and unicodedata.combining(text[j]):
                j += 1
            for char in _fold(text[i:j]):
                if char.isspace():
                    if entries and entries[-1][0] == " ":
                        entries[-1] = (" ", entries[-1][1], j)
                        continue
                    char = " "
                entries.append((char, i, j))
            i = j
        kept = [
            entry
            for k, entry in enumerate(entries)
            if entry[0] != " "
            or not (
                (k > 0 and _CJK_CHAR.match(entries[k - 1][0]))
                or (k + 1 < len(entries) and _CJK_CHAR.match(entries[k + 1][0]))
            )
        ]
        if self.chunk_dropped_space[chunk] and kept and kept[0][0] == " ":
            kept = kept[1:]
        expected = self.normalised[
            self.chunk_normalised[chunk] : self._chunk_end(chunk, self.chunk_normalised, len(self.normalised))
        ]
        if "".join(entry[0] for entry in kept) != expected:
            return None
        return [(start, end) for _, start, end in kept]

    def location_before(self, original_offset: int) -> str:
        """The nearest page/slide/sheet heading at or before an original offset, or ""."""
        index = bisect.bisect_right(self.locations, (original_offset, "\uffff")) - 1
        return self.locations[index][1] if index >= 0 else ""


@functools.lru_cache(maxsize=PREPARED_CACHE_SIZE)
def _prepare(text: str) -> Prepared:
    starts, normalised_starts, dropped, normalised = _normalise_chunks(text)
    locations = []
    for hint in _LOCATION_HINT.finditer(text):
        line_start = text.rfind("\n", 0, hint.start()) + 1
        if locations and locations[-1][2] == line_start:
            continue
        found = _LOCATION.match(text, line_start)
        if found:
            locations.append((found.start(1), " ".join(found.group(1).split()), line_start))
    return Prepared(text, normalised, starts, normalised_starts, dropped, [(a, b) for a, b, _ in locations])


def prepared(text: str) -> Prepared:
    """The document's normalised form (cached, see the module docstring)."""
    return _prepare(text)


@dataclass(frozen=True)
class QuoteMatch:
    """Where a quote was found: verified or not, its score and its original span."""

    verified: bool
    score: float
    span: tuple[int, int] | None
    location: str = ""


NOT_FOUND = QuoteMatch(verified=False, score=0.0, span=None)


def quote_find(quote: str, document: str) -> QuoteMatch:
    """Find a quote in a document's text; the span is in the document's original offsets."""
    needle = normalise(quote)
    if not needle or not document:
        return NOT_FOUND
    doc = _prepare(document)
    at = doc.normalised.find(needle)
    if at >= 0:
        return _match(doc, 1.0, at, at + len(needle))
    budget = len(needle) // TOLERANCE_DIVISOR
    if budget == 0 or len(needle) > FUZZY_MAX_CHARS:
        return NOT_FOUND
    best = _fuzzy(needle, doc.normalised, budget)
    if best is None:
        return NOT_FOUND
    distance, start, end = best
    score = round(1 - distance / len(needle), 4)
    if distance > budget:
        return QuoteMatch(verified=False, score=score, span=None)
    return _match(doc, score, start, end)


def _match(doc: Prepared, score: float, start: int, end: int) -> QuoteMatch:
    span = doc.original_span(start, end)
    return QuoteMatch(verified=True, score=score, span=span, location=doc.location_before(span[0]))


def _occurrences(text: str, part: str) -> list[int]:
    """Where `part` occurs, or nothing when it occurs too often to say where a quote is."""
    found: list[int] = []
    at = text.find(part)
    while at >= 0:
        if len(found) == _PIECE_OCCURRENCES_MAX:
            return []
        found.append(at)
        at = text.find(part, at + 1)
    return found


def _fuzzy(needle: str, text: str, budget: int) -> tuple[int, int, int] | None:
    """(distance, start, end) of the stretch closest to the needle among the candidates.

    The needle is cut into budget + 1 pieces: a stretch within `budget` edits contains one of
    them unchanged (an edit touches one piece), on a diagonal (text offset - needle offset)
    within `budget` of the stretch's own. As soon as two pieces agree on a diagonal that window
    is aligned, and a match within the tolerance ends the search; otherwise, once every piece
    is placed, the windows with the most pieces are aligned, within a work budget.
    """
    count = budget + 1
    size = len(needle) // count
    hits: list[tuple[int, int]] = []  # (diagonal, piece), sorted
    aligned: list[int] = []  # diagonals whose window was aligned
    best: tuple[int, int, int] | None = None
    work = 0

    def align(first: int, last: int) -> tuple[int, int, int] | None:
        nonlocal best, work
        start, end = max(0, first - 2 * budget), min(len(text), last + len(needle) + 2 * budget)
        work += (end - start) * (len(needle) // 64 + 1)
        aligned.append(first)
        found = _best_in(needle, text, start, end)
        if found and (best is None or found[0] < best[0]):
            best = found
        return found

    def seen(diagonal: int) -> bool:
        return any(abs(diagonal - other) <= budget for other in aligned)

    for piece in range(count):
        offset = piece * size
        part = needle[offset : offset + size] if piece < count - 1 else needle[offset:]
        if not part.strip():
            continue
        for at in _occurrences(text, part):
            diagonal = at - offset
            low = bisect.bisect_left(hits, (diagonal - budget, -1))
            high = bisect.bisect_right(hits, (diagonal + budget, count))
            if high > low and not seen(diagonal) and work < _WORK_MAX:
                found = align(min(diagonal, hits[low][0]), max(diagonal, hits[high - 1][0]))
                if found and found[0] <= budget:
                    return found
            bisect.insort(hits, (diagonal, piece))
    clusters: list[tuple[int, int, int]] = []  # (-votes, first diagonal, last diagonal)
    i = 0
    while i < len(hits):
        j = i
        while j + 1 < len(hits) and hits[j + 1][0] - hits[i][0] <= 2 * budget:
            j += 1
        votes = len({piece for _, piece in hits[i : j + 1]})
        clusters.append((-votes, hits[i][0], hits[j][0]))
        i = j + 1
    clusters.sort()
    for _, first, last in clusters[:_WINDOWS_MAX]:
        if seen(first) and seen(last):
            continue
        if best is not None and work > _WORK_MAX:
            break
        align(first, last)
    return best


def _best_in(needle: str, text: str, start: int, end: int) -> tuple[int, int, int] | None:
    """(distance, start, end) of the stretch of text[start:end] closest to the needle."""
    distance, last = _myers(needle, text, start, end, anchored=False)
    if last < 0:
        return None
    # The stretch ends at `last`; its start is found by matching the reversed needle against the
    # reversed text, anchored at `last` (a stretch at distance d is at most m + d long).
    reach = max(start, last + 1 - len(needle) - distance)
    backwards = text[reach : last + 1][::-1]
    _, reach_back = _myers(needle[::-1], backwards, 0, len(backwards), anchored=True)
    return distance, last - reach_back, last + 1


def _myers(pattern: str, text: str, start: int, end: int, *, anchored: bool) -> tuple[int, int]:
    """Myers/Hyyrö bit-parallel edit distance: (best distance, index where it ends).

    Not anchored: the best over every stretch ending in text[start:end] (approximate search).
    Anchored: the best over every prefix of text[start:end] (index relative to `start`).
    """
    m = len(pattern)
    masks: dict[str, int] = {}
    for i, char in enumerate(pattern):
        masks[char] = masks.get(char, 0) | (1 << i)
    full = (1 << m) - 1
    high = 1 << (m - 1)
    carry = 1 if anchored else 0
    positive, negative, score = full, 0, m
    best, best_at = m, -1
    for j in range(start, end):
        eq = masks.get(text[j], 0)
        xv = eq | negative
        xh = ((((eq & positive) + positive) & full) ^ positive) | eq
        ph = negative | (~(xh | positive) & full)
        mh = positive & xh
        if ph & high:
            score += 1
        elif mh & high:
            score -= 1
        ph = ((ph << 1) | carry) & full
        mh = (mh << 1) & full
        positive = mh | (~(xv | ph) & full)
        negative = ph & xv
        if score < best:
            best, best_at = score, j
    if anchored:
        return best, best_at - start
    return best, best_at
