"""Each user's fair share of the one Moonshot account: files, bytes and uploads a minute.

One install shares one account (1,000 files, 10 GB); without a share per user, one person
uploading fast fills it and everyone else's uploads wait for room. Each limit is a setting,
0 turns it off, and each refusal names the limit it hit.
"""

from __future__ import annotations

from django.conf import settings
from django.db.models import Count, Q, Sum
from django.utils.translation import gettext as _

from docqa import keys
from docqa.documents.models import Document
from docqa.minute_counts import minute_count_add


class QuotaExceeded(Exception):
    """An upload over one of the user's limits, with the limit in plain words."""


def upload_rate_check(*, owner) -> None:
    """Count one upload attempt in this minute; refuse past DOCQA_USER_UPLOADS_PER_MINUTE.

    Every attempt counts, accepted or not, so no one can probe the install quickly.
    """
    limit = settings.DOCQA_USER_UPLOADS_PER_MINUTE
    if not limit:
        return
    if minute_count_add(lambda minute: keys.uploads_window(owner.pk, minute)) > limit:
        raise QuotaExceeded(
            _("You are uploading faster than %(limit)s files a minute. Please wait a moment and try again.")
            % {"limit": limit}
        )


def user_usage(*, owner) -> tuple[int, int]:
    """(documents, bytes) a user holds."""
    usage = Document.objects.filter(owner=owner).aggregate(n=Count("pk"), b=Sum("stored_file__size"))
    return usage["n"] or 0, usage["b"] or 0


def upload_room_check(*, owner, size: int, filename: str) -> None:
    """Refuse a new document past DOCQA_USER_MAX_FILES or DOCQA_USER_MAX_BYTES."""
    max_files, max_bytes = settings.DOCQA_USER_MAX_FILES, settings.DOCQA_USER_MAX_BYTES
    if not max_files and not max_bytes:
        return
    files, used = user_usage(owner=owner)
    if max_files and files >= max_files:
        raise QuotaExceeded(
            _(
                "“%(name)s” was not added: you already have %(limit)s documents, the most one user may keep. Delete some first."
            )
            % {"name": filename, "limit": max_files}
        )
    if max_bytes and used + size > max_bytes:
        raise QuotaExceeded(
            _(
                "“%(name)s” was not added: your documents would exceed %(limit)s MB, the most one user may keep. Delete some first."
            )
            % {"name": filename, "limit": max_bytes // 1_000_000}
        )


def usage_per_user(*, limit: int = 50) -> list[dict]:
    """Per user, largest first (for the admin's account page): documents, bytes, how many
    have a copy on Moonshot and how many wait for room."""
    return list(
        Document.objects.values("owner__username")
        .annotate(
            files=Count("pk"),
            bytes=Sum("stored_file__size"),
            on_moonshot=Count("pk", filter=~Q(stored_file__remote_id="")),
            waiting=Count("pk", filter=Q(stored_file__waiting_for_room_since__isnull=False)),
        )
        .order_by("-bytes", "owner__username")[:limit]
    )
