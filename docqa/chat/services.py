"""Chat business logic: conversations, asking, generating, stopping, sweeping, exporting.

Views call these with keyword arguments; the `answers` Celery queue runs `answer_generate`.
Message assembly and the token budget are pure functions in `docqa.chat.context`.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from concurrent.futures import Future
from contextlib import closing
from dataclasses import dataclass
from datetime import timedelta

import redis
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, Max, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_noop as N_

from docqa import keys
from docqa.chat import context
from docqa.chat.context import (  # noqa: F401 - part of this module's API
    DocumentSize,
    Turn,
    messages_assemble,
    token_budget_fit,
)
from docqa.chat.models import (
    Conversation,
    ConversationDocument,
    Message,
    Role,
    State,
)
from docqa.chat.streams import (
    CONTENT,
    REASONING,
    AnswerPublisher,
    answer_end_publish,
    answer_stop_request,
)
from docqa.connections import moonshot_client, redis_client
from docqa.documents.models import Document
from docqa.locks import Lease, lease_is_held
from docqa.moonshot import MoonshotError, StreamInterrupted
from docqa.notes import note
from docqa.upstream import upstream_error_note

logger = logging.getLogger("docqa.chat.services")

TITLE_LENGTH = 80
# Saved text is at most this old while an answer streams.
SAVE_INTERVAL = 1.0
ANSWER_LOCK_TTL = 60
THINKING_MODEL_PREFIXES = ("kimi-k2-thinking", "kimi-k2.5", "kimi-k2.6")


class ChatRefused(Exception):
    """A request the user must change: the message says how, in their language."""


# --- models ---------------------------------------------------------------------------------


def models_available() -> dict[str, int]:
    """Model ids and their context windows, from the cached `GET /v1/models`.

    Never calls Moonshot (views must not wait on it): when the cache is cold a refresh is
    queued and the configured default plus the moonshot-v1 family stand in.
    """
    try:
        cached = redis_client().get(keys.MODELS_CACHE)
    except Exception:  # noqa: BLE001 - a page still renders without the list
        cached = None
    if cached:
        return json.loads(cached)
    from docqa.chat.tasks import models_refresh

    try:
        models_refresh.delay()
    except Exception:  # noqa: BLE001
        logger.warning("could not queue a models refresh", exc_info=True)
    fallback = {settings.MOONSHOT_MODEL: context.FALLBACK_CONTEXT_LENGTH}
    fallback.update(dict(context.MOONSHOT_V1_SIZES))
    return fallback


def models_refresh() -> dict[str, int]:
    """Fetch the model list from Moonshot and cache it for a few minutes."""
    models = {
        info.id: info.context_length or context.FALLBACK_CONTEXT_LENGTH
        for info in moonshot_client().models_list()
    }
    redis_client().set(keys.MODELS_CACHE, json.dumps(models), ex=settings.DOCQA_MODELS_CACHE_SECONDS)
    return models


def model_choices() -> list[tuple[str, str]]:
    """(value, label) pairs for the model picker: the chat models, with moonshot-v1 auto-sized."""
    ids = sorted(m for m in models_available() if "vision" not in m and m != context.MOONSHOT_V1_AUTO)
    choices = [(m, m) for m in ids if not m.startswith("moonshot-v1-")]
    choices.append((context.MOONSHOT_V1_AUTO, _("moonshot-v1 (smallest window that fits)")))
    choices += [(m, m) for m in ids if m.startswith("moonshot-v1-")]
    if settings.MOONSHOT_MODEL not in dict(choices):
        choices.insert(0, (settings.MOONSHOT_MODEL, settings.MOONSHOT_MODEL))
    return choices


def is_thinking_model(model: str) -> bool:
    return model.startswith(THINKING_MODEL_PREFIXES)


def max_completion_tokens_for(model: str) -> int:
    if is_thinking_model(model):
        return settings.DOCQA_MAX_COMPLETION_TOKENS_THINKING
    return settings.DOCQA_MAX_COMPLETION_TOKENS


# --- conversations ----------------------------------------------------------------------------


def _document_tokens(document: Document) -> int:
    stored = document.stored_file
    if stored.token_count is not None:
        return stored.token_count
    return context.message_tokens_estimate(stored.content_raw)


def _system_prompt_for(system_prompt: str, documents: list[Document]) -> str:
    return context.system_prompt_with_names(
        system_prompt, [(d.stored_file.remote_filename, d.filename) for d in documents]
    )


def _documents_fit(
    *,
    model: str,
    documents: list[Document],
    system_prompt: str,
    question: str = "",
    context_lengths: dict[str, int] | None = None,
) -> None:
    """Refuse, naming the documents to drop, when the documents alone cannot fit the window."""
    system_prompt = _system_prompt_for(system_prompt, documents)
    budget = token_budget_fit(
        model=model,
        context_lengths=context_lengths or models_available(),
        fixed_tokens=context.TOKENS_PER_REQUEST + context.message_tokens_estimate(system_prompt),
        documents=[DocumentSize(d.filename, _document_tokens(d)) for d in documents],
        turn_tokens=[],
        question_tokens=context.message_tokens_estimate(question),
        max_completion_tokens=max_completion_tokens_for(model),
    )
    if not budget.fits:
        raise ChatRefused(
            _(
                "These documents are too long for %(model)s (%(tokens)s tokens; the window holds %(window)s). "
                "Leave out: %(names)s."
            )
            % {
                "model": budget.model,
                "tokens": f"{budget.prompt_tokens:,}",
                "window": f"{budget.context_length:,}",
                "names": ", ".join(f"“{name}”" for name in budget.documents_to_drop),
            }
        )


def conversation_create(
    *, owner, document_ids: list[int], language: str, model: str | None = None
) -> Conversation:
    """Start a conversation about some of the owner's Ready documents, in the order given."""
    if not document_ids:
        raise ChatRefused(_("Choose at least one document."))
    by_id = {
        d.pk: d
        for d in Document.objects.select_related("stored_file").filter(owner=owner, pk__in=document_ids)
    }
    ordered = [by_id[pk] for pk in dict.fromkeys(document_ids) if pk in by_id]
    if len(ordered) != len(set(document_ids)):
        raise ChatRefused(_("Some of the chosen documents no longer exist."))
    not_ready = [d.filename for d in ordered if not d.is_ready]
    if not_ready:
        raise ChatRefused(
            _("These documents are not ready yet: %(names)s.")
            % {"names": ", ".join(f"“{n}”" for n in not_ready)}
        )
    model = model or settings.MOONSHOT_MODEL
    system_prompt = settings.DOCQA_SYSTEM_PROMPT or context.system_prompt_default(language)
    _documents_fit(model=model, documents=ordered, system_prompt=system_prompt)
    title = ordered[0].filename
    if len(ordered) > 1:
        title = _("%(name)s and %(count)s more") % {"name": title, "count": len(ordered) - 1}
    with transaction.atomic():
        conversation = Conversation.objects.create(
            owner=owner, title=title[:TITLE_LENGTH], model=model, system_prompt=system_prompt
        )
        ConversationDocument.objects.bulk_create(
            ConversationDocument(conversation=conversation, document=d, position=i)
            for i, d in enumerate(ordered)
        )
    return conversation


