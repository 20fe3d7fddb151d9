"""What a user does in chat: start, rename, re-model and delete conversations; ask; regenerate; stop.

Views call these with keyword arguments and show a `ChatRefused` as it is. An ask saves the
question and an empty answer, prepares the request (`docqa.chat.prepare`) and, once the
transaction commits, queues the answer's task (`docqa.chat.tasks.answer_generate`), which
streams it (`docqa.chat.generation`). Reads are in `docqa.chat.selectors`.
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Q
from django.utils import timezone
from django.utils.translation import gettext as _

from docqa import keys
from docqa.chat import context
from docqa.chat.catalogue import (
    default_model,
    max_completion_tokens_for,
    model_choices,
    models_available,
    thinking_switchable,
)
from docqa.chat.models import Conversation, ConversationDocument, FinishReason, Message, Role, State, Thinking
from docqa.chat.prepare import request_fit, request_hand_over, request_prepare, turns_before
from docqa.chat.refusals import ChatRefused
from docqa.chat.streams import answer_end_publish, answer_stop_request
from docqa.chat.tasks import answer_generate
from docqa.connections import redis_client
from docqa.documents.models import Document
from docqa.documents.services import documents_mark_used
from docqa.minute_counts import minute_count_add

__all__ = [
    "ChatRefused",
    "answer_regenerate",
    "answer_stop",
    "conversation_ask",
    "conversation_create",
    "conversation_delete",
    "conversation_rename",
    "conversation_set_model",
    "conversation_set_thinking",
    "answer_continue",
]

TITLE_LENGTH = 80
# Documents asked about are marked used at most this often: the `evict` policy orders by days,
# and the two UPDATEs would otherwise sit in every ask's write transaction (SQLite's one writer).
USED_RESOLUTION = timedelta(minutes=10)


def _names(names: list[str]) -> str:
    return ", ".join(f"“{name}”" for name in names)


def conversation_create(
    *, owner, document_ids: list[int], language: str, model: str | None = None
) -> Conversation:
    """Start a conversation about some of the owner's Ready documents, in the order given."""
    if not document_ids:
        raise ChatRefused(_("Choose at least one document."))
    by_id = {
        d.pk: d
        for d in Document.objects.select_related("stored_file")
        .defer("stored_file__content_raw", "stored_file__content_text")
        .filter(owner=owner, pk__in=document_ids)
    }
    ordered = [by_id[pk] for pk in dict.fromkeys(document_ids) if pk in by_id]
    if len(ordered) != len(set(document_ids)):
        raise ChatRefused(_("Some of the chosen documents no longer exist."))
    not_ready = [d.filename for d in ordered if not d.is_ready]
    if not_ready:
        raise ChatRefused(_("These documents are not ready yet: %(names)s.") % {"names": _names(not_ready)})
    model = model or default_model()
    system_prompt = settings.DOCQA_SYSTEM_PROMPT or context.system_prompt_default(language)
    request_fit(model=model, system_prompt=system_prompt, documents=ordered)
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


def conversation_set_thinking(*, conversation: Conversation, thinking: str) -> None:
    """Switch thinking on or off (or back to the model's default) for models that allow it."""
    if thinking not in Thinking.values:
        raise ChatRefused(_("Choose on or off."))
    if not thinking_switchable(conversation.model):
        raise ChatRefused(_("This model cannot switch thinking on or off."))
    conversation.thinking = thinking
    conversation.save(update_fields=["thinking", "updated_at"])


def conversation_delete(*, conversation: Conversation) -> None:
    """Delete a conversation; answers still being written are stopped first."""
    for answer_id in conversation.messages.filter(state=State.STREAMING).values_list("pk", flat=True):
        answer_stop_request(answer_id)
    conversation.delete()


# --- asking -----------------------------------------------------------------------------------


def _ask_rate_check(owner_id: int) -> None:
    limit = settings.DOCQA_ASK_RATE_LIMIT
    if not limit:
        return
    if minute_count_add(lambda minute: keys.asks_window(owner_id, minute)) > limit:
        raise ChatRefused(
            _("You are asking faster than %(limit)s questions a minute. Please wait a moment and ask again.")
            % {"limit": limit}
        )


