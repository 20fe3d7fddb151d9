"""What is sent to Moonshot for one answer: message assembly and the token budget.

Pure functions of plain values (no database, no network), so every rule here is tested
directly. `docqa.chat.prepare` gathers the values and calls them.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

# Moonshot's own system prompt, word for word from its docs (the file-extract examples).
KIMI_SYSTEM_PROMPT_EN = (
    "You are Kimi, an AI assistant provided by Moonshot AI. You are particularly skilled in Chinese "
    "and English conversations. You provide users with safe, helpful, and accurate answers. You will "
    "refuse to answer any questions involving terrorism, racism, pornography, or violence. Moonshot AI "
    "is a proper noun and should not be translated into other languages."
)
KIMI_SYSTEM_PROMPT_ZH = (
    "你是 Kimi，由 Moonshot AI 提供的人工智能助手，你更擅长中文和英文的对话。你会为用户提供安全，有帮助，"
    "准确的回答。同时，你会拒绝一切涉及恐怖主义，种族歧视，黄色暴力等问题的回答。Moonshot AI 为专有名词，"
    "不可翻译成其他语言。"
)

# Appended to the list of documents (see `system_prompt_with_names`); not stored with the
# conversation, so conversations started before it was written get it too, and never a
# different one from turn to turn.
CITATION_INSTRUCTION_EN = (
    "Support your statements with verbatim quotes from the documents, each written as "
    "【n†exact words from the document】, where n is the document's number in the list above. "
    "Copy the words exactly; do not quote what the documents do not say."
)
CITATION_INSTRUCTION_ZH = (
    "请用文档中的原文逐字引用来支持你的陈述，每处引用写作【n†文档中的原话】，其中 n 是上面列表中文档的编号。"
    "请一字不差地照抄原文，不要引用文档中没有的内容。"
)

# The moonshot-v1 family by window, smallest first; "auto" means docqa picks the size.
MOONSHOT_V1_SIZES = (("moonshot-v1-8k", 8192), ("moonshot-v1-32k", 32768), ("moonshot-v1-128k", 131072))
MOONSHOT_V1_AUTO = "moonshot-v1-auto"
# When nothing better is known (the models list is not cached yet).
FALLBACK_CONTEXT_LENGTH = 131072
# Below this many completion tokens an answer is not worth starting.
MIN_COMPLETION_TOKENS = 256
# The local estimate is trusted up to this share of the window; past it the task asks
# Moonshot's tokenizer for the exact count before sending.
LOCAL_ESTIMATE_TRUSTED_SHARE = 0.85

_CJK = re.compile(
    "[\u3000-\u303f\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff00-\uffef]"
)
TOKENS_PER_MESSAGE = 8
TOKENS_PER_REQUEST = 8


def system_prompt_default(language: str) -> str:
    """Moonshot's Kimi prompt in the user's language (Chinese for zh*, else English)."""
    return KIMI_SYSTEM_PROMPT_ZH if language.lower().startswith("zh") else KIMI_SYSTEM_PROMPT_EN


def system_prompt_with_names(system_prompt: str, names: Sequence[tuple[str, str]]) -> str:
    """The system prompt plus which uploaded file each document message is.

    Identical files are stored on Moonshot once for everyone under a neutral name
    (`docqa-<token>.pdf`), so the extracted JSON the model reads names no user's file. This
    tells the model the names this user knows them by, so answers cite "report.pdf" and not
    the token. It depends only on the conversation's documents, so the prompt prefix stays
    byte-identical from turn to turn.
    """
    if not names:
        return system_prompt
    lines = [f"{index}. {remote} = “{shown}”" for index, (remote, shown) in enumerate(names, start=1)]
    return (
        f"{system_prompt}\n\n"
        "The user's documents follow as system messages, in this order. Refer to each by the "
        "user's file name in quotes, not by the stored name:\n"
        + "\n".join(lines)
        + "\n\n"
        + citation_instruction(system_prompt)
    )


def citation_instruction(system_prompt: str) -> str:
    """How the model is to quote (`docqa.chat.citations`), in the conversation's language.

    The language is the stored system prompt's (Chinese when it holds CJK characters, as the
    default Kimi prompt of a zh-Hans user does), so it is fixed for the conversation's life
    like the prompt itself, and the prompt prefix stays byte-identical from turn to turn.
    """
    if _CJK.search(system_prompt):
        return CITATION_INSTRUCTION_ZH
    return CITATION_INSTRUCTION_EN


def text_tokens_estimate(text: str) -> int:
    """A deliberately generous token estimate: one per CJK character, one per 3 other characters.

    Moonshot's tokenizer is not public; over-counting only costs a larger window or a dropped
    turn, under-counting would cost a rejected request.
    """
    if not text:
        return 0
    cjk = len(_CJK.findall(text))
    return cjk + math.ceil((len(text) - cjk) / 3)


def message_tokens_estimate(content: str) -> int:
    return TOKENS_PER_MESSAGE + text_tokens_estimate(content)


def safety_identifier(user_id: int, *, secret: str) -> str:
    """A stable, non-reversible identifier of a user for Moonshot's abuse detection.

    A keyed hash of the id: never the username, and not guessable by hashing small integers.
    """
    digest = hmac.new(secret.encode(), f"docqa-user:{user_id}".encode(), hashlib.sha256)
    return digest.hexdigest()[:32]


@dataclass(frozen=True)
class Turn:
    """An earlier question and its answer."""

    question: str
    answer: str


def messages_assemble(
    *, system_prompt: str, documents: Sequence[str], turns: Sequence[Turn], question: str
) -> list[dict[str, str]]:
    """The chat messages, as Moonshot's multi-file example builds them.

    The system prompt, then one system message per document holding its extracted content
    exactly as Moonshot returned it, in the conversation's order, then the earlier turns,
    then the question. Everything before the turns is identical on every ask, which is
    what lets Moonshot's prefix cache hit.
    """
    messages = [{"role": "system", "content": system_prompt}]
    messages += [{"role": "system", "content": content} for content in documents if content]
    for turn in turns:
        messages.append({"role": "user", "content": turn.question})
        messages.append({"role": "assistant", "content": turn.answer})
    messages.append({"role": "user", "content": question})
    return messages


@dataclass(frozen=True)
class DocumentSize:
    name: str
    tokens: int


@dataclass
class Budget:
    """The outcome of fitting a request into a model's window."""

    fits: bool
    model: str
    context_length: int
    prompt_tokens: int = 0
    max_completion_tokens: int = 0
    dropped_turns: int = 0
    # When `fits` is false: the documents to take out (largest first) so the rest fit.
    documents_to_drop: list[str] = field(default_factory=list)


