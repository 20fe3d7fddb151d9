"""File metadata in SQLite and file bytes on disk, inside the emulator's `data_dir`.

A restarted emulator finds its files again. One connection guarded by a lock serves every
thread (request handlers on the event loop, extraction workers); each call is short.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import string
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from docqa.emulator.errors import invalid_request

# Moonshot states its limits in decimal units: 100 MB = 100,000,000 bytes, 10 GB = 10**10.
MB = 1000 * 1000
GB = 1000 * MB

# The in-progress status of a file being extracted; seed 004 shows no such value, only
# `ready` (its example), and seeds 001/002 `ok` and `error`.
PENDING_STATUS = "processing"
ERROR_STATUS = "error"

_ID_ALPHABET = string.ascii_lowercase + string.digits

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    status TEXT NOT NULL,
    status_details TEXT NOT NULL DEFAULT '',
    file_type TEXT NOT NULL DEFAULT 'application/octet-stream',
    title TEXT NOT NULL DEFAULT '',
    fake INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS contents (
    id TEXT PRIMARY KEY REFERENCES files(id) ON DELETE CASCADE,
    content TEXT NOT NULL
);
"""


@dataclass(frozen=True)
class AccountLimits:
    """Moonshot's documented per-account limits."""

    max_files: int = 1000
    max_file_bytes: int = 100 * MB
    max_total_bytes: int = 10 * GB


@dataclass(frozen=True)
class FileRecord:
    """One uploaded (or fake) file's metadata."""

    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    status: str
    status_details: str
    file_type: str
    title: str
    fake: bool

    def as_json(self) -> dict:
        """The `FileObject` of the API."""
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": self.status,
            "status_details": self.status_details,
        }


def file_id_new() -> str:
    """A Moonshot-looking file id: `cq` and 18 more lowercase letters or digits."""
    return "cq" + "".join(secrets.choice(_ID_ALPHABET) for _ in range(18))


