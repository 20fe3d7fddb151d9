"""The emulator's honest offline answer: no model, just the passages that best match.

It says plainly that no model was called, then cites the top passages of the documents
sent as system messages, ranked by word and CJK-bigram overlap with the last user question.
Each passage is cited verbatim in docqa's citation syntax, `【n†passage】`, n being the
document's number as docqa's system prompt lists them (the system messages after the first,
in order), so offline answers exercise citations and always verify.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from dataclasses import dataclass

from docqa.emulator.tokens import CJK_CHAR

TOP_PASSAGES = 3
_PASSAGE_CHARS = 600

_CJK_RUN = re.compile(f"[{CJK_CHAR}]+")
_WORD = re.compile(r"[0-9A-Za-z\u00c0-\u024f]+(?:['’][A-Za-z]+)?")
_STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "for",
        "from",
        "had",
        "has",
        "have",
        "how",
        "i",
        "in",
        "is",
        "it",
        "its",
        "me",
        "my",
        "of",
        "on",
        "or",
        "our",
        "please",
        "say",
        "so",
        "tell",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "to",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "about",
        "into",
    ]
)
_CJK_STOPCHARS = frozenset("的了是在和与及或吗呢吧啊请问什么怎样如何哪个这那个一")


@dataclass(frozen=True)
class Passage:
    """A stretch of document text and where it came from (`number` 0: not citable)."""

    source: str
    text: str
    number: int = 0


@dataclass(frozen=True)
class ScoredPassage:
    """A passage and how well it matches the question."""

    passage: Passage
    score: float


@dataclass(frozen=True)
class OfflineAnswer:
    """The reasoning and answer texts, and the language they are written in."""

    reasoning: str
    content: str
    language: str


def _stem(word: str) -> str:
    """A crude English stem, so that "tides" finds "tide" and "caused" finds "cause"."""
    word = re.sub(r"['’]s$", "", word)
    for suffix in ("ing", "ed", "es", "s", "e"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3 and not word.endswith("ss"):
            word = word[: -len(suffix)]
            if suffix in ("es", "s") and word.endswith("e") and len(word) > 3:
                word = word[:-1]
            break
    return word


def terms(text: str) -> list[str]:
    """Lowercased, stemmed words (minus stop words) and CJK bigrams: the units of matching."""
    found = [_stem(w.lower()) for w in _WORD.findall(text) if len(w) > 1 and w.lower() not in _STOPWORDS]
    for run in _CJK_RUN.findall(text):
        chars = [c for c in run if c not in _CJK_STOPCHARS] or list(run)
        if len(run) == 1:
            found.append(run)
            continue
        found.extend(run[i : i + 2] for i in range(len(run) - 1))
        # Single characters too, weakly, so a one-character term still finds something.
        found.extend(chars)
    return found


def is_chinese(text: str) -> bool:
    """Whether a question is (mostly) Chinese, to answer in the same language."""
    cjk = sum(len(run) for run in _CJK_RUN.findall(text))
    latin_words = len(_WORD.findall(text))
    return cjk > 0 and cjk >= latin_words


def message_text(content: object) -> str:
    """The text of a message's content, whether a string or a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


_MARKER_BRACKET = re.compile("[【】]")
_SHOWN_AS = re.compile(r"^\d+\. (\S+) = “(.+)”$", re.MULTILINE)


def documents_from_messages(messages: list[dict]) -> list[tuple[str, str]]:
    """(source name, text) of each system message, unwrapping Moonshot's file-content JSON.

    When some system messages are files, the others are instructions (the system prompt),
    not material to quote.
    """
    return [(source, text) for _, source, text in documents_numbered(messages)]


def documents_numbered(messages: list[dict]) -> list[tuple[int, str, str]]:
    """(number, source name, text) of each document, as `documents_from_messages` picks them.

    The number is the one a citation uses: the position among the system messages after the
    first (the system prompt); a lone system message is number 1, and 0 marks the first of
    several when it is quoted as material (it is the prompt, which no citation can name).
    """
    documents = []
    files = []
    number = 0
    system_messages = sum(1 for message in messages if message.get("role") == "system")
    # A prompt may say which file each stored name is ("1. docqa-ab12.pdf = “report.pdf”"),
    # as a model would read it; the quotes then name the source.
    shown_as = {
        remote: shown
        for message in messages
        if message.get("role") == "system"
        for remote, shown in _SHOWN_AS.findall(message_text(message.get("content")))
    }
    for message in messages:
        if message.get("role") != "system":
            continue
        number += 1
        citation_number = number - 1 if system_messages > 1 else number
        text = message_text(message.get("content"))
        source = f"system message {number}"
        stripped = text.strip()
        if stripped.startswith("{"):
            try:
                parsed = json.loads(stripped)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict) and isinstance(parsed.get("content"), str):
                text = parsed["content"]
                source = str(parsed.get("filename") or parsed.get("title") or source)
                source = shown_as.get(source, source)
                files.append((citation_number, source, text))
        documents.append((citation_number, source, text))
    return files or documents


