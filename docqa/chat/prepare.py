"""The request for one answer: the token budget, the messages, and their hand-over to the task.

`request_fit` is the one budget: starting a conversation and asking check it (documents and
question only), and `request_prepare` builds the request from it. Message assembly and the
arithmetic are pure functions in `docqa.chat.context`; this module gathers their inputs from
the database. The ask usually prepares the request itself and leaves it in Redis for the task
(`request_hand_over` / `request_take`), so the first token never waits on a database read.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from django.conf import settings
from django.utils.translation import gettext_noop as N_

from docqa import keys
from docqa.chat import context
from docqa.chat.catalogue import max_completion_tokens_for, models_available, thinking_switchable
from docqa.chat.context import Budget, DocumentSize, Turn, messages_assemble, token_budget_fit
from docqa.chat.models import Conversation, FinishReason, Message, Role, State
from docqa.chat.refusals import ChatRefused
from docqa.connections import moonshot_client, redis_client
from docqa.documents.models import Document
from docqa.moonshot import InvalidRequestError
from docqa.notes import note

logger = logging.getLogger("docqa.chat.prepare")

# How long a handed-over request waits in Redis for its task.
PREPARED_TTL = 600


@dataclass
class PreparedRequest:
    model: str
    messages: list[dict[str, str]]
    max_completion_tokens: int
    dropped_turns: int
    # Moonshot's prefix cache key (the conversation) and the hashed user.
    prompt_cache_key: str = ""
    safety_identifier: str = ""
    # The documents in the order the system prompt numbers them: what a citation's n names.
    document_ids: list[int] = field(default_factory=list)
    # `thinking.type` for models that can switch it (kimi-k2.5/k2.6); empty: not sent.
    thinking: str = ""
    # A continuation (Partial Mode): the answer's text and reasoning so far, and its usage so far.
    prefix: str = ""
    prefix_reasoning: str = ""
    usage_before: dict | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> PreparedRequest:
        return cls(**data)

    def params(self) -> dict:
        """The request's parameters for the client (the documents' ids are docqa's own)."""
        params = {
            "max_completion_tokens": self.max_completion_tokens,
            "prompt_cache_key": self.prompt_cache_key,
            "safety_identifier": self.safety_identifier,
            # Seed 004: a stream reports usage only when asked, in a last chunk with no choices.
            "stream_options": {"include_usage": True},
        }
        if self.thinking:
            params["thinking"] = {"type": self.thinking}
        return params


@dataclass
class Fit:
    """A request's budget (which window, how many turns kept) and the system prompt it was made for."""

    budget: Budget
    system_prompt: str


def document_tokens(document: Document) -> int:
    stored = document.stored_file
    if stored.token_count is not None:
        return stored.token_count
    return context.message_tokens_estimate(stored.content_raw)


def system_prompt_for(system_prompt: str, documents: Sequence[Document]) -> str:
    """The conversation's system prompt plus the names its documents have for this user."""
    return context.system_prompt_with_names(
        system_prompt, [(d.stored_file.remote_filename, d.filename) for d in documents]
    )


def request_fit(
    *,
    model: str,
    system_prompt: str,
    documents: Sequence[Document],
    turns: Sequence[Turn] = (),
    question: str = "",
    context_lengths: dict[str, int] | None = None,
    max_completion_tokens: int | None = None,
) -> Fit:
    """Fit the documents, turns and question into the model's window, by the local estimate.

    Refuses (ChatRefused, naming the documents to leave out) when the documents and the
    question alone cannot fit; earlier turns never cause a refusal, the oldest are dropped.
    """
    system_prompt = system_prompt_for(system_prompt, documents)
    budget = token_budget_fit(
        model=model,
        context_lengths=context_lengths or models_available(),
        fixed_tokens=context.TOKENS_PER_REQUEST + context.message_tokens_estimate(system_prompt),
        documents=[DocumentSize(d.filename, document_tokens(d)) for d in documents],
        turn_tokens=[
            context.message_tokens_estimate(t.question) + context.message_tokens_estimate(t.answer)
            for t in turns
        ],
        question_tokens=context.message_tokens_estimate(question),
        max_completion_tokens=max_completion_tokens or max_completion_tokens_for(model),
    )
    if not budget.fits:
        raise ChatRefused(
            note(
                N_(
                    "These documents are too long for %(model)s (%(tokens)s tokens; the window holds %(window)s). "
                    "Leave out: %(names)s."
                ),
                model=budget.model,
                tokens=f"{budget.prompt_tokens:,}",
                window=f"{budget.context_length:,}",
                names=", ".join(f"“{name}”" for name in budget.documents_to_drop),
            )
        )
    return Fit(budget, system_prompt)


def turns_before(answer: Message) -> list[Turn]:
    """Earlier questions with an answer that has text (failed ones without text are skipped).

    A question regenerated into several versions sends its latest version with text: the one
    the page shows by default (switching versions with ‹ › is for reading, not for the model).
    """
    earlier = (
        Message.objects.filter(
            conversation_id=answer.conversation_id, role=Role.ASSISTANT, question__id__lt=answer.question_id
        )
        .exclude(content="")
        .filter(state__in=(State.COMPLETE, State.STOPPED, State.INTERRUPTED))
        .select_related("question")
        .order_by("question_id", "id")
    )
    latest = {earlier_answer.question_id: earlier_answer for earlier_answer in earlier}
    return [Turn(chosen.question.content, chosen.content) for chosen in latest.values()]