class FileStore:
    """The account's files: rows in `emulator.sqlite3`, bytes in `files/<id>`."""

    def __init__(self, data_dir: Path, limits: AccountLimits | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.limits = limits or AccountLimits()
        self.blob_dir = self.data_dir / "files"
        self.tmp_dir = self.data_dir / "tmp"
        self.blob_dir.mkdir(parents=True, exist_ok=True)
        self.tmp_dir.mkdir(parents=True, exist_ok=True)
        # Half-received uploads of a previous run are garbage.
        for leftover in self.tmp_dir.iterdir():
            leftover.unlink(missing_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(
            self.data_dir / "emulator.sqlite3", check_same_thread=False, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database connection."""
        with self._lock:
            self._db.close()

    # -- reading -------------------------------------------------------------------------

    def get(self, file_id: str) -> FileRecord | None:
        """Return the file with this id, or None."""
        with self._lock:
            row = self._db.execute("SELECT * FROM files WHERE id = ?", (file_id,)).fetchone()
        return _record(row) if row else None

    def list(self) -> list[FileRecord]:
        """Every file, oldest first."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM files ORDER BY created_at, rowid").fetchall()
        return [_record(row) for row in rows]

    def content(self, file_id: str) -> str | None:
        """The extracted text of a file, or None if there is none (yet)."""
        with self._lock:
            row = self._db.execute("SELECT content FROM contents WHERE id = ?", (file_id,)).fetchone()
        return row["content"] if row else None

    def totals(self) -> tuple[int, int]:
        """(number of files, their bytes), fake ones included."""
        with self._lock:
            return self._totals_locked()

    def processing_ids(self) -> list[str]:
        """Ids of files whose extraction has not finished, e.g. after a restart."""
        with self._lock:
            rows = self._db.execute(
                "SELECT id FROM files WHERE status NOT IN ('ok', 'ready', 'error')"
            ).fetchall()
        return [row["id"] for row in rows]

    def blob_path(self, file_id: str) -> Path:
        """Where a file's bytes live."""
        return self.blob_dir / file_id

    # -- writing -------------------------------------------------------------------------

    def temp_path_new(self) -> Path:
        """A fresh temporary path inside `data_dir`, so finished uploads move by rename."""
        handle, name = tempfile.mkstemp(dir=self.tmp_dir, prefix="upload-")
        os.close(handle)
        return Path(name)

    def room_check(self, incoming_bytes: int = 0) -> None:
        """Raise the API's error if the account cannot take a file of this size."""
        with self._lock:
            self._room_check_locked(incoming_bytes)

    def add(
        self,
        *,
        temp_path: Path,
        filename: str,
        purpose: str,
        size: int,
        file_type: str,
        status: str,
    ) -> FileRecord:
        """Check the account limits, record the file and move its bytes into place."""
        with self._lock:
            self._room_check_locked(size)
            record = self._insert_locked(
                filename=filename,
                purpose=purpose,
                size=size,
                file_type=file_type,
                status=status,
                fake=False,
            )
            os.replace(temp_path, self.blob_path(record.id))
        return record

    def add_fake(self, *, count: int, bytes_each: int, filename: str) -> list[str]:
        """Record `count` files that have no bytes on disk, to fill the account in tests.

        They count toward the limits like real files; adding them is not itself limited,
        so a test can push the account to any state it needs.
        """
        ids = []
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for _ in range(count):
                    record = self._insert_locked(
                        filename=filename,
                        purpose="file-extract",
                        size=bytes_each,
                        file_type="application/octet-stream",
                        status="ok",
                        fake=True,
                    )
                    ids.append(record.id)
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids

    def result_set(
        self, file_id: str, *, status: str, status_details: str, content: str | None, title: str = ""
    ) -> bool:
        """Record how extraction ended; False if the file was deleted meanwhile."""
        with self._lock:
            cursor = self._db.execute(
                "UPDATE files SET status = ?, status_details = ?, title = ? WHERE id = ?",
                (status, status_details, title, file_id),
            )
            if cursor.rowcount == 0:
                return False
            if content is not None:
                self._db.execute(
                    "INSERT OR REPLACE INTO contents (id, content) VALUES (?, ?)", (file_id, content)
                )
        return True

    def delete(self, file_id: str) -> bool:
        """Forget a file and remove its bytes; False if there was no such file."""
        with self._lock:
            cursor = self._db.execute("DELETE FROM files WHERE id = ?", (file_id,))
        self.blob_path(file_id).unlink(missing_ok=True)
        return cursor.rowcount > 0

    def reset(self) -> None:
        """Forget every file."""
        with self._lock:
            self._db.execute("DELETE FROM contents")
            self._db.execute("DELETE FROM files")
        for blob in self.blob_dir.iterdir():
            blob.unlink(missing_ok=True)

    # -- internals -----------------------------------------------------------------------

    def _totals_locked(self) -> tuple[int, int]:
        row = self._db.execute("SELECT COUNT(*) AS n, COALESCE(SUM(bytes), 0) AS b FROM files").fetchone()
        return int(row["n"]), int(row["b"])

    def _room_check_locked(self, incoming_bytes: int) -> None:
        count, used = self._totals_locked()
        limits = self.limits
        # No seed gives the API's wording for a full account; this one deliberately shares no
        # words with what docqa once matched ("1000", "10 GB", "limit exceeded", "storage"...),
        # so docqa has to tell a full account from its state, not from a sentence.
        if count >= limits.max_files:
            raise invalid_request(
                "file quota reached: the account already holds as many files as it may; "
                "delete files you no longer need and try again"
            )
        if used + incoming_bytes > limits.max_total_bytes:
            raise invalid_request(
                "space quota reached: the account's files would take more space than it is "
                "allowed; delete files you no longer need and try again"
            )

    def _insert_locked(
        self, *, filename: str, purpose: str, size: int, file_type: str, status: str, fake: bool
    ) -> FileRecord:
        created_at = int(time.time())
        while True:
            file_id = file_id_new()
            try:
                self._db.execute(
                    "INSERT INTO files (id, filename, purpose, bytes, created_at, status, file_type, fake)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (file_id, filename, purpose, size, created_at, status, file_type, int(fake)),
                )
            except sqlite3.IntegrityError:
                continue  # an id collision: astronomically rare, just draw again
            break
        return FileRecord(
            id=file_id,
            filename=filename,
            purpose=purpose,
            bytes=size,
            created_at=created_at,
            status=status,
            status_details="",
            file_type=file_type,
            title="",
            fake=fake,
        )


def _record(row: sqlite3.Row) -> FileRecord:
    return FileRecord(
        id=row["id"],
        filename=row["filename"],
        purpose=row["purpose"],
        bytes=row["bytes"],
        created_at=row["created_at"],
        status=row["status"],
        status_details=row["status_details"],
        file_type=row["file_type"],
        title=row["title"],
        fake=bool(row["fake"]),
    )


__all__ = ["AccountLimits", "FileRecord", "FileStore", "file_id_new"]
