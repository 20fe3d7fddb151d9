from django.contrib import admin

from docqa.chat.models import Conversation, ConversationDocument, Message


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


class ConversationDocumentInline(ReadOnlyInline):
    model = ConversationDocument
    fields = ("position", "document")
    readonly_fields = fields


class MessageInline(ReadOnlyInline):
    model = Message
    fk_name = "conversation"
    fields = (
        "role",
        "state",
        "model",
        "prompt_tokens",
        "completion_tokens",
        "finish_reason",
        "dropped_turns",
        "created_at",
        "started_at",
        "finished_at",
        "error",
        "content",
    )
    # Read-only by declaration too: a viewer's formset would otherwise ask for a form field
    # for `created_at`, which is not editable (FieldError).
    readonly_fields = fields
    ordering = ("id",)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    """Read-only: conversations belong to their users; staff may look, not change."""

    list_display = ("title", "owner", "model", "created_at", "updated_at")
    list_filter = ("model",)
    search_fields = ("title", "owner__username")
    readonly_fields = (
        "owner",
        "title",
        "title_is_auto",
        "model",
        "system_prompt",
        "created_at",
        "updated_at",
    )
    fields = readonly_fields
    inlines = (ConversationDocumentInline, MessageInline)

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
