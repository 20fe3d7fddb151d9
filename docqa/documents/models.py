from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from docqa.documents.formats import format_label
from docqa.notes import note_display


class Status(models.TextChoices):
    QUEUED = "queued", _("Queued")
    UPLOADING = "uploading", _("Uploading")
    EXTRACTING = "extracting", _("Extracting")
    READY = "ready", _("Ready")
    FAILED = "failed", _("Failed")


TRANSIENT_STATUSES = (Status.QUEUED, Status.UPLOADING, Status.EXTRACTING)


def stored_file_path(instance: StoredFile, filename: str) -> str:
    # The upload token makes the path unique: the same bytes may be stored once per owner.
    return (
        f"files/{instance.sha256[:2]}/{instance.sha256}-{instance.upload_token.hex[:12]}.{instance.extension}"
    )


class StoredFile(models.Model):
    """One set of bytes in one format, kept once locally and once on Moonshot per owner.

    A user's identical uploads share a row (same SHA-256 and extension). Other users never
    share it: a shared row would tell a user that someone else holds these bytes, and the
    first uploader's format would decide everyone's extraction. An install whose users trust
    each other may share across users (DOCQA_SHARE_FILES_ACROSS_USERS): its rows have no
    owner. Extraction state lives here because it belongs to the remote copy.
    """

    # Null: shared by every user who uploads these bytes (the opt-in setting).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="stored_files",
        verbose_name=_("owner"),
    )
    sha256 = models.CharField(max_length=64, db_index=True, verbose_name=_("SHA-256"))
    size = models.BigIntegerField(verbose_name=_("size (bytes)"))
    extension = models.CharField(max_length=10, verbose_name=_("extension"))
    file = models.FileField(upload_to=stored_file_path, max_length=255, verbose_name=_("file"))
    # Part of the remote file name, so a retry after a crash can find an upload that landed.
    upload_token = models.UUIDField(
        default=uuid.uuid4, unique=True, editable=False, verbose_name=_("upload token")
    )

    status = models.CharField(
        max_length=12,
        choices=Status.choices,
        default=Status.QUEUED,
        db_index=True,
        verbose_name=_("status"),
    )
    status_changed_at = models.DateTimeField(
        default=timezone.now, db_index=True, verbose_name=_("status changed")
    )
    last_error = models.TextField(blank=True, verbose_name=_("last error"))
    attempts = models.PositiveIntegerField(default=0, verbose_name=_("attempts"))

    remote_id = models.CharField(max_length=64, blank=True, db_index=True, verbose_name=_("remote id"))
    remote_uploaded_at = models.DateTimeField(null=True, blank=True, verbose_name=_("uploaded to Moonshot"))
    upload_started_at = models.DateTimeField(null=True, blank=True, verbose_name=_("upload started"))
    # Set when reconciliation found the remote copy gone without docqa deleting it; the
    # extracted text stays, and a re-extraction uploads the local file again.
    remote_missing_at = models.DateTimeField(
        null=True, blank=True, verbose_name=_("missing on Moonshot since")
    )
    # Set while the pipeline holds the file back because the account is full (its reason is
    # in `last_error`); any move to another state clears it. Making room resumes these files.
    waiting_for_room_since = models.DateTimeField(
        null=True, blank=True, db_index=True, verbose_name=_("waiting for room since")
    )

    content_raw = models.TextField(
        blank=True,
        help_text=_("Exactly as Moonshot returned it."),
        verbose_name=_("extracted content (raw)"),
    )
    content_text = models.TextField(blank=True, verbose_name=_("extracted text"))
    file_type = models.CharField(max_length=100, blank=True, verbose_name=_("file type"))
    token_count = models.PositiveIntegerField(null=True, blank=True, verbose_name=_("tokens"))

    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("created"))
    last_used_at = models.DateTimeField(default=timezone.now, verbose_name=_("last used"))

    class Meta:
        verbose_name = _("stored file")
        verbose_name_plural = _("stored files")
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "sha256", "extension"],
                condition=models.Q(owner__isnull=False),
                name="stored_file_unique_per_owner",
            ),
            models.UniqueConstraint(
                fields=["sha256", "extension"],
                condition=models.Q(owner__isnull=True),
                name="stored_file_unique_shared",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.sha256[:12]}.{self.extension}"

    @property
    def is_waiting_for_room(self) -> bool:
        return self.waiting_for_room_since is not None

    @property
    def error_display(self) -> str:
        return note_display(self.last_error)

    @property
    def remote_filename(self) -> str:
        # A neutral name: the remote copy (and its extracted JSON, which reaches the chat)
        # is shared by every user who uploads these bytes, so no one's file name goes in it.
        return f"docqa-{self.upload_token.hex}.{self.extension}"


class Document(models.Model):
    """A user's upload: their name for a stored file."""

    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="documents",
        verbose_name=_("owner"),
    )
    stored_file = models.ForeignKey(
        StoredFile,
        on_delete=models.PROTECT,
        related_name="documents",
        verbose_name=_("stored file"),
    )
    filename = models.CharField(max_length=255, verbose_name=_("file name"))
    created_at = models.DateTimeField(auto_now_add=True, verbose_name=_("uploaded"))
    last_used_at = models.DateTimeField(default=timezone.now, verbose_name=_("last used"))

    class Meta:
        verbose_name = _("document")
        verbose_name_plural = _("documents")
        ordering = ["-created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "stored_file"], name="document_unique_per_owner"),
        ]

    def __str__(self) -> str:
        return self.filename

    def get_absolute_url(self) -> str:
        return reverse("documents:detail", args=[self.pk])

    @property
    def status(self) -> str:
        return self.stored_file.status

    @property
    def is_ready(self) -> bool:
        return self.stored_file.status == Status.READY

    @property
    def is_transient(self) -> bool:
        return self.stored_file.status in TRANSIENT_STATUSES

    def get_status_display(self) -> str:
        return self.stored_file.get_status_display()

    @property
    def format_label(self) -> str:
        return format_label(self.filename)
