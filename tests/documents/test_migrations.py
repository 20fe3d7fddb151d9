"""0006 splits stored files that several users shared into one per owner, keeping every text."""

from __future__ import annotations

import hashlib
import uuid
from pathlib import Path

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

BEFORE = [("documents", "0005_waiting_for_room_from_notes")]
AFTER = [("documents", "0008_stored_file_unique_per_owner")]


def _migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_a_stored_file_two_users_shared_becomes_one_each(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    apps = _migrate(BEFORE)
    User = apps.get_model("auth", "User")
    StoredFile = apps.get_model("documents", "StoredFile")
    Document = apps.get_model("documents", "Document")
    alice = User.objects.create(username="alice")
    bob = User.objects.create(username="bob")
    digest = hashlib.sha256(b"shared").hexdigest()
    name = f"files/{digest[:2]}/{digest}.txt"
    (tmp_path / name).parent.mkdir(parents=True)
    (tmp_path / name).write_bytes(b"shared")
    shared = StoredFile.objects.create(
        sha256=digest,
        size=6,
        extension="txt",
        file=name,
        upload_token=uuid.uuid4(),
        status="ready",
        remote_id="remote-1",
        remote_uploaded_at=timezone.now(),
        content_raw='{"content": "shared"}',
        content_text="shared",
        token_count=9,
    )
    first = Document.objects.create(owner=alice, stored_file=shared, filename="a.txt")
    second = Document.objects.create(owner=bob, stored_file=shared, filename="b.txt")
    in_flight = StoredFile.objects.create(
        sha256="f" * 64,
        size=1,
        extension="pdf",
        file="files/ff/x.pdf",
        upload_token=uuid.uuid4(),
        status="extracting",
        remote_id="remote-2",
    )
    Document.objects.create(owner=alice, stored_file=in_flight, filename="c.pdf")
    Document.objects.create(owner=bob, stored_file=in_flight, filename="d.pdf")

    apps = _migrate(AFTER)
    StoredFile = apps.get_model("documents", "StoredFile")
    Document = apps.get_model("documents", "Document")
    mine = Document.objects.get(pk=first.pk).stored_file
    theirs = Document.objects.get(pk=second.pk).stored_file
    assert mine.pk == shared.pk and mine.owner_id == alice.pk and mine.remote_id == "remote-1"
    assert theirs.pk != mine.pk and theirs.owner_id == bob.pk
    # Bob's copy keeps the text but not the remote copy: the account still holds it once.
    assert theirs.status == "ready" and theirs.content_text == "shared" and theirs.remote_id == ""
    assert theirs.upload_token != mine.upload_token
    assert Path(tmp_path, theirs.file.name).read_bytes() == b"shared"
    assert StoredFile.objects.filter(remote_id="remote-1").count() == 1
    flights = StoredFile.objects.filter(sha256="f" * 64)
    assert sorted(flights.values_list("status", "remote_id")) == [("extracting", "remote-2"), ("queued", "")]

    _migrate(BEFORE)  # and back: one row per SHA-256 again, every document kept
    apps = _migrate(BEFORE)
    assert apps.get_model("documents", "StoredFile").objects.count() == 2
    assert apps.get_model("documents", "Document").objects.count() == 4
    _migrate(AFTER)
