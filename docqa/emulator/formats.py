"""Which files the API accepts, by extension and purpose, and their media types."""

from __future__ import annotations

import mimetypes
from pathlib import PurePath

from docqa.emulator.errors import invalid_request

PURPOSES = ("file-extract", "image", "video", "batch")

IMAGE_EXTENSIONS = frozenset(
    [
        ".jpeg",
        ".jpg",
        ".png",
        ".bmp",
        ".gif",
        ".svg",
        ".svgz",
        ".webp",
        ".ico",
        ".xbm",
        ".dib",
        ".pjp",
        ".tif",
        ".pjpeg",
        ".avif",
        ".apng",
        ".tiff",
        ".jfif",
    ]
)
TEXT_EXTENSIONS = frozenset(
    [
        ".txt",
        ".md",
        ".csv",
        ".json",
        ".log",
        ".go",
        ".h",
        ".c",
        ".cpp",
        ".cxx",
        ".cc",
        ".cs",
        ".java",
        ".js",
        ".css",
        ".jsp",
        ".php",
        ".py",
        ".py3",
        ".asp",
        ".yaml",
        ".yml",
        ".ini",
        ".conf",
        ".ts",
        ".tsx",
    ]
)
HTML_EXTENSIONS = frozenset({".html", ".htm"})
LEGACY_EXTENSIONS = frozenset({".doc", ".dot", ".xls", ".ppt", ".mobi"})
# The list Moonshot documents for file-extract (it ends in "etc."; .jpg and .htm are the
# obvious spellings it leaves out).
EXTRACT_EXTENSIONS = (
    IMAGE_EXTENSIONS
    | TEXT_EXTENSIONS
    | HTML_EXTENSIONS
    | LEGACY_EXTENSIONS
    | {".pdf", ".docx", ".xlsx", ".pptx", ".epub"}
)
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".webm", ".avi", ".mkv", ".m4v"})
BATCH_EXTENSIONS = frozenset({".jsonl"})

ALLOWED_BY_PURPOSE = {
    "file-extract": EXTRACT_EXTENSIONS,
    "image": IMAGE_EXTENSIONS,
    "video": VIDEO_EXTENSIONS,
    "batch": BATCH_EXTENSIONS,
}

_MEDIA_TYPES = {
    ".md": "text/markdown",
    ".py3": "text/x-python",
    ".ts": "text/plain",
    ".tsx": "text/plain",
    ".conf": "text/plain",
    ".ini": "text/plain",
    ".log": "text/plain",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".jsonl": "application/jsonl",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
    ".mobi": "application/x-mobipocket-ebook",
    ".svgz": "image/svg+xml",
    ".avif": "image/avif",
    ".webp": "image/webp",
    ".apng": "image/apng",
    ".pjp": "image/jpeg",
    ".pjpeg": "image/jpeg",
    ".jfif": "image/jpeg",
    ".dib": "image/bmp",
}


def extension_of(filename: str) -> str:
    """The lowercased extension of a filename, with its dot ('' if none)."""
    return PurePath(filename).suffix.lower()


def media_type_of(filename: str) -> str:
    """The media type Moonshot reports as `file_type` for a file of this name."""
    extension = extension_of(filename)
    if extension in _MEDIA_TYPES:
        return _MEDIA_TYPES[extension]
    guessed, _ = mimetypes.guess_type("x" + extension)
    if guessed:
        return guessed
    return "text/plain" if extension in TEXT_EXTENSIONS else "application/octet-stream"


def upload_check(filename: str, purpose: str) -> None:
    """Raise the API's 400 if this purpose or this file type is not accepted."""
    if purpose not in PURPOSES:
        raise invalid_request(f"invalid purpose {purpose!r}: it must be one of {', '.join(PURPOSES)}")
    if not filename:
        raise invalid_request("the file part has no filename; the file type cannot be told")
    extension = extension_of(filename)
    allowed = ALLOWED_BY_PURPOSE[purpose]
    if extension not in allowed:
        shown = extension or "(no extension)"
        raise invalid_request(
            f"unsupported file type {shown} ({filename}) for purpose {purpose}; "
            f"supported types are {' '.join(sorted(allowed))}"
        )


__all__ = [
    "ALLOWED_BY_PURPOSE",
    "EXTRACT_EXTENSIONS",
    "IMAGE_EXTENSIONS",
    "PURPOSES",
    "extension_of",
    "media_type_of",
    "upload_check",
]
