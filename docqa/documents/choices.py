"""Named choices the settings need before any app is loaded (no model import here)."""

from __future__ import annotations

from django.db.models import TextChoices
from django.utils.translation import gettext_lazy as _


class RetentionPolicy(TextChoices):
    """DOCQA_RETENTION: what happens to a remote copy once its text is stored."""

    KEEP = "keep", _("Keep remote copies")
    DELETE_AFTER_EXTRACT = "delete-after-extract", _("Delete remote copies after extraction")
    EVICT = "evict", _("Evict the least recently used when the account is nearly full")