def answer_prepare(*, answer: Message) -> PreparedRequest:
    """Assemble the request and fit it into the window; never returns one Moonshot would reject for length."""
    conversation = answer.conversation
    documents = list(conversation.ordered_documents(with_text=True))
    if not documents:
        raise ChatRefused(note(N_("This conversation has no documents left. Start a new one.")))
    prefix = answer.content if answer.finish_reason == FinishReason.LENGTH else ""
    prepared = request_prepare(
        conversation=conversation,
        documents=documents,
        turns=turns_before(answer),
        # A continuation's text so far is counted with the question (it is sent after it).
        question=answer.question.content + prefix,
        exact=True,
        max_completion_tokens=answer.max_completion_tokens,
    )
    if prefix:
        # Partial Mode (seed 004): the last assistant message, marked partial, is the start
        # of the answer; Moonshot writes what follows it.
        prepared.messages[-1]["content"] = answer.question.content
        prepared.messages.append({"role": "assistant", "content": prefix, "partial": True})
        prepared.prefix, prepared.prefix_reasoning = prefix, answer.reasoning
        prepared.usage_before = {
            "prompt_tokens": answer.prompt_tokens or 0,
            "completion_tokens": answer.completion_tokens or 0,
            "cached_tokens": answer.cached_tokens or 0,
        }
    return prepared


def request_prepare(
    *,
    conversation: Conversation,
    documents: list[Document],
    turns: list[Turn],
    question: str,
    exact: bool,
    context_lengths: dict[str, int] | None = None,
    max_completion_tokens: int | None = None,
) -> PreparedRequest | None:
    """The request for `question` after `turns`, fitted into the model's window.

    Close to the window's edge only Moonshot's tokenizer can tell; `exact=False` (the ask,
    which must not wait on Moonshot) then returns None and leaves it to the task.
    """
    context_lengths = context_lengths or models_available()
    fit = request_fit(
        model=conversation.model,
        system_prompt=conversation.system_prompt,
        documents=documents,
        turns=turns,
        question=question,
        context_lengths=context_lengths,
        max_completion_tokens=max_completion_tokens,
    )
    budget, system_prompt = fit.budget, fit.system_prompt
    contents = [d.stored_file.content_raw for d in documents]
    kept = turns[budget.dropped_turns :]
    messages = messages_assemble(
        system_prompt=system_prompt, documents=contents, turns=kept, question=question
    )
    model, window, completion = budget.model, budget.context_length, budget.max_completion_tokens
    if context.needs_exact_count(budget):
        if not exact:
            return None
        # Close to the edge: ask Moonshot's tokenizer and give up history (or length) until it fits.
        candidates = context.model_windows(conversation.model, context_lengths)
        larger = [(m, w) for m, w in candidates if w > window]
        while True:
            counted = _tokens_count(model, messages)
            if counted + completion <= window:
                break
            if larger:
                model, window = larger.pop(0)
                continue
            if kept:
                kept = kept[1:]
                messages = messages_assemble(
                    system_prompt=system_prompt, documents=contents, turns=kept, question=question
                )
                continue
            if window - counted >= context.MIN_COMPLETION_TOKENS:
                completion = window - counted
                break
            raise ChatRefused(note(N_("The documents and the question are too long for the model's window.")))
    return PreparedRequest(
        model,
        messages,
        completion,
        len(turns) - len(kept),
        prompt_cache_key=str(conversation.pk),
        safety_identifier=context.safety_identifier(conversation.owner_id, secret=settings.SECRET_KEY),
        document_ids=[d.pk for d in documents],
        thinking=conversation.thinking if thinking_switchable(model) else "",
    )


def _tokens_count(model: str, messages: list[dict]) -> int:
    """Moonshot's count of `messages`, or the (generous) local estimate when the estimate
    endpoint refuses the model: a chat near the window's edge never fails for that alone."""
    try:
        return moonshot_client().estimate_token_count(model=model, messages=messages)
    except InvalidRequestError as exc:
        logger.warning("token estimate refused for %s (%s); using the local estimate", model, exc)
        return context.TOKENS_PER_REQUEST + sum(
            context.message_tokens_estimate(m["content"]) for m in messages
        )


def request_hand_over(answer_id: int, prepare) -> None:
    """Leave the ready-made request for the task, so it can send it without reading the database.

    The ask has the documents loaded already; building the messages here and passing them
    through Redis (never through the broker: they can be megabytes) takes the worker's reads
    off the path to the first token. Best effort: without it, or when only Moonshot's tokenizer
    can tell whether it fits (`prepare()` returns None), the task prepares the request itself.
    """
    try:
        prepared = prepare()
        if prepared is not None:
            redis_client().set(
                keys.answer_request(answer_id), json.dumps(prepared.as_dict()), ex=PREPARED_TTL
            )
    except Exception:  # noqa: BLE001 - the task prepares the request itself
        logger.warning("could not hand over the request for answer %s", answer_id, exc_info=True)


def request_take(answer_id: int) -> tuple[PreparedRequest | None, bool]:
    """The handed-over request (taken: a second delivery never finds it) and whether Stop was asked."""
    pipe = redis_client().pipeline(transaction=True)
    pipe.get(keys.answer_request(answer_id))
    pipe.delete(keys.answer_request(answer_id))
    pipe.exists(keys.answer_stop(answer_id))
    raw, _deleted, stop = pipe.execute()
    return (PreparedRequest.from_dict(json.loads(raw)) if raw else None), bool(stop)