def model_windows(model: str, context_lengths: dict[str, int]) -> list[tuple[str, int]]:
    """The (model, window) candidates for a conversation's model, smallest window first."""
    if model == MOONSHOT_V1_AUTO:
        return [(name, context_lengths.get(name, size)) for name, size in MOONSHOT_V1_SIZES]
    return [(model, context_lengths.get(model, FALLBACK_CONTEXT_LENGTH))]


def token_budget_fit(
    *,
    model: str,
    context_lengths: dict[str, int],
    fixed_tokens: int,
    documents: Sequence[DocumentSize],
    turn_tokens: Sequence[int],
    question_tokens: int,
    max_completion_tokens: int,
) -> Budget:
    """Choose the window and the turns to keep so that input plus completion fits.

    `fixed_tokens` is the system prompt and request overhead; `turn_tokens` are the earlier
    turns' sizes, oldest first. With `moonshot-v1-auto` the smallest 8k/32k/128k window that
    holds everything is chosen. If all the turns do not fit even the largest window, the
    oldest go first. If the documents and the question alone do not fit, nothing is sent and
    the documents to drop are named, largest first.
    """
    candidates = model_windows(model, context_lengths)
    base = fixed_tokens + sum(d.tokens for d in documents) + question_tokens
    history = sum(turn_tokens)
    for name, window in candidates:
        if base + history + max_completion_tokens <= window:
            return Budget(True, name, window, base + history, max_completion_tokens, 0)
    name, window = candidates[-1]
    kept = list(turn_tokens)
    dropped = 0
    while kept and base + sum(kept) + max_completion_tokens > window:
        kept.pop(0)
        dropped += 1
    prompt = base + sum(kept)
    if prompt + max_completion_tokens <= window:
        return Budget(True, name, window, prompt, max_completion_tokens, dropped)
    # No history left; a shorter answer still beats none.
    room = window - base
    if room >= min(MIN_COMPLETION_TOKENS, max_completion_tokens):
        return Budget(True, name, window, base, room, dropped)
    to_drop: list[str] = []
    need = base + min(MIN_COMPLETION_TOKENS, max_completion_tokens) - window
    for document in sorted(documents, key=lambda d: d.tokens, reverse=True):
        if need <= 0:
            break
        to_drop.append(document.name)
        need -= document.tokens
    return Budget(False, name, window, base, 0, dropped, documents_to_drop=to_drop)


def needs_exact_count(budget: Budget) -> bool:
    """Whether the local estimate is too close to the window to be trusted."""
    return (
        budget.prompt_tokens + budget.max_completion_tokens
        > budget.context_length * LOCAL_ESTIMATE_TRUSTED_SHARE
    )
