"""Stored files belong to one owner: a row shared by several users is split, one per user.

Before, identical bytes shared one stored file (and remote copy) across users, which let a user
learn that someone else held given bytes and let the first uploader's format decide everyone's
extraction. Each shared row stays with the owner of its oldest document; every other owner gets
a copy of the row with its own local file and no remote copy. A Ready copy keeps its text (as a
released file does), a file still in flight starts again from the queue (the stale sweep picks
it up), a failed one stays failed. The remote copy is still counted once.
"""

import shutil
import uuid
from pathlib import Path

from django.conf import settings
from django.db import migrations, models
from django.db.models import Min

TRANSIENT = ("queued", "uploading", "extracting")


def _path(sha256: str, token: uuid.UUID, extension: str) -> str:
    return f"files/{sha256[:2]}/{sha256}-{token.hex[:12]}.{extension}"


def _copy_bytes(old_name: str, new_name: str) -> None:
    source = Path(settings.MEDIA_ROOT, old_name)
    if source.is_file():
        target = Path(settings.MEDIA_ROOT, new_name)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)


def split_per_owner(apps, schema_editor):
    StoredFile = apps.get_model("documents", "StoredFile")
    Document = apps.get_model("documents", "Document")
    for stored in StoredFile.objects.filter(owner__isnull=True).iterator():
        owners = list(
            Document.objects.filter(stored_file=stored)
            .values("owner_id")
            .annotate(first=Min("created_at"))
            .order_by("first", "owner_id")
            .values_list("owner_id", flat=True)
        )
        if not owners:
            continue  # no document: an unowned leftover, as shared rows are
        StoredFile.objects.filter(pk=stored.pk).update(owner_id=owners[0])
        for owner_id in owners[1:]:
            token = uuid.uuid4()
            name = _path(stored.sha256, token, stored.extension)
            _copy_bytes(stored.file.name, name)
            copy = StoredFile.objects.create(
                owner_id=owner_id,
                sha256=stored.sha256,
                size=stored.size,
                extension=stored.extension,
                file=name,
                upload_token=token,
                status="queued" if stored.status in TRANSIENT else stored.status,
                status_changed_at=stored.status_changed_at,
                last_error="" if stored.status in TRANSIENT else stored.last_error,
                attempts=0,
                remote_id="",
                content_raw=stored.content_raw,
                content_text=stored.content_text,
                file_type=stored.file_type,
                token_count=stored.token_count,
                last_used_at=stored.last_used_at,
            )
            Document.objects.filter(stored_file=stored, owner_id=owner_id).update(stored_file=copy)


def merge_back(apps, schema_editor):
    """Back to one row per SHA-256: each group's oldest row is kept, the copies go."""
    StoredFile = apps.get_model("documents", "StoredFile")
    Document = apps.get_model("documents", "Document")
    kept: dict[str, int] = {}
    for stored in StoredFile.objects.order_by("pk").iterator():
        keep = kept.setdefault(stored.sha256, stored.pk)
        if keep == stored.pk:
            continue
        for document in Document.objects.filter(stored_file=stored):
            if Document.objects.filter(stored_file_id=keep, owner_id=document.owner_id).exists():
                document.delete()
            else:
                Document.objects.filter(pk=document.pk).update(stored_file_id=keep)
        Path(settings.MEDIA_ROOT, stored.file.name).unlink(missing_ok=True)
        stored.delete()
    StoredFile.objects.update(owner=None)


class Migration(migrations.Migration):
    dependencies = [("documents", "0006_stored_file_per_owner")]

    operations = [migrations.RunPython(split_per_owner, merge_back)]
