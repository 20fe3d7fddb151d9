"""Bounds on extraction: zip bombs refused from the archive's directory, text capped, and
no server path in what a user reads.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

# Zip-based formats (.docx .xlsx .pptx .epub) are measured from their entries before a byte
# is inflated: a zip bomb (a few hundred KB that unpack to gigabytes) is refused, not read.
ZIP_MAX_UNPACKED_BYTES = 200_000_000
ZIP_MAX_RATIO = 100  # unpacked / packed, for archives that unpack to more than...
ZIP_RATIO_FLOOR_BYTES = 20_000_000  # ...this, so tiny, very compressible files still pass
ZIP_MAX_ENTRIES = 10_000
# Extracted text past this is cut (and said so): no model window holds more.
MAX_CONTENT_CHARS = 5_000_000
ZIP_KINDS = {
    ".docx": "Word (.docx)",
    ".xlsx": "Excel (.xlsx)",
    ".pptx": "PowerPoint (.pptx)",
    ".epub": "EPUB",
}
ZIP_EXTENSIONS = frozenset(ZIP_KINDS)
# Absolute paths, and the emulator's relative data paths, never reach a user.
_PATH = re.compile(r"(?<![\w./\\])(?:[A-Za-z]:[\\/]|/|(?:var|tmp)/)[^\s'\"()<>]*")


class ExtractionError(Exception):
    """The file could not be read; the message is shown to the user as `status_details`."""


def paths_hidden(text: str) -> str:
    """`text` with any file system path replaced by "the file"."""
    return _PATH.sub("the file", text)


def zip_bounds_check(path: Path, kind: str) -> None:
    """Refuse a zip container whose entries unpack to too much, judged from its directory."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, OSError):
        return  # not a zip at all: the reader says so in its own words
    if len(entries) > ZIP_MAX_ENTRIES:
        raise ExtractionError(f"file is not a plausible {kind} file: it holds {len(entries):,} parts")
    unpacked = sum(entry.file_size for entry in entries)
    packed = max(1, path.stat().st_size)
    if unpacked > ZIP_MAX_UNPACKED_BYTES or (
        unpacked > ZIP_RATIO_FLOOR_BYTES and unpacked > ZIP_MAX_RATIO * packed
    ):
        raise ExtractionError(
            f"file unpacks to too much: this {kind} file of {packed:,} bytes would expand to "
            f"{unpacked:,} bytes (at most {ZIP_MAX_UNPACKED_BYTES:,}, or {ZIP_MAX_RATIO}× its size); "
            "it looks like a zip bomb and was not read"
        )


def content_capped(content: str, details: str) -> tuple[str, str]:
    """Extracted text cut at `MAX_CONTENT_CHARS` (the same object when short enough), and its
    details with a word about the cut."""
    if len(content) <= MAX_CONTENT_CHARS:
        return content, details
    note = f"the text was cut at {MAX_CONTENT_CHARS:,} characters of {len(content):,}"
    return content[:MAX_CONTENT_CHARS], f"{details}; {note}" if details else note
