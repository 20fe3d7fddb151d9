"""The account page keeps its listing fresh and true to what its own buttons did (issue 14,
item 12): a stale listing is refreshed in the background when the page opens, copies the
page's actions removed leave the listing at once, and two users' same names are told apart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from docqa.connections import moonshot_client
from docqa.documents.housekeeping.jobs import JobKind, JobState, job_get
from docqa.documents.housekeeping.reconcile import remote_files_reconcile
from docqa.documents.housekeeping.snapshot import snapshot_record
from tests import factories
from tests.documents.housekeeping.helpers import docqa_name

pytestmark = pytest.mark.django_db

ACCOUNT = "admin:documents_storedfile_account"


def _listing_taken(ago: timedelta) -> None:
    """Record the account's listing as if a sync had taken it `ago`."""
    client = moonshot_client()
    snapshot_record(remote=client.files_list(), balance=None, taken_at=timezone.now() - ago)


def _rows(html: str) -> str:
    return html.split('id="result_list"', 1)[1].split("</table>", 1)[0]


def test_a_fresh_listing_is_shown_as_it_is(client, staff, emu, django_capture_on_commit_callbacks):
    emu.control.fake_files(count=1, bytes_each=10, filename=docqa_name())
    remote_files_reconcile()
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        html = client.get(reverse(ACCOUNT)).content.decode()
    assert job_get() is None and not callbacks
    assert 'id="moonshot-refreshing"' not in html


def test_a_listing_older_than_a_minute_is_refreshed_once_in_the_background(
    client, staff, emu, django_capture_on_commit_callbacks
):
    emu.control.fake_files(count=1, bytes_each=10, filename=docqa_name())
    _listing_taken(timedelta(seconds=90))
    client.force_login(staff)
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        html = client.get(reverse(ACCOUNT)).content.decode()
    job = job_get()
    assert job is not None and job.kind == JobKind.SYNC and job.state == JobState.QUEUED
    assert len(callbacks) == 1  # the sync task, enqueued once the request commits
    assert 'id="moonshot-refreshing"' in html and "more than a minute old" in html
    assert 'hx-trigger="every 1s"' in html  # the job area polls; it reloads the page when done
    # A reload (or another admin) while it runs, or just after it failed, starts no other.
    for _ in range(2):
        with django_capture_on_commit_callbacks(execute=False) as callbacks:
            client.get(reverse(ACCOUNT))
        assert not callbacks and job_get().id == job.id


def test_copies_the_page_removed_leave_the_listing_at_once(
    client, staff, user, emu, settings, django_capture_on_commit_callbacks
):
    settings.DOCQA_ORPHAN_GRACE = 3600  # recent orphans: only an admin deletes them
    (stored,) = factories.linked_stored_files(emu, 1)
    document = factories.document_create(owner=user, stored_file=stored, filename="report.pdf")
    released = stored.remote_id
    doomed, kept = emu.control.fake_files(count=2, bytes_each=10, filename=docqa_name())
    remote_files_reconcile()
    client.force_login(staff)
    assert released in _rows(client.get(reverse(ACCOUNT)).content.decode())

    # Release the copy (an admin action): Moonshot's delete is left to the queue, not run here.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:documents_document_changelist"),
            {"action": "release_remote_copy", "_selected_action": [document.pk]},
        )
    assert released in {item.id for item in moonshot_client().files_list()}  # still there
    rows = _rows(client.get(reverse(ACCOUNT)).content.decode())
    assert released not in rows  # not shown as an orphan with a checkbox meanwhile

    # Delete an orphan: gone from the listing before the task has run.
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("admin:documents_storedfile_account_delete_orphans"), {"ids": [doomed], "confirm": "yes"}
        )
    html = client.get(reverse(ACCOUNT)).content.decode()
    rows = _rows(html)
    assert doomed not in rows and kept in rows
    assert f'value="{doomed}"' not in html
    # The confirmation page, read from the same listing, no longer offers it either.
    html = client.post(reverse("admin:documents_storedfile_account_delete_orphans"), {"all": "1"}).content
    assert doomed not in html.decode() and kept in html.decode()


def test_same_names_show_their_owners(client, staff, make_user, emu):
    alice, bob = make_user("alice"), make_user("bob")
    first, second = factories.linked_stored_files(emu, 2)
    factories.document_create(owner=alice, stored_file=first, filename="report.pdf")
    factories.document_create(owner=bob, stored_file=second, filename="report.pdf")
    remote_files_reconcile()
    client.force_login(staff)
    rows = _rows(client.get(reverse(ACCOUNT)).content.decode())
    for stored, owner in ((first, "alice"), (second, "bob")):
        row = rows.split(f'data-remote-id="{stored.remote_id}"', 1)[1].split("</tr>", 1)[0]
        assert "report.pdf" in row and f'<span class="moonshot-owner">({owner})</span>' in row
