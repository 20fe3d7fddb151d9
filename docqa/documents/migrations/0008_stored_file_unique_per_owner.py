"""Stored files are unique per owner (or once, when shared across users): step 3 of 3."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("documents", "0007_stored_file_split_per_owner")]

    operations = [
        migrations.AddConstraint(
            model_name="storedfile",
            constraint=models.UniqueConstraint(
                condition=models.Q(owner__isnull=False),
                fields=("owner", "sha256", "extension"),
                name="stored_file_unique_per_owner",
            ),
        ),
        migrations.AddConstraint(
            model_name="storedfile",
            constraint=models.UniqueConstraint(
                condition=models.Q(owner__isnull=True),
                fields=("sha256", "extension"),
                name="stored_file_unique_shared",
            ),
        ),
    ]
