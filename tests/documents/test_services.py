import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from docqa.documents import services, transitions
from docqa.documents.models import Document, Status, StoredFile
from tests import factories


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("report.pdf", "report.pdf"),
        ("../../etc/passwd.txt", "passwd.txt"),
        ("C:\\Users\\x\\secret.docx", "secret.docx"),
        ("bad\x00na\x1bme\x7f.md", "badname.md"),
        ("<img src=x onerror=alert(1)>.html", "<img src=x onerror=alert(1)>.html"),
        ("  spaced   out .txt ", "spaced out .txt"),
    ],
)
def test_filename_clean(raw, expected):
    assert services.filename_clean(raw) == expected


def test_filename_clean_shortens_long_names_and_keeps_extension():
    cleaned = services.filename_clean("a" * 300 + ".pdf")
    assert len(cleaned) <= services.MAX_FILENAME_LENGTH
    assert cleaned.endswith("….pdf")


@pytest.mark.parametrize("raw", ["", "/", "../", "\x00\x01"])
def test_filename_clean_refuses_names_with_nothing_left(raw):
    with pytest.raises(services.UploadRejected):
        services.filename_clean(raw)


@pytest.mark.parametrize(
    ("name", "size", "reason"),
    [
        ("virus.exe", 10, ".exe files are not supported"),
        ("README", 10, "no file extension"),
        ("empty.txt", 0, "is empty"),
        ("huge.pdf", 100_000_000 + 1, "100 MB limit"),
    ],
)
def test_upload_validate_says_why(name, size, reason):
    with pytest.raises(services.UploadRejected, match=reason):
        services.upload_validate(filename=name, size=size)


@pytest.mark.parametrize("name", ["a.PDF", "b.docx", "c.py", "d.jpg", "e.tsx", "f.yml"])
def test_upload_validate_accepts_supported_formats(name):
    services.upload_validate(filename=name, size=1)


def _upload(owner, name="notes.txt", data=b"hello world"):
    uploaded = SimpleUploadedFile(name, data)
    return services.document_upload(
        owner=owner, uploaded_file=uploaded, sha256=hashlib.sha256(data).hexdigest()
    )


@pytest.mark.django_db
def test_same_bytes_are_shared_within_one_users_documents_only(
    user, other_user, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        first = _upload(user)
        again = _upload(user, name="renamed.txt")
        theirs = _upload(other_user, name="theirs.txt")
    assert first.created and not again.created and theirs.created
    assert again.document.pk == first.document.pk
    # Another user's identical upload has its own stored file (and remote copy): nothing in
    # the outcome says that someone else holds these bytes.
    assert theirs.document.stored_file_id != first.document.stored_file_id
    assert theirs.document.status == first.document.status == Status.QUEUED
    assert StoredFile.objects.count() == 2
    assert first.document.stored_file.file.name != theirs.document.stored_file.file.name
    assert len(callbacks) == 2


@pytest.mark.django_db
def test_a_ready_copy_elsewhere_does_not_make_an_upload_ready(user, other_user):
    factories.document_create(owner=other_user, sha256=hashlib.sha256(b"Door PIN: 4711").hexdigest())
    result = _upload(user, name="guess.txt", data=b"Door PIN: 4711")
    assert result.created and result.document.status == Status.QUEUED
    assert result.document.stored_file.owner == user


@pytest.mark.django_db
def test_the_same_bytes_in_another_format_are_another_stored_file(user, other_user):
    pdf_bytes = b"%PDF-1.3 not really"
    as_png = _upload(other_user, name="poison.png", data=pdf_bytes).document
    as_txt = _upload(user, name="mine.txt", data=pdf_bytes).document
    as_md = _upload(user, name="mine.md", data=pdf_bytes).document
    assert len({as_png.stored_file_id, as_txt.stored_file_id, as_md.stored_file_id}) == 3
    assert as_md.stored_file.extension == "md"


@pytest.mark.django_db
def test_sharing_across_users_is_an_opt_in(user, other_user, settings):
    settings.DOCQA_SHARE_FILES_ACROSS_USERS = True
    mine = _upload(user).document
    theirs = _upload(other_user, name="theirs.txt").document
    assert theirs.stored_file_id == mine.stored_file_id
    assert mine.stored_file.owner is None


@pytest.mark.django_db
def test_delete_keeps_stored_file_while_another_document_uses_it(user, other_user, settings):
    settings.DOCQA_SHARE_FILES_ACROSS_USERS = True
    mine = _upload(user).document
    theirs = _upload(other_user).document
    path = settings.MEDIA_ROOT / mine.stored_file.file.name
    assert path.exists()
    services.document_delete(document=mine)
    assert StoredFile.objects.filter(pk=theirs.stored_file_id).exists()
    services.document_delete(document=theirs)
    assert not StoredFile.objects.exists()
    assert not path.exists()


@pytest.mark.django_db
def test_deleting_one_users_copy_leaves_the_others_bytes(user, other_user, settings):
    mine = _upload(user).document
    theirs = _upload(other_user).document
    services.document_delete(document=mine)
    assert (settings.MEDIA_ROOT / theirs.stored_file.file.name).exists()


@pytest.mark.django_db
def test_transitions_only_move_from_the_expected_state(user):
    stored = _upload(user).document.stored_file
    assert not transitions.stored_file_transition(
        stored_file_id=stored.pk, from_statuses=(Status.EXTRACTING,), to_status=Status.READY
    )
    assert transitions.stored_file_fail(stored_file_id=stored.pk, message="x")
    assert not transitions.stored_file_fail(stored_file_id=stored.pk, message="again")
    stored.refresh_from_db()
    assert stored.status == Status.FAILED and stored.last_error == "x"
    assert Document.objects.get().status == Status.FAILED


@pytest.mark.django_db
def test_parking_for_room_is_a_state_that_any_move_ends(user):
    stored = _upload(user).document.stored_file
    transitions.stored_file_park_for_room(stored_file_id=stored.pk, message="Waiting for room: full")
    stored.refresh_from_db()
    since = stored.waiting_for_room_since
    assert since is not None and stored.status == Status.QUEUED and stored.last_error
    transitions.stored_file_park_for_room(stored_file_id=stored.pk, message="Waiting for room: still")
    stored.refresh_from_db()
    assert stored.waiting_for_room_since == since  # waiting since the first time
    assert transitions.stored_file_transition(
        stored_file_id=stored.pk, from_statuses=(Status.QUEUED,), to_status=Status.UPLOADING
    )
    stored.refresh_from_db()
    assert not stored.is_waiting_for_room


@pytest.mark.django_db
def test_documents_mark_used_touches_those_documents_and_their_files_only(
    user, other_user, django_assert_num_queries
):
    old = "2000-01-01T00:00:00Z"
    shared = factories.stored_file_create(last_used_at=old)
    mine = factories.document_create(owner=user, stored_file=shared, last_used_at=old)
    theirs = factories.document_create(owner=other_user, stored_file=shared, last_used_at=old)
    untouched = factories.document_create(owner=user, last_used_at=old)
    StoredFile.objects.filter(pk=untouched.stored_file_id).update(last_used_at=old)
    with django_assert_num_queries(2):  # one UPDATE per table, no row fetched
        services.documents_mark_used(document_ids=[mine.pk])
    used = {d.pk: d.last_used_at.year for d in Document.objects.all()}
    assert used[mine.pk] > 2000 and used[theirs.pk] == 2000 and used[untouched.pk] == 2000
    files = dict(StoredFile.objects.values_list("pk", "last_used_at__year"))
    assert files[shared.pk] > 2000 and files[untouched.stored_file_id] == 2000
