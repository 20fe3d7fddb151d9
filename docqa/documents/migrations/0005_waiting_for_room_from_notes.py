"""Files the pipeline parked for room were recognised by their note; give them the field."""

from django.db import migrations

# How both of the pipeline's parking notes began (the note is stored JSON, so this matches).
WAITING_FOR_ROOM = "Waiting for room"


def forwards(apps, schema_editor):
    StoredFile = apps.get_model("documents", "StoredFile")
    parked = StoredFile.objects.filter(
        status="queued", remote_id="", waiting_for_room_since__isnull=True, last_error__contains=WAITING_FOR_ROOM
    )
    for pk, changed_at in parked.values_list("pk", "status_changed_at"):
        StoredFile.objects.filter(pk=pk).update(waiting_for_room_since=changed_at)


def backwards(apps, schema_editor):
    # The notes were never removed, so the old code still recognises these files.
    apps.get_model("documents", "StoredFile").objects.update(waiting_for_room_since=None)


class Migration(migrations.Migration):
    dependencies = [
        ("documents", "0004_storedfile_waiting_for_room_since"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