def conversations_search(*, owner, query: str = "") -> QuerySet[Conversation]:
    """The owner's conversations, newest activity first; `query` matches titles and message text."""
    conversations = Conversation.objects.filter(owner=owner)
    query = query.strip()
    if query:
        matching = Message.objects.filter(conversation__owner=owner, content__icontains=query).values(
            "conversation_id"
        )
        conversations = conversations.filter(Q(title__icontains=query) | Q(pk__in=matching))
    return conversations.prefetch_related("documents")


def conversation_rename(*, conversation: Conversation, title: str) -> None:
    title = " ".join(title.split())[:TITLE_LENGTH]
    if not title:
        raise ChatRefused(_("The title cannot be empty."))
    conversation.title = title
    conversation.title_is_auto = False
    conversation.save(update_fields=["title", "title_is_auto", "updated_at"])


def conversation_set_model(*, conversation: Conversation, model: str) -> None:
    if model not in dict(model_choices()):
        raise ChatRefused(_("That model is not available."))
    conversation.model = model
    conversation.save(update_fields=["model", "updated_at"])


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation; answers still being written are stopped first."""
    for answer_id in conversation.messages.filter(state=State.STREAMING).values_list("pk", flat=True):
        answer_stop_request(answer_id)
    conversation.delete()


def conversation_messages(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.order_by("id"))


def conversation_export_markdown(*, conversation: Conversation) -> str:
    """The conversation as a Markdown document (questions, answers, the documents it used)."""
    lines = [f"# {conversation.title}", ""]
    documents = list(conversation.ordered_documents())
    if documents:
        lines.append(_("Documents:"))
        lines += [f"- {d.filename}" for d in documents]
        lines.append("")
    for message in conversation_messages(conversation):
        if message.role == Role.USER:
            lines += [f"## {_('Question')}", "", message.content, ""]
            continue
        heading = _("Answer")
        if message.model:
            heading += f" ({message.model})"
        lines += [f"## {heading}", ""]
        if message.content:
            lines += [message.content, ""]
        if message.state != State.COMPLETE:
            lines += [
                f"*{message.get_state_display()}*" + (f": {message.error_display}" if message.error else ""),
                "",
            ]
    return "\n".join(lines).rstrip() + "\n"


# --- asking -----------------------------------------------------------------------------------


def _ask_rate_check(owner) -> None:
    limit = settings.DOCQA_ASK_RATE_LIMIT
    if not limit:
        return
    window = int(time.time() // 60)
    key = keys.asks_window(owner.pk, window)
    pipe = redis_client().pipeline()
    pipe.incr(key)
    pipe.expire(key, 120)
    count, _ok = pipe.execute()
    if count > limit:
        raise ChatRefused(
            _("You are asking faster than %(limit)s questions a minute. Please wait a moment and ask again.")
            % {"limit": limit}
        )


def _answer_enqueue(answer_id: int, prepare=None) -> None:
    """Queue the answer's task once the transaction commits; `prepare()`, when given, builds its
    request first and hands it over (see `_prepared_handoff`)."""
    from docqa.chat.tasks import answer_generate

    def send() -> None:
        if prepare is not None:
            _prepared_handoff(answer_id, prepare)
        answer_generate.delay(answer_id)

    transaction.on_commit(send)


def _prepared_handoff(answer_id: int, prepare) -> None:
    """Leave the ready-made request for the task, so it can send it without reading the database.

    The ask has the documents loaded already; building the messages here and passing them
    through Redis (never through the broker: they can be megabytes) takes the worker's reads
    off the path to the first token. Best effort: without it, or when only Moonshot's tokenizer
    can tell whether it fits, the task prepares the request itself.
    """
    try:
        prepared = prepare()
        if prepared is not None:
            redis_client().set(
                keys.answer_request(answer_id), json.dumps(prepared.as_dict()), ex=PREPARED_TTL
            )
    except Exception:  # noqa: BLE001 - the task prepares the request itself
        logger.warning("could not hand over the request for answer %s", answer_id, exc_info=True)


def _prepared_take(answer_id: int) -> tuple[PreparedRequest | None, bool]:
    """The handed-over request (taken: a second delivery never finds it) and whether Stop was asked."""
    pipe = redis_client().pipeline(transaction=True)
    pipe.get(keys.answer_request(answer_id))
    pipe.delete(keys.answer_request(answer_id))
    pipe.exists(keys.answer_stop(answer_id))
    raw, _deleted, stop = pipe.execute()
    return (PreparedRequest.from_dict(json.loads(raw)) if raw else None), bool(stop)


def _answer_create(*, question: Message, model: str, prepare=None) -> Message:
    now = timezone.now()
    answer = Message.objects.create(
        conversation_id=question.conversation_id,
        role=Role.ASSISTANT,
        question=question,
        state=State.STREAMING,
        model=model,
        heartbeat_at=now,
    )
    _answer_enqueue(answer.pk, prepare)
    return answer


def conversation_ask(*, conversation: Conversation, question: str) -> tuple[Message, Message]:
    """Save the question and an empty answer (state `streaming`) and queue its generation.

    Refused (ChatRefused, nothing saved, the caller keeps the text) for an empty or too long
    question, a conversation with no documents left, documents too long for the window,
    an answer still being written (a double submit), or too many asks a minute.
    """
    text = question.strip()
    if not text:
        raise ChatRefused(_("Type a question first."))
    if len(text) > settings.DOCQA_MAX_QUESTION_CHARS:
        raise ChatRefused(
            _("The question is %(length)s characters long; the limit is %(limit)s.")
            % {"length": f"{len(text):,}", "limit": f"{settings.DOCQA_MAX_QUESTION_CHARS:,}"}
        )
    documents = list(conversation.ordered_documents())
    if not documents:
        raise ChatRefused(_("This conversation has no documents left. Start a new one."))
    not_ready = [d.filename for d in documents if not d.is_ready]
    if not_ready:
        raise ChatRefused(
            _("These documents are not ready: %(names)s.") % {"names": ", ".join(f"“{n}”" for n in not_ready)}
        )
    context_lengths = models_available()
    _documents_fit(
        model=conversation.model,
        documents=documents,
        system_prompt=conversation.system_prompt,
        question=text,
        context_lengths=context_lengths,
    )
    with transaction.atomic():
        # Serialises asks on one conversation, so a double submit cannot start two answers.
        locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
        counts = locked.messages.aggregate(
            streaming=Count("pk", filter=Q(state=State.STREAMING)), earlier=Count("pk")
        )
        if counts["streaming"]:
            raise ChatRefused(_("The previous answer is still being written. Wait for it or stop it first."))
        first_question = not counts["earlier"]
        _ask_rate_check(conversation.owner)
        question_message = Message.objects.create(conversation=locked, role=Role.USER, content=text)
        answer = _answer_create(
            question=question_message,
            model=locked.model,
            prepare=lambda: _request_prepare(
                conversation=locked,
                documents=documents,
                turns=[] if first_question else _turns_before(answer),
                question=text,
                exact=False,
                context_lengths=context_lengths,
            ),
        )
        fields = ["updated_at"]
        if locked.title_is_auto and first_question:
            locked.title = " ".join(text.split())[:TITLE_LENGTH]
            fields.append("title")
        locked.save(update_fields=fields)
    return question_message, answer


def answer_regenerate(*, answer: Message) -> Message:
    """Ask the last question again: its finished answer is replaced by a new one."""
    with transaction.atomic():
        Conversation.objects.select_for_update().get(pk=answer.conversation_id)
        answer = Message.objects.select_related("question").get(pk=answer.pk)
        last = Message.objects.filter(conversation_id=answer.conversation_id).aggregate(last=Max("id"))[
            "last"
        ]
        if answer.state == State.STREAMING:
            raise ChatRefused(_("This answer is still being written."))
        if answer.pk != last or answer.question is None:
            raise ChatRefused(_("Only the last answer can be regenerated."))
        _ask_rate_check(answer.conversation.owner)
        question = answer.question
        model = answer.conversation.model
        answer.delete()
        new = _answer_create(question=question, model=model)
        Conversation.objects.filter(pk=answer.conversation_id).update(updated_at=timezone.now())
    return new


def answer_stop(*, answer: Message) -> None:
    """Stop an answer: the task sees the flag between deltas and keeps what came.

    An answer whose task has not started yet is stopped here and now.
    """
    if answer.state != State.STREAMING:
        return
    answer_stop_request(answer.pk)
    now = timezone.now()
    if Message.objects.filter(pk=answer.pk, state=State.STREAMING, started_at__isnull=True).update(
        state=State.STOPPED, finished_at=now, heartbeat_at=now
    ):
        answer_end_publish(answer.pk)


# --- generating (the answers queue) -----------------------------------------------------------


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

    def as_dict(self) -> dict:
        return dict(self.__dict__)

    @classmethod
    def from_dict(cls, data: dict) -> PreparedRequest:
        return cls(**data)

    def params(self) -> dict:
        return {
            "max_completion_tokens": self.max_completion_tokens,
            "prompt_cache_key": self.prompt_cache_key,
            "safety_identifier": self.safety_identifier,
        }


def _turns_before(answer: Message) -> list[Turn]:
    """Earlier questions with the answers that have text (failed ones without text are skipped)."""
    turns: list[Turn] = []
    earlier = (
        Message.objects.filter(
            conversation_id=answer.conversation_id, role=Role.ASSISTANT, question__id__lt=answer.question_id
        )
        .exclude(content="")
        .filter(state__in=(State.COMPLETE, State.STOPPED, State.INTERRUPTED))
        .select_related("question")
        .order_by("question_id")
    )
    for earlier_answer in earlier:
        turns.append(Turn(earlier_answer.question.content, earlier_answer.content))
    return turns


def answer_prepare(*, answer: Message) -> PreparedRequest:
    """Assemble the request and fit it into the window; never returns one Moonshot would reject for length."""
    conversation = answer.conversation
    documents = list(conversation.ordered_documents())
    if not documents:
        raise ChatRefused(note(N_("This conversation has no documents left. Start a new one.")))
    return _request_prepare(
        conversation=conversation,
        documents=documents,
        turns=_turns_before(answer),
        question=answer.question.content,
        exact=True,
    )


def _request_prepare(
    *,
    conversation: Conversation,
    documents: list[Document],
    turns: list[Turn],
    question: str,
    exact: bool,
    context_lengths: dict[str, int] | None = None,
) -> PreparedRequest | None:
    """The request for `question` after `turns`, fitted into the model's window.

    Close to the window's edge only Moonshot's tokenizer can tell; `exact=False` (the ask,
    which must not wait on Moonshot) then returns None and leaves it to the task.
    """
    context_lengths = context_lengths or models_available()
    max_tokens = max_completion_tokens_for(conversation.model)
    system_prompt = _system_prompt_for(conversation.system_prompt, documents)
    budget = token_budget_fit(
        model=conversation.model,
        context_lengths=context_lengths,
        fixed_tokens=context.TOKENS_PER_REQUEST + context.message_tokens_estimate(system_prompt),
        documents=[DocumentSize(d.filename, _document_tokens(d)) for d in documents],
        turn_tokens=[
            context.message_tokens_estimate(t.question) + context.message_tokens_estimate(t.answer)
            for t in turns
        ],
        question_tokens=context.message_tokens_estimate(question),
        max_completion_tokens=max_tokens,
    )
    if not budget.fits:
        raise ChatRefused(
            note(
                N_("The documents are too long for the model's window. Leave out: %(names)s."),
                names=", ".join(budget.documents_to_drop),
            )
        )
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
            exact = moonshot_client().estimate_token_count(model=model, messages=messages)
            if exact + completion <= window:
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
            if window - exact >= context.MIN_COMPLETION_TOKENS:
                completion = window - exact
                break
            raise ChatRefused(note(N_("The documents and the question are too long for the model's window.")))
    return PreparedRequest(
        model,
        messages,
        completion,
        len(turns) - len(kept),
        prompt_cache_key=str(conversation.pk),
        safety_identifier=context.safety_identifier(conversation.owner_id, secret=settings.SECRET_KEY),
    )


def _answer_finish(answer_id: int, *, state: str, **fields) -> bool:
    now = timezone.now()
    done = Message.objects.filter(pk=answer_id, state=State.STREAMING).update(
        state=state, finished_at=now, heartbeat_at=now, **fields
    )
    if done:
        answer_end_publish(answer_id)
    return bool(done)


def _answer_mark_started(answer_id: int, prepared: PreparedRequest) -> bool:
    """Record that this delivery generates the answer; False when it was stopped or started elsewhere."""
    now = timezone.now()
    return bool(
        Message.objects.filter(pk=answer_id, state=State.STREAMING, started_at__isnull=True).update(
            started_at=now,
            heartbeat_at=now,
            model=prepared.model,
            dropped_turns=prepared.dropped_turns,
            max_completion_tokens=prepared.max_completion_tokens,
        )
    )


def _answer_lock(answer_id: int) -> Lease:
    # Renewed by the saver thread, not a thread of its own: one thread renews every answer.
    return Lease(keys.answer_lock(answer_id), ttl=ANSWER_LOCK_TTL)


class StreamingAnswer:
    """One answer's text so far, shared by the task thread (which appends) and the saver.

    The content, reasoning and stream cursor change together under `mutex`, so a save is
    always a consistent snapshot: the text up to the cursor, and nothing after it (the SSE
    view's snapshot is the saved text plus the stream entries after the saved cursor).
    """

    def __init__(self, answer_id: int, lock, publisher: AnswerPublisher) -> None:
        self.answer_id = answer_id
        self.lock = lock
        self.publisher = publisher
        self.mutex = threading.Lock()
        self.content: list[str] = []
        self.reasoning: list[str] = []
        self.cursor = ""
        self.first_token_at = None
        # Set by the saver: the answer was finished elsewhere (stop, sweep, deleted conversation),
        # or the lock could not be renewed (the error, raised in the task thread).
        self.abandoned = False
        self.failure: BaseException | None = None

    def publish(self, pieces: list[tuple[str, str]]) -> bool:
        """Publish deltas to the Redis Stream and keep them; True when Stop was asked for."""
        with self.mutex:
            for kind, text in pieces:
                (self.content if kind == CONTENT else self.reasoning).append(text)
            last_id, stopped = self.publisher.publish(pieces)
            self.cursor = last_id or self.cursor
        if self.first_token_at is None:
            # After the delta is out: the first token never waits on the database.
            self.first_token_at = timezone.now()
        return stopped

    def progress(self) -> dict:
        with self.mutex:
            fields = {
                "content": "".join(self.content),
                "reasoning": "".join(self.reasoning),
                "stream_cursor": self.cursor,
            }
        if self.first_token_at is not None:
            fields["first_token_at"] = self.first_token_at
        return fields


class AnswerSaver:
    """One thread per worker process that saves every streaming answer's text so far.

    Every SAVE_INTERVAL it renews each answer's lock and stream expiry and writes all their
    texts in one transaction, off the task threads that relay deltas (so no delta waits on
    the database, and SQLite sees one write a second instead of one per answer). The thread
    starts with the first answer, stops (closing its database connection) when none is left.
    """

    def __init__(self, interval: float = SAVE_INTERVAL) -> None:
        self.interval = interval
        self._mutex = threading.Lock()
        self._answers: dict[int, StreamingAnswer] = {}
        self._thread: threading.Thread | None = None

    def add(self, answer: StreamingAnswer) -> None:
        with self._mutex:
            self._answers[answer.answer_id] = answer
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="docqa-answer-saver", daemon=True)
                self._thread.start()

    def remove(self, answer: StreamingAnswer) -> None:
        with self._mutex:
            if self._answers.get(answer.answer_id) is answer:
                del self._answers[answer.answer_id]

    def _run(self) -> None:
        next_at = time.monotonic() + self.interval
        try:
            while True:
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at += self.interval
                with self._mutex:
                    batch = list(self._answers.values())
                    if not batch:
                        self._thread = None
                        return
                try:
                    self.save(batch)
                except Exception:  # noqa: BLE001 - the next round tries again; the end state is saved by the task
                    logger.warning("saving %s streaming answers failed", len(batch), exc_info=True)
                    connection.close()  # the next round reconnects if this one broke the connection
                if time.monotonic() > next_at:
                    next_at = time.monotonic()  # a slow round: save again at once, do not pile up
        finally:
            connection.close()

    def save(self, batch: list[StreamingAnswer]) -> None:
        """Renew the locks, then write every answer's text (and heartbeat) in one transaction."""
        live = []
        for answer in batch:
            try:
                answer.lock.renew()
            except Exception as exc:  # noqa: BLE001 - raised in the task thread, as if renewed there
                answer.failure = exc
                continue
            live.append(answer)
        pipe = redis_client().pipeline(transaction=False)
        for answer in live:
            answer.publisher.refresh(pipe)
        pipe.execute()
        answer_writer.call(_answers_progress_save, live)


def _answers_progress_save(live: list[StreamingAnswer]) -> None:
    now = timezone.now()
    with transaction.atomic():
        for answer in live:
            if not Message.objects.filter(pk=answer.answer_id, state=State.STREAMING).update(
                heartbeat_at=now, **answer.progress()
            ):
                answer.abandoned = True


class AnswerWriter:
    """The one thread per worker process that writes answers' rows, in the order asked.

    Task threads hand it their start and finish, the saver its batch, and go on relaying:
    the start of an answer is recorded while Moonshot works on the first token instead of
    before the request is sent, and however many answers stream at once the process writes
    with one connection, one statement at a time (SQLite has a single writer; a thousand
    threads polling for its lock starve each other). The thread keeps its connection while
    there is work and closes it after `idle_seconds` without any (or on `stop()`).
    """

    def __init__(self, idle_seconds: float = 30.0) -> None:
        self.idle_seconds = idle_seconds
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._mutex = threading.Lock()
        self._thread: threading.Thread | None = None

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        with self._mutex:
            self._queue.put((future, fn, args, kwargs))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="docqa-answer-writer", daemon=True)
                self._thread.start()
        return future

    def call(self, fn, /, *args, **kwargs):
        """Run `fn` on the writer thread and return its result (or raise its exception)."""
        return self.submit(fn, *args, **kwargs).result()

    def stop(self, timeout: float = 10.0) -> None:
        """Let the thread finish what was handed to it, close its connection and end."""
        with self._mutex:
            thread = self._thread
            if thread is None:
                return
            self._queue.put(None)
        thread.join(timeout)

    def _run(self) -> None:
        try:
            while True:
                try:
                    item = self._queue.get(timeout=self.idle_seconds)
                except queue.Empty:
                    item = None
                if item is None:  # idle, or stop()
                    with self._mutex:
                        if self._queue.empty():
                            self._thread = None
                            return
                    continue
                future, fn, args, kwargs = item
                if not future.set_running_or_notify_cancel():
                    continue
                try:
                    result = fn(*args, **kwargs)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller
                    connection.close()  # the next job reconnects if this one broke the connection
                    future.set_exception(exc)
                else:
                    future.set_result(result)
        finally:
            connection.close()


