"""`manage.py docqa_sync [--dry-run]`: reconcile the Moonshot account with the database."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from docqa.documents.housekeeping.reconcile import remote_files_reconcile
from docqa.documents.templatetags.sizes import size_decimal
from docqa.moonshot import MoonshotError
from docqa.notes import note_display
from docqa.upstream import upstream_error_note


class Command(BaseCommand):
    help = (
        "List the Moonshot account, mark stored files whose remote copy is missing and delete "
        "orphaned remote files older than DOCQA_ORPHAN_GRACE. Safe to run from cron."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--dry-run", action="store_true", help="Report what would change; change nothing."
        )

    def handle(self, *args, dry_run: bool = False, **options):
        try:
            report = remote_files_reconcile(dry_run=dry_run)
        except MoonshotError as exc:
            raise CommandError(note_display(upstream_error_note(exc))) from None
        if report.skipped:
            self.stdout.write(self.style.WARNING("Another reconciliation is running; nothing done."))
            return
        rows = [
            ("remote files", f"{report.remote_files} ({size_decimal(report.remote_bytes)})"),
            ("linked", report.linked),
            ("uploading", report.in_flight),
            ("not docqa's", report.foreign),
            ("orphans", report.orphans),
            ("  younger than the grace period", report.orphans_young),
        ]
        if dry_run:
            rows += [
                ("  would be deleted", report.orphans - report.orphans_young),
                ("missing copies to mark", report.missing_marked),
            ]
        else:
            rows += [
                ("  deleted", report.orphans_deleted),
                ("  failed (retried next run)", report.orphans_failed),
                ("missing copies marked", report.missing_marked),
            ]
        width = max(len(label) for label, _value in rows)
        self.stdout.write("Dry run: nothing was changed." if dry_run else "Reconciled.")
        for label, value in rows:
            self.stdout.write(f"{label.ljust(width)}  {value}")
        if report.orphans_failed:
            self.stdout.write(
                self.style.WARNING(f"{report.orphans_failed} deletes failed; the next run retries them.")
            )
