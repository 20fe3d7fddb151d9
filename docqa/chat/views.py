"""Chat pages: thin views that parse the request, call a service and render.

`views_stream.answer_stream` streams asynchronously: it holds one Server-Sent Events
connection per watching browser on the event loop (not a thread) while it waits on the
answer's Redis Stream.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import OperationalError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.utils.text import slugify
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, reswap, retarget

from docqa.chat import catalogue, export, selectors, services
from docqa.chat.citations_render import CitedDocument
from docqa.chat.forms import ConversationNewForm
from docqa.chat.models import Conversation, Message, Role, Thinking
from docqa.chat.refusals import ChatRefused
from docqa.documents import selectors as document_selectors

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


def _answer_refused(request: HttpRequest, answer: Message, exc: ChatRefused) -> HttpResponse:
    """Back to the conversation (a whole-page redirect for htmx), the refusal as a message."""
    messages.error(request, str(exc))
    if request.htmx:
        return HttpResponseClientRedirect(answer.conversation.get_absolute_url())
    return redirect(answer.conversation)


def _conversation_context(conversation: Conversation, **extra) -> dict:
    documents = selectors.conversation_documents(conversation)
    turns = selectors.conversation_turns(conversation)
    return {
        "conversation": conversation,
        "documents": documents,
        "cited_documents": [CitedDocument(d.pk, d.filename, d.get_absolute_url()) for d in documents],
        "turns": turns,
        "last_question_id": turns[-1].question.pk if turns else None,
        "recent_conversations": selectors.recent_conversations(owner=conversation.owner),
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
    documents = document_selectors.documents_ready_for_chat(owner=request.user)
    if request.method == "POST":
        form = ConversationNewForm({"documents": request.POST.getlist("documents")})
    else:
        form = ConversationNewForm({"documents": request.GET.getlist("document")})
    valid = form.is_valid()
    selected_ids = form.cleaned_data.get("documents", [])
    error = "" if valid else " ".join(form.errors.get("documents", []))
    if request.method == "POST" and valid:
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
                "turn": selectors.Turn(question, [answer]),
                "last_question_id": question.pk,
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
    # The versions the page showed (?answers=1,7): Export writes those; others default to the latest.
    shown = {int(value) for value in request.GET.get("answers", "").split(",") if value.isdigit()}
    text = export.conversation_export_markdown(conversation=conversation, shown=shown)
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
        return _answer_refused(request, answer, exc)
    if request.htmx:
        context = _answer_context(new)
        context["turn"] = selectors.turn_of(new.question)
        return render(request, "chat/conversation.html#versions", context)
    return redirect(f"{answer.conversation.get_absolute_url()}#answer-{new.pk}")


@login_required
@require_POST
def answer_continue(request: HttpRequest, pk: int) -> HttpResponse:
    """Continue an answer cut at the length limit; the same answer streams on."""
    answer = _owned_answer(request, pk)
    try:
        continued = services.answer_continue(answer=answer)
    except ChatRefused as exc:
        return _answer_refused(request, answer, exc)
    if request.htmx:
        return render(request, "chat/conversation.html#answer", _answer_context(continued))
    return redirect(f"{answer.conversation.get_absolute_url()}#answer-{answer.pk}")


# --- shared with the SSE view (docqa.chat.views_stream) -------------------------------------


def _answer_context(answer: Message) -> dict:
    return {
        "answer": answer,
        "conversation": answer.conversation,
        "cited_documents": selectors.cited_documents(answer.conversation_id),
        "last_question_id": selectors.last_question_id(answer.conversation_id),
    }


def answer_html_render(request: HttpRequest, answer_id: int) -> str:
    answer = Message.objects.select_related("conversation", "question").get(pk=answer_id)
    return render_to_string("chat/conversation.html#answer", _answer_context(answer), request=request)