answer_saver = AnswerSaver()
answer_writer = AnswerWriter()


def answer_generate(*, answer_id: int) -> str:
    """Stream one answer from Moonshot into its Redis Stream and the database.

    Runs at most once per answer: a lock keeps a duplicate delivery from running alongside,
    and a delivery that finds the answer already started (its worker died) marks it
    interrupted, keeping the saved text, instead of generating a second time. The request
    is prepared before the answer is marked started (one conditional `UPDATE` that also
    records the model and budget), and only the delivery whose `UPDATE` matched streams.
    """
    lock = _answer_lock(answer_id)
    if not lock.acquire():
        return "locked"
    try:
        prepared, stop = _prepared_take(answer_id)
        if prepared is not None and not stop:
            # The ask built the request: straight to Moonshot (the start is still recorded
            # conditionally, so a stopped answer is not generated).
            return _answer_stream(answer_id, lock, prepared)
        answer = (
            Message.objects.select_related("conversation", "question")
            .filter(pk=answer_id, role=Role.ASSISTANT)
            .first()
        )
        if answer is None or answer.state != State.STREAMING:
            return "finished"
        if answer.started_at is not None:
            _answer_finish(
                answer_id,
                state=State.INTERRUPTED,
                error=note(N_("The worker writing this answer stopped before it was finished.")),
            )
            return "interrupted"
        return _answer_prepare_and_stream(answer, lock)
    finally:
        lock.release()


