"""The upload formats Moonshot's file-extract service accepts (from its upload docs)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# extension -> the kind shown to people
SUPPORTED_FORMATS: dict[str, str] = {
    **dict.fromkeys(["pdf"], _("PDF")),
    **dict.fromkeys(["doc", "docx", "dot"], _("Word")),
    **dict.fromkeys(["xls", "xlsx", "csv"], _("Spreadsheet")),
    **dict.fromkeys(["ppt", "pptx"], _("Presentation")),
    **dict.fromkeys(["txt", "md", "log", "json", "yaml", "yml", "ini", "conf"], _("Text")),
    **dict.fromkeys(["html", "epub", "mobi"], _("Book or web page")),
    **dict.fromkeys(
        [
            "jpeg",
            "png",
            "bmp",
            "gif",
            "svg",
            "svgz",
            "webp",
            "ico",
            "xbm",
            "dib",
            "pjp",
            "tif",
            "pjpeg",
            "avif",
            "apng",
            "tiff",
            "jfif",
        ],
        _("Image"),
    ),
    **dict.fromkeys(
        [
            "go",
            "h",
            "c",
            "cpp",
            "cxx",
            "cc",
            "cs",
            "java",
            "js",
            "css",
            "jsp",
            "php",
            "py",
            "py3",
            "asp",
            "ts",
            "tsx",
        ],
        _("Code"),
    ),
}
# .jpg is the commonest spelling of .jpeg; Moonshot reads it like any JPEG.
SUPPORTED_FORMATS["jpg"] = SUPPORTED_FORMATS["jpeg"]


def file_extension(filename: str) -> str:
    """The lower-case extension without its dot, or "" when there is none."""
    stem, dot, ext = filename.rpartition(".")
    return ext.lower() if dot and stem else ""


def format_supported(filename: str) -> bool:
    return file_extension(filename) in SUPPORTED_FORMATS


def format_label(filename: str) -> str:
    return str(SUPPORTED_FORMATS.get(file_extension(filename), file_extension(filename).upper()))


def accept_attribute() -> str:
    """The file input's accept= value, so the picker offers only what Moonshot reads."""
    return ",".join(f".{ext}" for ext in sorted(SUPPORTED_FORMATS))
