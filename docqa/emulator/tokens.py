"""One deterministic token estimate, used by the estimate endpoint, usage and the context check.

The real tokenizer is not public; this one is close enough for budgeting: about one token
per four characters of Latin text and one per CJK character, plus a little per message.
"""

from __future__ import annotations

import math
import re

# CJK ideographs, kana, hangul and full-width punctuation: each is about one token.
CJK_CHAR = "\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef"
_CJK_RE = re.compile(f"[{CJK_CHAR}]")

TOKENS_PER_MESSAGE = 4
TOKENS_PER_REQUEST = 3
# What an image part costs in a multimodal message; the real figure depends on its size.
TOKENS_PER_IMAGE = 1024


def text_tokens(text: str) -> int:
    """Estimate the tokens of a piece of text."""
    if not text:
        return 0
    cjk = len(_CJK_RE.findall(text))
    other = len(text) - cjk
    return cjk + math.ceil(other / 4)


def content_tokens(content: object) -> int:
    """Estimate the tokens of a message's `content`: a string or a list of parts."""
    if isinstance(content, str):
        return text_tokens(content)
    if isinstance(content, list):
        total = 0
        for part in content:
            if not isinstance(part, dict):
                continue
            if part.get("type") == "text":
                total += text_tokens(str(part.get("text", "")))
            else:
                total += TOKENS_PER_IMAGE
        return total
    return 0


def messages_tokens(messages: list[dict]) -> int:
    """Estimate the prompt tokens of a list of chat messages."""
    total = TOKENS_PER_REQUEST
    for message in messages:
        total += TOKENS_PER_MESSAGE + content_tokens(message.get("content"))
        if message.get("name"):
            total += text_tokens(str(message["name"]))
    return total