def _answer_prepare_and_stream(answer: Message, lock) -> str:
    now = timezone.now()
    if AnswerPublisher(answer.pk).stop_requested():
        _answer_finish(answer.pk, state=State.STOPPED, started_at=now)
        return State.STOPPED
    try:
        prepared = answer_prepare(answer=answer)
    except ChatRefused as exc:
        _answer_finish(answer.pk, state=State.FAILED, error=str(exc), started_at=now)
        return State.FAILED
    except MoonshotError as exc:
        _answer_finish(answer.pk, state=State.FAILED, error=upstream_error_note(exc), started_at=now)
        return State.FAILED
    # Nothing below reads the database from this thread: its connection goes back now rather
    # than when the answer ends (a thousand streaming answers must not hold a thousand).
    if not connection.in_atomic_block:
        connection.close()
    return _answer_stream(answer.pk, lock, prepared)


def _answer_stream(answer_id: int, lock, prepared: PreparedRequest) -> str:
    publisher = AnswerPublisher(answer_id)
    # The start is recorded on the writer thread once Moonshot has accepted the request, while
    # it works on the first token; no delta is published before the record is known to have
    # matched. When it did not (the answer was stopped, or another delivery started it,
    # meanwhile) the stream is closed unread.
    start: Future | None = None
    confirmed = False

    def start_record() -> None:
        nonlocal start
        if start is None:
            start = answer_writer.submit(_answer_mark_started, answer_id, prepared)

    def start_confirmed() -> bool:
        nonlocal confirmed
        if not confirmed:
            start_record()
            confirmed = start.result()
        return confirmed

    streaming = StreamingAnswer(answer_id, lock, publisher)
    progress = streaming.progress
    usage: dict = {}
    finish_reason = ""
    stopped = False
    answer_saver.add(streaming)
    try:
        stream = moonshot_client().chat_completion_stream_batches(
            model=prepared.model, messages=prepared.messages, on_sent=start_record, **prepared.params()
        )
        with closing(stream):
            # Chunks that arrived together (the relay fell behind) go out as one entry per kind.
            for chunks in stream:
                if not confirmed and not start_confirmed():
                    return "finished"
                pieces: list[tuple[str, str]] = []
                for chunk in chunks:
                    if chunk.usage:
                        usage = chunk.usage
                    if chunk.finish_reason:
                        finish_reason = chunk.finish_reason
                    for kind, text in ((REASONING, chunk.reasoning_content), (CONTENT, chunk.content)):
                        if not text:
                            continue
                        if pieces and pieces[-1][0] == kind:
                            pieces[-1] = (kind, pieces[-1][1] + text)
                        else:
                            pieces.append((kind, text))
                if pieces and streaming.publish(pieces):
                    stopped = True
                    break
                if streaming.failure is not None:
                    raise streaming.failure
                if streaming.abandoned:
                    # Finished elsewhere (swept, or the conversation was deleted): stop quietly.
                    return "abandoned"
    except StreamInterrupted as exc:
        logger.warning("answer %s: stream cut: %s", answer_id, exc)
        if not start_confirmed():
            return "finished"
        answer_writer.call(
            _answer_finish, answer_id, state=State.INTERRUPTED, error=upstream_error_note(exc), **progress()
        )
        return State.INTERRUPTED
    except MoonshotError as exc:
        logger.warning("answer %s failed: %s", answer_id, exc)
        if not start_confirmed():
            return "finished"
        answer_writer.call(
            _answer_finish, answer_id, state=State.FAILED, error=upstream_error_note(exc), **progress()
        )
        return State.FAILED
    except BaseException as exc:
        # The soft time limit, Redis going away, or a crash: keep what arrived, say which,
        # and let the user retry.
        if isinstance(exc, SoftTimeLimitExceeded):
            reason = note(N_("Writing this answer took too long and was stopped."))
        elif isinstance(exc, redis.exceptions.ConnectionError):
            reason = note(N_("docqa lost its connection to Redis while writing this answer."))
        else:
            reason = note(N_("The worker writing this answer stopped before it was finished."))
        if start is not None:
            start.result(timeout=ANSWER_LOCK_TTL)  # its outcome does not matter: the finish is conditional
        _answer_finish(answer_id, state=State.INTERRUPTED, error=reason, **progress())
        raise
    finally:
        answer_saver.remove(streaming)
    if not start_confirmed():
        return "finished"
    state = State.STOPPED if stopped else State.COMPLETE
    answer_writer.call(
        _answer_finish,
        answer_id,
        state=state,
        finish_reason="stopped" if stopped else finish_reason,
        prompt_tokens=usage.get("prompt_tokens"),
        completion_tokens=usage.get("completion_tokens"),
        **progress(),
    )
    return state


def answers_sweep_stale() -> int:
    """Beat: mark interrupted the answers whose worker died (no lock, no heartbeat for a while)
    and those never started (their task was lost), keeping the text saved so far."""
    now = timezone.now()
    stale_started = Message.objects.filter(
        state=State.STREAMING,
        started_at__isnull=False,
        heartbeat_at__lt=now - timedelta(seconds=settings.DOCQA_ANSWER_STALE_AFTER),
    )
    never_started = Message.objects.filter(
        state=State.STREAMING,
        started_at__isnull=True,
        created_at__lt=now - timedelta(seconds=settings.DOCQA_ANSWER_QUEUE_TIMEOUT),
    )
    count = 0
    for answer_id in stale_started.values_list("pk", flat=True):
        if lease_is_held(keys.answer_lock(answer_id)):
            continue  # still being written, just slowly
        count += _answer_finish(
            answer_id,
            state=State.INTERRUPTED,
            error=note(N_("The worker writing this answer stopped before it was finished.")),
        )
    for answer_id in never_started.values_list("pk", flat=True):
        count += _answer_finish(
            answer_id, state=State.INTERRUPTED, error=note(N_("This answer was never started. Please retry."))
        )
    return count
