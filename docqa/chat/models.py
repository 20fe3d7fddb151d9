from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from docqa.notes import note_display


class Thinking(models.TextChoices):
    """A conversation's thinking switch (only sent to models that accept it)."""

    DEFAULT = "", _("Model default")
    ENABLED = "enabled", _("On")
    DISABLED = "disabled", _("Off")


class Conversation(models.Model):
    """A user's questions and Kimi's answers about an ordered set of their documents.

    The system prompt is fixed when the conversation starts, so the prompt prefix (system
    prompt, then the documents in order) stays byte-identical across turns and Moonshot's
    prefix cache can hit, even if the user switches language or the setting changes.
    """

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="conversations",
        verbose_name=_("owner"),
    )
    title = models.CharField(max_length=200, verbose_name=_("title"))
    # False once the user renames it; until then the first question becomes the title.
    title_is_auto = models.BooleanField(default=True, verbose_name=_("automatic title"))
    documents = models.ManyToManyField(
        "documents.Document",
        through="ConversationDocument",
        related_name="conversations",
        verbose_name=_("documents"),
    )
    model = models.CharField(max_length=100, verbose_name=_("model"))
    # Names of documents deleted while in this conversation (the page says they were removed).
    removed_documents = models.JSONField(default=list, blank=True, verbose_name=_("removed documents"))
    # For models that can switch thinking (kimi-k2.5, kimi-k2.6): `thinking: {"type": ...}`
    # is sent as this says; unset means the model's own default (enabled).
    thinking = models.CharField(
        max_length=10,
        blank=True,
        default=Thinking.DEFAULT,
        choices=Thinking.choices,
        verbose_name=_("thinking"),
    )
    system_prompt = models.TextField(verbose_name=_("system prompt"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created"))
    updated_at = models.DateTimeField(auto_now=True, db_index=True, verbose_name=_("updated"))

    class Meta:
        ordering = ["-updated_at", "-id"]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")

    def __str__(self) -> str:
        return self.title

    def get_absolute_url(self) -> str:
        return reverse("chat:detail", args=[self.pk])

    def ordered_documents(self, *, with_text: bool = False):
        """The documents in their order; their extracted text (megabytes each) only when asked for."""
        documents = self.documents.select_related("stored_file").order_by("conversationdocument__position")
        documents = documents.defer("stored_file__content_text")
        return documents if with_text else documents.defer("stored_file__content_raw")


class ConversationDocument(models.Model):
    """A document in a conversation, at a fixed position (the order sent to Moonshot)."""

    conversation = models.ForeignKey(Conversation, on_delete=models.CASCADE, verbose_name=_("conversation"))
    # Deleting a document takes it out of its conversations; later answers no longer see it.
    document = models.ForeignKey("documents.Document", on_delete=models.CASCADE, verbose_name=_("document"))
    position = models.PositiveSmallIntegerField(verbose_name=_("position"))

    class Meta:
        verbose_name = _("conversation document")
        verbose_name_plural = _("conversation documents")
        ordering = ["position"]
        constraints = [
            models.UniqueConstraint(fields=["conversation", "document"], name="conversation_document_unique"),
            models.UniqueConstraint(fields=["conversation", "position"], name="conversation_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.conversation_id}:{self.position}:{self.document_id}"


class Role(models.TextChoices):
    USER = "user", _("Question")
    ASSISTANT = "assistant", _("Answer")


class State(models.TextChoices):
    STREAMING = "streaming", _("Writing…")
    COMPLETE = "complete", _("Complete")
    STOPPED = "stopped", _("Stopped")
    FAILED = "failed", _("Failed")
    INTERRUPTED = "interrupted", _("Interrupted")


class FinishReason(models.TextChoices):
    """Why an answer ended: Moonshot's `finish_reason`, or docqa's own `stopped`."""

    STOP = "stop", _("Finished")
    LENGTH = "length", _("Cut at the length limit")
    CONTENT_FILTER = "content_filter", _("Stopped by the content filter")
    TOOL_CALLS = "tool_calls", _("Tool calls")
    STOPPED = "stopped", _("Stopped by the user")


class Message(models.Model):
    """A question (role user) or an answer (role assistant, linked to its question).

    An answer moves only forward: `streaming` → `complete` | `stopped` | `failed` |
    `interrupted`, each time by a conditional update, so a re-run task cannot undo it.
    """

    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
    )
    role = models.CharField(max_length=10, choices=Role.choices, verbose_name=_("role"))
    question = models.ForeignKey(
        "self",
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="answers",
        limit_choices_to={"role": Role.USER},
        verbose_name=_("question"),
    )
    content = models.TextField(blank=True, verbose_name=_("content"))
    reasoning = models.TextField(blank=True, verbose_name=_("reasoning"))
    state = models.CharField(
        max_length=12,
        choices=State.choices,
        default=State.COMPLETE,
        db_index=True,
        verbose_name=_("state"),
    )
    error = models.TextField(blank=True, help_text=_("A stored note (docqa.notes)."), verbose_name=_("error"))
    model = models.CharField(max_length=100, blank=True, verbose_name=_("model"))
    max_completion_tokens = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("max completion tokens")
    )
    prompt_tokens = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("prompt tokens"))
    completion_tokens = models.PositiveIntegerField(
        null=True, blank=True, verbose_name=_("completion tokens")
    )
    # Moonshot's prefix cache: how many of the prompt tokens it reported as cached.
    cached_tokens = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("cached tokens"))
    finish_reason = models.CharField(max_length=30, blank=True, verbose_name=_("finish reason"))
    dropped_turns = models.PositiveIntegerField(default=0, verbose_name=_("dropped turns"))
    # The answer's citations checked against its documents' texts once it ended
    # (`docqa.chat.citations.Citation.to_dict()` each); None until then, or for answers
    # that ended before citations were checked.
    citations = models.JSONField(null=True, blank=True, verbose_name=_("citations"))
    # The Redis Stream id of the last delta already in `content`/`reasoning`.
    stream_cursor = models.CharField(max_length=40, blank=True, verbose_name=_("stream cursor"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created"))
    started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("started"))
    first_token_at = models.DateTimeField(null=True, blank=True, verbose_name=_("first token"))
    heartbeat_at = models.DateTimeField(null=True, blank=True, verbose_name=_("heartbeat"))
    finished_at = models.DateTimeField(null=True, blank=True, verbose_name=_("finished"))

    class Meta:
        ordering = ["id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        indexes = [models.Index(fields=["state", "heartbeat_at"], name="chat_message_state_beat")]

    def __str__(self) -> str:
        return f"{self.get_role_display()} {self.pk}"

    @property
    def is_streaming(self) -> bool:
        return self.state == State.STREAMING

    @property
    def is_cut_at_length(self) -> bool:
        """Complete, but Moonshot stopped it at the completion budget: it can be continued."""
        return self.state == State.COMPLETE and self.finish_reason == FinishReason.LENGTH

    @property
    def budget_went_on_thinking(self) -> bool:
        """Cut at the budget with reasoning but no text: the budget went on thinking."""
        return self.is_cut_at_length and bool(self.reasoning) and not self.content.strip()

    @property
    def is_content_filtered(self) -> bool:
        return self.finish_reason == FinishReason.CONTENT_FILTER

    @property
    def error_display(self) -> str:
        return note_display(self.error)

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None