def passages_split(source: str, text: str, number: int = 0) -> list[Passage]:
    """Cut a document into paragraph-sized passages of at most about 600 characters."""
    passages: list[Passage] = []
    current: list[str] = []
    size = 0

    def flush() -> None:
        nonlocal current, size
        if current:
            passages.append(Passage(source, "\n".join(current).strip(), number))
        current, size = [], 0

    for line in text.splitlines():
        line = line.rstrip()
        if not line.strip():
            flush()
            continue
        while len(line) > _PASSAGE_CHARS:
            flush()
            cut = _sentence_cut(line, _PASSAGE_CHARS)
            passages.append(Passage(source, line[:cut].strip(), number))
            line = line[cut:]
        if size + len(line) > _PASSAGE_CHARS:
            flush()
        current.append(line)
        size += len(line) + 1
    flush()
    return [p for p in passages if p.text]


def _sentence_cut(line: str, limit: int) -> int:
    window = line[:limit]
    best = max(window.rfind(mark) for mark in (". ", "。", "！", "？", "! ", "? ", "; ", "；"))
    return best + 1 if best > limit // 3 else limit


def passages_rank(question: str, passages: list[Passage], top: int = TOP_PASSAGES) -> list[ScoredPassage]:
    """The `top` passages sharing the most (rarity-weighted) terms with the question."""
    wanted = set(terms(question))
    if not wanted or not passages:
        return []
    passage_terms = [set(terms(p.text)) for p in passages]
    document_frequency = Counter(t for ts in passage_terms for t in ts if t in wanted)
    total = len(passages)
    scored = []
    for index, (passage, found) in enumerate(zip(passages, passage_terms, strict=True)):
        shared = wanted & found
        if not shared:
            continue
        score = sum(math.log(1 + total / document_frequency[t]) for t in shared)
        scored.append((-score, index, ScoredPassage(passage, round(score, 2))))
    scored.sort()
    return [item for _, _, item in scored[:top]]


def offline_answer(messages: list[dict]) -> OfflineAnswer:
    """Compose the offline reasoning and answer for a chat request's messages."""
    question = ""
    for message in reversed(messages):
        if message.get("role") == "user":
            question = message_text(message.get("content"))
            break
    documents = documents_numbered(messages)
    passages = [p for number, source, text in documents for p in passages_split(source, text, number)]
    best = passages_rank(question, passages)
    chinese = is_chinese(question)
    reasoning = _reasoning(chinese, len(documents), len(passages), best)
    content = _content(chinese, documents, best)
    return OfflineAnswer(reasoning=reasoning, content=content, language="zh" if chinese else "en")


def _reasoning(chinese: bool, documents: int, passages: int, best: list[ScoredPassage]) -> str:
    if chinese:
        return (
            f"离线模式：没有运行任何模型。正在按与问题共有的词语和双字组合，为 {documents} 条系统消息中的 "
            f"{passages} 个段落排序……引用最相关的 {len(best)} 段。"
        )
    return (
        f"Offline mode: no model is running. Ranking {passages} passages from {documents} system "
        f"message(s) by the words they share with the question… citing the best {len(best)}."
    )


def _content(chinese: bool, documents: list, best: list[ScoredPassage]) -> str:
    if chinese:
        lines = [
            "**离线模式**：本回答没有调用任何模型，而是由本地 Moonshot 模拟器从文档中挑出与问题最相关的段落。",
            "设置 `MOONSHOT_API_KEY` 后即可获得真正的回答。",
            "",
        ]
        if not documents:
            lines.append("这次提问没有附带任何文档内容。")
        elif not best:
            lines.append("文档中没有与问题共有词语的段落。")
        else:
            lines.append("### 最相关的段落")
            lines.append("")
            for number, item in enumerate(best, start=1):
                lines.append(f"{number}. **{item.passage.source}**：{_cite(item.passage)}")
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"
    lines = [
        "**Offline mode**: no language model was called. The local Moonshot emulator picked the "
        "passages of your documents that best match the question.",
        "Set `MOONSHOT_API_KEY` to get a real answer.",
        "",
    ]
    if not documents:
        lines.append("No document text was sent with this question.")
    elif not best:
        lines.append("No passage of the documents shares a word with the question.")
    else:
        lines.append("### Best-matching passages")
        lines.append("")
        for number, item in enumerate(best, start=1):
            lines.append(f"{number}. **{item.passage.source}**: {_cite(item.passage)}")
            lines.append("")
    return "\n".join(lines).rstrip() + "\n"


def _cite(passage: Passage) -> str:
    """The passage as a citation marker, verbatim (its longest stretch free of 【 and 】)."""
    text = max(_MARKER_BRACKET.split(passage.text), key=len).strip()
    if passage.number < 1:
        return "“" + " ".join(text.split()) + "”"
    return f"【{passage.number}†{text}】"
