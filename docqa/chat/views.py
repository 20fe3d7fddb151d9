"""Chat pages: thin views that parse the request, call a service and render.

`answer_stream` is async: it holds one Server-Sent Events connection per watching browser
on the event loop (not a thread) while it waits on the answer's Redis Stream.
"""

from __future__ import annotations

import html
import itertools
import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import OperationalError
from django.http import Http404, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.text import slugify
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from docqa.chat import catalogue, export, selectors, services, streams
from docqa.chat.models import Conversation, Message, Role, State, Thinking
from docqa.chat.refusals import ChatRefused
from docqa.chat.streams import CONTENT, END, REASONING
from docqa.connections import async_redis_client
from docqa.documents.models import Document, Status

logger = logging.getLogger("docqa.chat.views")
# Seconds a browser (or a script) is told to wait when the database is too busy to take a question.
BUSY_RETRY_AFTER = 5


def _owned_conversation(request: HttpRequest, pk: int) -> Conversation:
    return get_object_or_404(Conversation, pk=pk, owner=request.user)


def _owned_answer(request: HttpRequest, pk: int) -> Message:
    return get_object_or_404(
        Message.objects.select_related("conversation", "question"),
        pk=pk,
        role=Role.ASSISTANT,
        conversation__owner=request.user,
    )


def _conversation_context(conversation: Conversation, **extra) -> dict:
    documents = list(conversation.ordered_documents())
    chat_messages = selectors.conversation_messages(conversation)
    return {
        "conversation": conversation,
        "documents": documents,
        "chat_messages": chat_messages,
        "last_message_id": chat_messages[-1].pk if chat_messages else None,
        "model_choices": catalogue.model_choices(),
        "thinking_switchable": catalogue.thinking_switchable(conversation.model),
        "thinking_choices": Thinking.choices,
        "question_limit": settings.DOCQA_MAX_QUESTION_CHARS,
        **extra,
    }


@login_required
@require_GET
def conversation_list(request: HttpRequest) -> HttpResponse:
    query = request.GET.get("q", "")[:200]
    conversations = selectors.conversations_search(owner=request.user, query=query)
    template = (
        "chat/list.html#results"
        if request.htmx and request.htmx.target == "conversation-results"
        else "chat/list.html"
    )
    return render(request, template, {"conversations": conversations, "query": query})


@login_required
@require_http_methods(["GET", "POST"])
def conversation_new(request: HttpRequest) -> HttpResponse:
    documents = Document.objects.filter(owner=request.user, stored_file__status=Status.READY).select_related(
        "stored_file"
    )
    selected = (
        request.POST.getlist("documents") if request.method == "POST" else request.GET.getlist("document")
    )
    selected_ids = [int(value) for value in selected if value.isdigit()]
    error = ""
    if request.method == "POST":
        try:
            conversation = services.conversation_create(
                owner=request.user, document_ids=selected_ids, language=get_language() or "en"
            )
        except ChatRefused as exc:
            error = str(exc)
        else:
            return redirect(conversation)
    return render(
        request,
        "chat/new.html",
        {"documents": documents, "selected_ids": selected_ids, "error": error},
        status=400 if error else 200,
    )


@login_required
@require_GET
def conversation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _owned_conversation(request, pk)
    return render(request, "chat/conversation.html", _conversation_context(conversation))


