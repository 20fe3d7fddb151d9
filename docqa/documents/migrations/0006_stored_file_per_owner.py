"""Stored files get an owner (step 1 of 3: the column; 0007 splits shared rows, 0008 adds the
uniqueness). Three migrations, not one: PostgreSQL refuses to ALTER a table in the same
transaction that changed its rows ("pending trigger events")."""

from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
        ("documents", "0005_waiting_for_room_from_notes"),
    ]

    operations = [
        migrations.AddField(
            model_name="storedfile",
            name="owner",
            field=models.ForeignKey(
                blank=True,
                null=True,
                on_delete=models.deletion.CASCADE,
                related_name="stored_files",
                to=settings.AUTH_USER_MODEL,
                verbose_name="owner",
            ),
        ),
        migrations.AlterField(
            model_name="storedfile",
            name="sha256",
            field=models.CharField(db_index=True, max_length=64, verbose_name="SHA-256"),
        ),
    ]
