"""Document pages: thin views that parse the request, call a service and render."""

from __future__ import annotations

import asyncio
import re

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from docqa import live_streams
from docqa.chat.catalogue import document_fit, models_available
from docqa.chat.citations_render import document_marked_html, mark_parse
from docqa.documents import selectors, services
from docqa.documents.formats import accept_attribute
from docqa.documents.models import Document
from docqa.documents.uploads import HashingUploadHandler
from docqa.events import events_listen

TEXT_PAGE_CHARS = 20_000
EVENT_ID = re.compile(r"\d{1,20}-\d{1,20}")


def _owned_document(request: HttpRequest, pk: int) -> Document:
    return get_object_or_404(selectors.documents_owned(owner=request.user), pk=pk)


def _with_fit(documents) -> list[Document]:
    """Documents with `fit`: which models' windows hold them (the list shows it up front)."""
    windows = models_available()
    documents = list(documents)
    for document in documents:
        tokens = document.stored_file.token_count
        document.fit = document_fit(tokens, windows) if tokens is not None else None
    return documents


@login_required
@require_GET
def document_list(request: HttpRequest) -> HttpResponse:
    documents = _with_fit(selectors.documents_owned(owner=request.user))
    return render(
        request,
        "documents/list.html",
        {
            "documents": documents,
            "accept": accept_attribute(),
            "max_upload_mb": settings.DOCQA_MAX_UPLOAD_BYTES // 1_000_000,
            "max_upload_bytes": settings.DOCQA_MAX_UPLOAD_BYTES,
        },
    )


@login_required
@require_POST
def document_upload(request: HttpRequest) -> HttpResponse:
    """Accept one or more files (the page's script sends one per request, for progress)."""
    files = request.FILES.getlist("files")
    # settings.FILE_UPLOAD_HANDLERS installs it, so even the CSRF check's parse hashes.
    handler = next(h for h in request.upload_handlers if isinstance(h, HashingUploadHandler))
    errors: list[str] = [
        _("“%(name)s” is larger than the %(limit)s MB limit per file.")
        % {"name": name, "limit": settings.DOCQA_MAX_UPLOAD_BYTES // 1_000_000}
        for name in handler.too_large
    ]
    results: list[services.UploadResult] = []
    if not files and not errors:
        errors.append(_("Choose at least one file to upload."))
    for uploaded in files:
        try:
            results.append(
                services.document_upload(owner=request.user, uploaded_file=uploaded, sha256=uploaded.sha256)
            )
        except services.UploadRejected as exc:
            errors.append(str(exc))
    if request.htmx or request.headers.get("X-Requested-With") == "XMLHttpRequest":
        status = 400 if errors and not results else 200
        return render(
            request,
            "documents/list.html#upload_results",
            {"results": results, "errors": errors},
            status=status,
        )
    for error in errors:
        messages.error(request, error)
    for result in results:
        if result.created:
            messages.success(request, _("“%(name)s” uploaded.") % {"name": result.document.filename})
        else:
            messages.info(
                request,
                _("You already uploaded this file as “%(name)s”.") % {"name": result.document.filename},
            )
    return redirect("documents:list")


@login_required
@require_GET
def document_row(request: HttpRequest, pk: int) -> HttpResponse:
    (document,) = _with_fit([_owned_document(request, pk)])
    return render(request, "documents/list.html#document_row", {"document": document})


@login_required
@require_GET
def document_detail(request: HttpRequest, pk: int) -> HttpResponse:
    document = _owned_document(request, pk)
    if request.htmx and request.GET.get("fragment") == "status":
        response = render(request, "documents/detail.html#document_status", {"document": document})
        if document.is_ready and request.GET.get("was") != document.status:
            response["HX-Refresh"] = "true"  # the text has arrived: show the whole page
        return response
    services.documents_mark_used(document_ids=[document.pk])  # evict releases the least recently used
    # One page of the text is read from the database, never the whole of it.
    text_pages = selectors.TextPages(stored_file_id=document.stored_file_id, size=TEXT_PAGE_CHARS)
    pages = Paginator(text_pages, 1)
    # A citation opens the page holding its passage, marked (`?mark=start-end`, offsets in
    # the whole text; a passage running past the page's end is marked up to it).
    span = mark_parse(request.GET.get("mark", ""), text_pages.length)
    marked = None
    if span:
        page = pages.get_page(span[0] // TEXT_PAGE_CHARS + 1)
        offset = (page.number - 1) * TEXT_PAGE_CHARS
        local = (span[0] - offset, min(span[1] - offset, len(page.object_list[0])))
        html = document_marked_html(page.object_list[0], local)
        html = html.replace(document.stored_file.remote_filename, escape(document.filename))
        marked = mark_safe(html)  # noqa: S308 - escaped there, and the name here
    else:
        page = pages.get_page(request.GET.get("page"))
    # Moonshot's text names the file as uploaded (docqa-<token>.png, a neutral name); the page
    # shows the user's own name instead.
    shown = page.object_list[0].replace(document.stored_file.remote_filename, document.filename)
    return render(
        request,
        "documents/detail.html",
        {"document": document, "page": page, "marked": marked, "text": shown},
    )


@login_required
@require_POST
def document_retry(request: HttpRequest, pk: int) -> HttpResponse:
    document = _owned_document(request, pk)
    if not services.document_retry(document=document):
        messages.info(request, _("“%(name)s” is not in a failed state.") % {"name": document.filename})
    if request.htmx:
        document.stored_file.refresh_from_db()
        return render(request, "documents/list.html#document_row", {"document": document})
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(
        next_url, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        next_url = reverse("documents:list")  # never off-site: no open redirect
    return redirect(next_url)


@login_required
@require_http_methods(["GET", "POST"])
def document_delete(request: HttpRequest, pk: int) -> HttpResponse:
    document = _owned_document(request, pk)
    if request.method == "GET":
        used_in = selectors.document_conversations_count(document=document)
        return render(request, "documents/delete.html", {"document": document, "used_in": used_in})
    name = document.filename
    services.document_delete(document=document)
    if request.htmx and request.POST.get("from") == "list":
        return HttpResponse("")
    messages.success(request, _("“%(name)s” deleted.") % {"name": name})
    return redirect("documents:list")


async def document_events(request: HttpRequest) -> HttpResponse:
    """Server-Sent Events: one `document-<id>` event each time one of the user's documents changes."""
    user = await request.auser()
    if not user.is_authenticated:
        raise PermissionDenied
    # A Redis Stream id ("1700000000000-0"); anything else is ignored, as if there were none.
    last_id = request.headers.get("Last-Event-ID", "")
    if not EVENT_ID.fullmatch(last_id):
        last_id = "$"

    async def stream():
        yield "retry: 2000\n\n"
        try:
            async for item in events_listen(user_id=user.pk, last_id=last_id):
                if item is None:
                    yield ": keep-alive\n\n"
                    continue
                entry_id, event, data = item
                yield f"id: {entry_id}\nevent: {event}\ndata: {data or event}\n\n"
        except asyncio.CancelledError:
            raise

    slot = await live_streams.stream_slot_take(user_id=user.pk)
    return live_streams.event_stream_response(user_id=user.pk, slot=slot, body=stream())