@login_required
@require_POST
def conversation_ask(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _owned_conversation(request, pk)
    text = request.POST.get("question", "")
    try:
        question, answer = services.conversation_ask(conversation=conversation, question=text)
    except OperationalError:
        # The database is saturated (SQLite's busy timeout ran out, PostgreSQL refused a
        # connection or a lock): nothing was saved, so say so and keep the question.
        logger.warning("ask on conversation %s refused: database busy", conversation.pk, exc_info=True)
        return _ask_busy(request, conversation, text)
    except ChatRefused as exc:
        if request.htmx:
            # 200 plus a retarget: htmx does not swap error statuses, and the form must keep the text.
            response = render(
                request,
                "chat/conversation.html#ask_form",
                {
                    "conversation": conversation,
                    "question_text": text,
                    "ask_error": str(exc),
                    "question_limit": settings.DOCQA_MAX_QUESTION_CHARS,
                },
            )
            return reswap(retarget(response, "#ask-form"), "outerHTML")
        messages.error(request, str(exc))
        context = _conversation_context(conversation, question_text=text, ask_error=str(exc))
        return render(request, "chat/conversation.html", context, status=422)
    if request.htmx:
        conversation.refresh_from_db(fields=["title"])
        return render(
            request,
            "chat/conversation.html#asked",
            {
                "conversation": conversation,
                "question": question,
                "answer": answer,
                "last_message_id": answer.pk,
                "question_limit": settings.DOCQA_MAX_QUESTION_CHARS,
            },
        )
    return redirect(f"{conversation.get_absolute_url()}#answer-{answer.pk}")


def _ask_busy(request: HttpRequest, conversation: Conversation, text: str) -> HttpResponse:
    """503 with the form and its text kept; htmx gets the form as a 200 retarget, as other refusals."""
    error = _("The service is busy right now and your question was not saved. Please try again in a moment.")
    form_context = {
        "conversation": conversation,
        "question_text": text,
        "ask_error": error,
        "question_limit": settings.DOCQA_MAX_QUESTION_CHARS,
    }
    if request.htmx:
        # htmx does not swap error statuses; the form must show the message and keep the text.
        response = reswap(
            retarget(render(request, "chat/conversation.html#ask_form", form_context), "#ask-form"),
            "outerHTML",
        )
    else:
        try:
            context = _conversation_context(conversation, question_text=text, ask_error=error)
        except OperationalError:  # not even reads get through: the form alone still keeps the text
            response = render(request, "chat/conversation.html#ask_form", form_context, status=503)
        else:
            response = render(request, "chat/conversation.html", context, status=503)
    response["Retry-After"] = str(BUSY_RETRY_AFTER)
    return response


@login_required
@require_POST
def conversation_model(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _owned_conversation(request, pk)
    try:
        services.conversation_set_model(conversation=conversation, model=request.POST.get("model", ""))
    except ChatRefused as exc:
        messages.error(request, str(exc))
    if request.htmx:
        context = _conversation_context(conversation)
        # The thinking switch shows only for models that have one.
        return HttpResponse(
            render_to_string("chat/conversation.html#model_form", context, request=request)
            + render_to_string("chat/_thinking_form.html", {**context, "oob": True}, request=request)
        )
    return redirect(conversation)


@login_required
@require_POST
def conversation_thinking(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _owned_conversation(request, pk)
    try:
        services.conversation_set_thinking(
            conversation=conversation, thinking=request.POST.get("thinking", "")
        )
    except ChatRefused as exc:
        messages.error(request, str(exc))
    if request.htmx:
        return render(request, "chat/_thinking_form.html", _conversation_context(conversation))
    return redirect(conversation)


@login_required
@require_http_methods(["GET", "POST"])
def conversation_rename(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _owned_conversation(request, pk)
    error = ""
    if request.method == "POST":
        try:
            services.conversation_rename(conversation=conversation, title=request.POST.get("title", ""))
        except ChatRefused as exc:
            error = str(exc)
        else:
            return redirect(conversation)
    return render(
        request,
        "chat/rename.html",
        {"conversation": conversation, "error": error},
        status=400 if error else 200,
    )


@login_required
@require_http_methods(["GET", "POST"])
def conversation_delete(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _owned_conversation(request, pk)
    if request.method == "GET":
        return render(request, "chat/delete.html", {"conversation": conversation})
    title = conversation.title
    services.conversation_delete(conversation=conversation)
    messages.success(request, _("“%(title)s” deleted.") % {"title": title})
    if request.htmx:
        return HttpResponseClientRedirect("/chat/")
    return redirect("chat:list")


@login_required
@require_GET
def conversation_export(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _owned_conversation(request, pk)
    text = export.conversation_export_markdown(conversation=conversation)
    response = HttpResponse(text, content_type="text/markdown; charset=utf-8")
    name = slugify(conversation.title) or f"conversation-{conversation.pk}"
    response["Content-Disposition"] = f'attachment; filename="{name}.md"'
    return response


@login_required
@require_GET
def answer_detail(request: HttpRequest, pk: int) -> HttpResponse:
    answer = _owned_answer(request, pk)
    return render(request, "chat/conversation.html#answer", _answer_context(answer))


@login_required
@require_POST
def answer_stop(request: HttpRequest, pk: int) -> HttpResponse:
    answer = _owned_answer(request, pk)
    services.answer_stop(answer=answer)
    if request.htmx:
        return HttpResponse(status=204)
    return redirect(f"{answer.conversation.get_absolute_url()}#answer-{answer.pk}")


@login_required
@require_POST
def answer_regenerate(request: HttpRequest, pk: int) -> HttpResponse:
    answer = _owned_answer(request, pk)
    try:
        if request.POST.get("thinking") == Thinking.DISABLED:
            services.conversation_set_thinking(conversation=answer.conversation, thinking=Thinking.DISABLED)
        new = services.answer_regenerate(answer=answer, larger_budget=request.POST.get("budget") == "larger")
    except ChatRefused as exc:
        messages.error(request, str(exc))
        if request.htmx:
            return HttpResponseClientRedirect(answer.conversation.get_absolute_url())
        return redirect(answer.conversation)
    if request.htmx:
        return render(request, "chat/conversation.html#answer", _answer_context(new))
    return redirect(f"{answer.conversation.get_absolute_url()}#answer-{new.pk}")


@login_required
@require_POST
def answer_continue(request: HttpRequest, pk: int) -> HttpResponse:
    """Continue an answer cut at the length limit; the same answer streams on."""
    answer = _owned_answer(request, pk)
    try:
        continued = services.answer_continue(answer=answer)
    except ChatRefused as exc:
        messages.error(request, str(exc))
        if request.htmx:
            return HttpResponseClientRedirect(answer.conversation.get_absolute_url())
        return redirect(answer.conversation)
    if request.htmx:
        return render(request, "chat/conversation.html#answer", _answer_context(continued))
    return redirect(f"{answer.conversation.get_absolute_url()}#answer-{answer.pk}")


# --- Server-Sent Events ---------------------------------------------------------------------


_EVENT_NAMES = {CONTENT: "content", REASONING: "reasoning"}


def _sse(event: str, data: str, entry_id: str | None = None) -> str:
    lines = data.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    head = f"id: {entry_id}\n" if entry_id else ""
    return head + f"event: {event}\n" + "".join(f"data: {line}\n" for line in lines) + "\n"


def _answer_context(answer: Message) -> dict:
    return {
        "answer": answer,
        "conversation": answer.conversation,
        "last_message_id": selectors.last_message_id(answer.conversation_id),
    }


def _answer_html(request: HttpRequest, answer_id: int) -> str:
    answer = Message.objects.select_related("conversation", "question").get(pk=answer_id)
    return render_to_string("chat/conversation.html#answer", _answer_context(answer), request=request)


async def answer_stream(request: HttpRequest, pk: int) -> StreamingHttpResponse:
    """The answer's deltas as Server-Sent Events, read from its Redis Stream.

    Every delta carries its stream id as the SSE `id`. A browser that reconnects by itself
    sends `Last-Event-ID` and resumes right after it; htmx's extension opens a fresh
    EventSource instead (no Last-Event-ID), so such a connection first gets a snapshot of
    the answer so far (the database's text plus the deltas after its last save) that
    replaces what the page shows. Either way no token is repeated or dropped. A finished
    answer is one `done` event from the database, and the page closes the stream on it.
    """
    user = await request.auser()
    if not user.is_authenticated:
        raise Http404
    answer = await Message.objects.filter(pk=pk, role=Role.ASSISTANT, conversation__owner=user).afirst()
    if answer is None:
        raise Http404
    last_event_id = request.headers.get("Last-Event-ID", "")

    async def events():
        yield "retry: 1000\n\n"
        if answer.state != State.STREAMING:
            yield _sse("done", await sync_to_async(_answer_html)(request, pk))
            return
        client = async_redis_client()
        try:
            if last_event_id and await streams.answer_stream_has(
                client, answer_id=pk, entry_id=last_event_id
            ):
                cursor = last_event_id
            else:
                # Snapshot: the saved text (as read a moment ago), then whatever came after that save.
                backlog = await streams.answer_entries_since(client, answer_id=pk, after=answer.stream_cursor)
                content = answer.content + "".join(
                    f.get("t", "") for _i, f in backlog if f.get("k") == CONTENT
                )
                reasoning = answer.reasoning + "".join(
                    f.get("t", "") for _i, f in backlog if f.get("k") == REASONING
                )
                cursor = backlog[-1][0] if backlog else answer.stream_cursor
                if answer.state != State.STREAMING or any(f.get("k") == END for _i, f in backlog):
                    yield _sse("done", await sync_to_async(_answer_html)(request, pk))
                    return
                yield _sse("snapshot-reasoning", html.escape(reasoning), cursor or None)
                yield _sse("snapshot-content", html.escape(content), cursor or None)
            async for batch in streams.answer_entries(client, answer_id=pk, after=cursor):
                if batch is None:
                    state = await Message.objects.filter(pk=pk).values_list("state", flat=True).afirst()
                    if state != State.STREAMING:
                        yield _sse("done", await sync_to_async(_answer_html)(request, pk))
                        return
                    yield ": keep-alive\n\n"
                    continue
                # Entries that arrived together go out as one event per run of the same kind
                # (the browser appends the same text, with fewer events to handle).
                kinds = [fields.get("k") for _entry_id, fields in batch]
                ended = END in kinds
                entries = batch[: kinds.index(END)] if ended else batch
                out = []
                for kind, run in itertools.groupby(entries, key=lambda entry: entry[1].get("k")):
                    run = list(run)
                    text = "".join(fields.get("t", "") for _entry_id, fields in run)
                    out.append(_sse(_EVENT_NAMES.get(kind, "reasoning"), html.escape(text), run[-1][0]))
                if ended:
                    out.append(_sse("done", await sync_to_async(_answer_html)(request, pk)))
                    yield "".join(out)
                    return
                yield "".join(out)
        finally:
            await client.aclose()

    response = StreamingHttpResponse(events(), content_type="text/event-stream")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"
    return response
