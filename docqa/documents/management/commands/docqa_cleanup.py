"""`manage.py docqa_cleanup [--dry-run] [--policy P]`: apply the retention policy now."""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand

from docqa.documents.choices import RetentionPolicy
from docqa.documents.housekeeping.retention import retention_apply
from docqa.documents.templatetags.sizes import size_decimal


class Command(BaseCommand):
    help = (
        "Apply the retention policy (DOCQA_RETENTION) to the remote copies on Moonshot: only "
        "copies whose text is stored are deleted, so no document loses anything."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would be deleted; delete nothing."
        )
        parser.add_argument(
            "--policy", choices=RetentionPolicy.values, help="Use this policy instead of DOCQA_RETENTION."
        )

    def handle(self, *args, dry_run: bool = False, policy: str | None = None, **options):
        policy = RetentionPolicy(policy or settings.DOCQA_RETENTION)
        report = retention_apply(policy=policy, dry_run=dry_run)
        if report.skipped:
            self.stdout.write(
                self.style.WARNING("The retention policy is being applied elsewhere; nothing done.")
            )
            return
        verb = "would be deleted" if dry_run else "deleted"
        self.stdout.write(("Dry run: nothing was changed. " if dry_run else "") + f"Policy: {policy}.")
        if policy == RetentionPolicy.KEEP:
            self.stdout.write("Nothing to do: remote copies are kept.")
            return
        if policy == RetentionPolicy.EVICT:
            self.stdout.write(
                f"Account before: {report.files_before} files, {size_decimal(report.bytes_before)} "
                f"(high-water mark {settings.DOCQA_EVICT_HIGH_WATER} %, low {settings.DOCQA_EVICT_LOW_WATER} %)."
            )
        self.stdout.write(
            f"Remote copies {verb}: {report.released} ({size_decimal(report.released_bytes)}); their text stays."
        )
        if not dry_run:
            self.stdout.write(f"Uploads waiting for room resumed: {report.resumed}.")