def _answer_create(*, question: Message, model: str, prepare=None) -> Message:
    """An empty answer (`streaming`), its task queued once the transaction commits.

    `prepare()`, when given, builds the answer's request first and hands it over to the task
    (see `docqa.chat.prepare.request_hand_over`).
    """
    now = timezone.now()
    answer = Message.objects.create(
        conversation_id=question.conversation_id,
        role=Role.ASSISTANT,
        question=question,
        state=State.STREAMING,
        model=model,
        heartbeat_at=now,
    )
    answer_id = answer.pk

    def send() -> None:
        if prepare is not None:
            request_hand_over(answer_id, prepare)
        answer_generate.delay(answer_id)

    transaction.on_commit(send)
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
        raise ChatRefused(_("These documents are not ready: %(names)s.") % {"names": _names(not_ready)})
    context_lengths = models_available()
    # Refuse before saving anything; earlier turns never cause a refusal (the oldest are dropped).
    request_fit(
        model=conversation.model,
        system_prompt=conversation.system_prompt,
        documents=documents,
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
        _ask_rate_check(conversation.owner_id)
        question_message = Message.objects.create(conversation=locked, role=Role.USER, content=text)
        answer = _answer_create(
            question=question_message,
            model=locked.model,
            prepare=lambda: request_prepare(
                conversation=locked,
                documents=documents,
                turns=[] if first_question else turns_before(answer),
                question=text,
                exact=False,
                context_lengths=context_lengths,
            ),
        )
        # Least recently used means used: the `evict` retention policy keeps what is asked about.
        used_before = timezone.now() - USED_RESOLUTION
        documents_mark_used(
            document_ids=[
                d.pk
                for d in documents
                if d.last_used_at < used_before or d.stored_file.last_used_at < used_before
            ]
        )
        fields = ["updated_at"]
        if locked.title_is_auto and first_question:
            locked.title = " ".join(text.split())[:TITLE_LENGTH]
            fields.append("title")
        locked.save(update_fields=fields)
    return question_message, answer


def answer_regenerate(*, answer: Message, larger_budget: bool = False) -> Message:
    """Ask the last question again: a new answer (a version) is added; earlier ones are kept.

    `larger_budget` doubles the completion budget (for an answer whose budget went on
    thinking); the window still caps it when the request is prepared.
    """
    with transaction.atomic():
        Conversation.objects.select_for_update().get(pk=answer.conversation_id)
        answer = Message.objects.select_related("question").get(pk=answer.pk)
        last_question = Message.objects.filter(
            conversation_id=answer.conversation_id, role=Role.USER
        ).aggregate(last=Max("id"))["last"]
        if answer.state == State.STREAMING:
            raise ChatRefused(_("This answer is still being written."))
        if answer.question is None or answer.question_id != last_question:
            raise ChatRefused(_("Only the last answer can be regenerated."))
        if Message.objects.filter(conversation_id=answer.conversation_id, state=State.STREAMING).exists():
            raise ChatRefused(_("The previous answer is still being written. Wait for it or stop it first."))
        _ask_rate_check(answer.conversation.owner_id)
        model = answer.conversation.model
        new = _answer_create(question=answer.question, model=model)
        if larger_budget:
            budget = 2 * (answer.max_completion_tokens or max_completion_tokens_for(model))
            Message.objects.filter(pk=new.pk).update(max_completion_tokens=budget)
        Conversation.objects.filter(pk=answer.conversation_id).update(updated_at=timezone.now())
    return new


def answer_continue(*, answer: Message) -> Message:
    """Go on with an answer cut at the length limit: the same answer streams again from where
    it stopped (Moonshot's Partial Mode), its new text appended.

    Only the last answer, complete with `finish_reason` length and with text, continues.
    """
    with transaction.atomic():
        Conversation.objects.select_for_update().get(pk=answer.conversation_id)
        answer = Message.objects.get(pk=answer.pk)
        last = Message.objects.filter(conversation_id=answer.conversation_id).aggregate(last=Max("id"))[
            "last"
        ]
        if answer.pk != last or not answer.is_cut_at_length or not answer.content.strip():
            raise ChatRefused(_("Only the last answer, cut at the length limit, can be continued."))
        _ask_rate_check(answer.conversation.owner_id)
        now = timezone.now()
        # Back to streaming, with a fresh Redis Stream: the page's snapshot is the saved text
        # plus what the continuation sends.
        Message.objects.filter(pk=answer.pk, state=State.COMPLETE, finish_reason=FinishReason.LENGTH).update(
            state=State.STREAMING,
            started_at=None,
            finished_at=None,
            first_token_at=None,
            heartbeat_at=now,
            stream_cursor="",
            error="",
        )
        redis_client().delete(keys.answer_stream(answer.pk), keys.answer_stop(answer.pk))
        answer_id = answer.pk
        transaction.on_commit(lambda: answer_generate.delay(answer_id))
        Conversation.objects.filter(pk=answer.conversation_id).update(updated_at=now)
    answer.refresh_from_db()
    return answer


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
