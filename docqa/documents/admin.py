"""Admin for documents and stored files, and the Moonshot account page.

Nothing here calls Moonshot: the account page shows the last listing recorded by the
reconciliation (less what was deleted since), starts a sync in the background when that
listing is over a minute old, and every button enqueues a Celery task whose progress the page
polls.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from docqa.documents import services
from docqa.documents.housekeeping.jobs import job_get
from docqa.documents.housekeeping.overview import account_overview
from docqa.documents.housekeeping.remote import RemoteKind
from docqa.documents.models import Document, Status, StoredFile
from docqa.documents.templatetags.sizes import size_decimal

ACCOUNT_TEMPLATE = "admin/documents/moonshot_account.html"
CONFIRM_TEMPLATE = "admin/documents/moonshot_account_confirm.html"


# --- shared actions ---------------------------------------------------------------------------


def _can_act(request: HttpRequest) -> bool:
    """Who may change remote copies: those allowed to delete documents."""
    return request.user.is_superuser or request.user.has_perm("documents.delete_document")


def _reextract(request: HttpRequest, stored_file_ids: list[int]) -> None:
    moved = services.stored_files_reextract(stored_file_ids=stored_file_ids)
    skipped = len(stored_file_ids) - moved
    messages.success(
        request,
        ngettext(
            "%(count)s file sent for extraction again.", "%(count)s files sent for extraction again.", moved
        )
        % {"count": moved},
    )
    if skipped:
        messages.warning(
            request,
            ngettext(
                "%(count)s file skipped: it is still in the pipeline.",
                "%(count)s files skipped: they are still in the pipeline.",
                skipped,
            )
            % {"count": skipped},
        )


def _release(request: HttpRequest, stored_file_ids: list[int]) -> None:
    released = services.remote_copies_release(stored_file_ids=stored_file_ids)
    skipped = len(stored_file_ids) - released
    messages.success(
        request,
        ngettext(
            "%(count)s remote copy is being deleted; its text stays, so questions keep working.",
            "%(count)s remote copies are being deleted; their text stays, so questions keep working.",
            released,
        )
        % {"count": released},
    )
    if skipped:
        messages.warning(
            request,
            ngettext(
                "%(count)s file skipped: it has no remote copy, or its text is not stored yet.",
                "%(count)s files skipped: they have no remote copy, or their text is not stored yet.",
                skipped,
            )
            % {"count": skipped},
        )


class RemoteCopyFilter(admin.SimpleListFilter):
    title = _("remote copy")
    parameter_name = "remote"

    def lookups(self, request, model_admin):
        return [("present", _("on Moonshot")), ("none", _("text only")), ("missing", _("missing"))]

    def queryset(self, request, queryset):
        prefix = "stored_file__" if queryset.model is Document else ""
        if self.value() == "present":
            return queryset.exclude(**{f"{prefix}remote_id": ""})
        if self.value() == "none":
            return queryset.filter(**{f"{prefix}remote_id": "", f"{prefix}remote_missing_at__isnull": True})
        if self.value() == "missing":
            return queryset.filter(**{f"{prefix}remote_id": "", f"{prefix}remote_missing_at__isnull": False})
        return queryset


# --- documents --------------------------------------------------------------------------------


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    list_display = ["filename", "owner", "status", "size", "format", "tokens", "remote_id", "last_used_at"]
    list_filter = [
        ("stored_file__status", admin.ChoicesFieldListFilter),
        "stored_file__extension",
        "owner",
        RemoteCopyFilter,
    ]
    search_fields = ["filename"]
    list_select_related = ["owner", "stored_file"]
    list_per_page = 50
    actions = ["reextract", "release_remote_copy"]
    fields = [
        "filename",
        "owner",
        "stored_file",
        "status",
        "size",
        "format",
        "tokens",
        "remote_id",
        "error",
        "created_at",
        "last_used_at",
    ]
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_act_permission(self, request: HttpRequest) -> bool:
        return _can_act(request)

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        if "delete_selected" in actions:
            func, name, _description = actions["delete_selected"]
            actions["delete_selected"] = (
                func,
                name,
                _("Delete entirely (document, local file and remote copy)"),
            )
        return actions

    def delete_model(self, request: HttpRequest, obj: Document) -> None:
        # The stored and remote copies go once no other document uses them; a failing
        # remote delete is retried by its task and never holds up this one.
        services.document_delete(document=obj)

    def delete_queryset(self, request: HttpRequest, queryset) -> None:
        for document in queryset.select_related("stored_file"):
            services.document_delete(document=document)

    @admin.display(description=_("status"), ordering="stored_file__status")
    def status(self, obj: Document) -> str:
        return obj.get_status_display()

    @admin.display(description=_("size"), ordering="stored_file__size")
    def size(self, obj: Document) -> str:
        return size_decimal(obj.stored_file.size)

    @admin.display(description=_("format"), ordering="stored_file__extension")
    def format(self, obj: Document) -> str:
        return obj.format_label

    @admin.display(description=_("tokens"), ordering="stored_file__token_count")
    def tokens(self, obj: Document):
        return obj.stored_file.token_count

    @admin.display(description=_("remote id"), ordering="stored_file__remote_id")
    def remote_id(self, obj: Document) -> str:
        stored = obj.stored_file
        if stored.remote_id:
            return stored.remote_id
        if stored.remote_missing_at:
            return _("missing")
        return _("none (text only)") if stored.status == Status.READY else "—"

    @admin.display(description=_("note"))
    def error(self, obj: Document) -> str:
        return obj.stored_file.error_display

    @admin.action(
        description=_("Re-extract (uploads the local file again if there is no remote copy)"),
        permissions=["act"],
    )
    def reextract(self, request: HttpRequest, queryset) -> None:
        _reextract(request, sorted(set(queryset.values_list("stored_file_id", flat=True))))

    @admin.action(description=_("Delete the remote copy only (the text stays)"), permissions=["act"])
    def release_remote_copy(self, request: HttpRequest, queryset) -> None:
        _release(request, sorted(set(queryset.values_list("stored_file_id", flat=True))))


# --- stored files and the account page --------------------------------------------------------


@admin.register(StoredFile)
class StoredFileAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "status",
        "size_display",
        "extension",
        "token_count",
        "remote_id",
        "document_count",
        "last_used_at",
    ]
    list_filter = ["status", "extension", RemoteCopyFilter]
    search_fields = ["sha256", "remote_id", "documents__filename"]
    actions = ["reextract", "release_remote_copy"]
    fields = [
        "sha256",
        "size",
        "extension",
        "file",
        "status",
        "status_changed_at",
        "note",
        "attempts",
        "remote_id",
        "remote_name",
        "remote_uploaded_at",
        "upload_started_at",
        "remote_missing_at",
        "waiting_for_room_since",
        "file_type",
        "token_count",
        "created_at",
        "last_used_at",
    ]
    readonly_fields = fields

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).annotate(document_total=Count("documents"))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # stored files go with their last document

    def has_act_permission(self, request: HttpRequest) -> bool:
        return _can_act(request)

    @admin.display(description=_("size"), ordering="size")
    def size_display(self, obj: StoredFile) -> str:
        return size_decimal(obj.size)

    @admin.display(description=_("documents"), ordering="document_total")
    def document_count(self, obj: StoredFile) -> int:
        return obj.document_total

    @admin.display(description=_("note"))
    def note(self, obj: StoredFile) -> str:
        return obj.error_display

    @admin.display(description=_("name on Moonshot"))
    def remote_name(self, obj: StoredFile) -> str:
        return obj.remote_filename

    @admin.action(
        description=_("Re-extract (uploads the local file again if there is no remote copy)"),
        permissions=["act"],
    )
    def reextract(self, request: HttpRequest, queryset) -> None:
        _reextract(request, list(queryset.values_list("pk", flat=True)))

    @admin.action(description=_("Delete the remote copy only (the text stays)"), permissions=["act"])
    def release_remote_copy(self, request: HttpRequest, queryset) -> None:
        _release(request, list(queryset.values_list("pk", flat=True)))

    def get_urls(self):
        wrap = self.admin_site.admin_view
        return [
            path("moonshot-account/", wrap(self.account_view), name="documents_storedfile_account"),
            path(
                "moonshot-account/job/", wrap(self.account_job_view), name="documents_storedfile_account_job"
            ),
            path(
                "moonshot-account/sync/",
                wrap(self.account_sync_view),
                name="documents_storedfile_account_sync",
            ),
            path(
                "moonshot-account/delete-orphans/",
                wrap(self.account_delete_orphans_view),
                name="documents_storedfile_account_delete_orphans",
            ),
            *super().get_urls(),
        ]

    # The account page's views: staff only (admin_view), then the model's permissions.

    def _context(self, request: HttpRequest, **extra) -> dict:
        return {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": _("Moonshot account"),
            "can_act": _can_act(request),
            **extra,
        }

    def _require(self, request: HttpRequest, *, act: bool = False) -> None:
        if not self.has_view_permission(request) or (act and not _can_act(request)):
            raise PermissionDenied

    def account_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request)
        overview = account_overview()
        refreshing = False
        if _can_act(request):
            # A listing older than a minute (or none) is refreshed in the background; the page
            # polls the job and reloads when it is done. Never waits on Moonshot here.
            refreshing = services.account_refresh_if_stale(taken_at=overview.taken_at) is not None
        job = job_get()
        show = request.GET.get("show", "")
        rows = [(row, KIND_LABELS[row.kind]) for row in overview.rows if not show or row.kind == show]
        return render(
            request,
            ACCOUNT_TEMPLATE,
            self._context(
                request,
                overview=overview,
                rows=rows,
                show=show,
                job=job,
                refreshing=refreshing,
                kinds=[(kind, label, overview.counts[kind]) for kind, label in KIND_LABELS.items()],
            ),
        )

    def account_job_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request)
        job = job_get()
        response = render(request, f"{ACCOUNT_TEMPLATE}#job", self._context(request, job=job))
        if getattr(request, "htmx", False) and (job is None or not job.is_active):
            response["HX-Refresh"] = "true"  # finished: show the new listing
        return response

    def account_sync_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, act=True)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:documents_storedfile_account"))
        services.account_sync_start()
        messages.info(request, _("Synchronising with Moonshot…"))
        return HttpResponseRedirect(reverse("admin:documents_storedfile_account"))

    def account_delete_orphans_view(self, request: HttpRequest) -> HttpResponse:
        self._require(request, act=True)
        if request.method != "POST":
            return HttpResponseRedirect(reverse("admin:documents_storedfile_account"))
        overview = account_overview()
        orphans = set(overview.orphan_ids)
        if request.POST.get("all"):
            chosen = list(overview.orphan_ids)
        else:
            chosen = [rid for rid in request.POST.getlist("ids") if rid in orphans]
        if not chosen:
            messages.warning(request, _("No orphans were selected."))
            return HttpResponseRedirect(reverse("admin:documents_storedfile_account"))
        if request.POST.get("confirm") != "yes":
            rows = [row for row in overview.rows if row.remote_id in set(chosen)]
            return render(
                request,
                CONFIRM_TEMPLATE,
                self._context(
                    request,
                    title=_("Delete orphaned files?"),
                    rows=rows,
                    count=len(chosen),
                    total_bytes=sum(row.bytes for row in rows),
                ),
            )
        services.orphans_delete_start(remote_ids=chosen)
        messages.info(
            request,
            ngettext(
                "Deleting %(count)s orphaned file from Moonshot…",
                "Deleting %(count)s orphaned files from Moonshot…",
                len(chosen),
            )
            % {"count": len(chosen)},
        )
        return HttpResponseRedirect(reverse("admin:documents_storedfile_account"))


KIND_LABELS = {
    RemoteKind.ORPHAN: _("orphan"),
    RemoteKind.MISSING: _("missing"),
    RemoteKind.IN_FLIGHT: _("uploading"),
    RemoteKind.LINKED: _("linked"),
    RemoteKind.FOREIGN: _("not docqa's"),
}
