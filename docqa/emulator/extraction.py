"""Local text extraction: what Moonshot's file-extract does, done offline with small libraries.

Each reader returns the text a model would be given. Files that cannot be read (encrypted,
corrupt, a legacy format with no readable text) raise `ExtractionError` with a sentence a
user can act on; the upload then ends in status `error` with that sentence as its details.
Images get an honest note instead of OCR, which the emulator does not do.
"""

from __future__ import annotations

import posixpath
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

from docqa.emulator.formats import (
    HTML_EXTENSIONS,
    IMAGE_EXTENSIONS,
    LEGACY_EXTENSIONS,
    TEXT_EXTENSIONS,
    extension_of,
    media_type_of,
)
from docqa.emulator.guard import (
    ZIP_EXTENSIONS,
    ZIP_KINDS,
    ExtractionError,
    content_capped,
    paths_hidden,
    zip_bounds_check,
)
from docqa.emulator.text import html_to_text, text_decode

# A zip or OLE container that is not what its .docx/.xlsx/.pptx name says is most often a
# password-protected Office file: Office wraps encrypted OOXML in an OLE compound file.
_OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
# Legacy binaries are scanned for printable runs; cap the scan so a huge file stays cheap.
_LEGACY_SCAN_BYTES = 64 * 1024 * 1024
_LEGACY_MIN_CHARS = 20


@dataclass(frozen=True)
class Extraction:
    """What extraction produced."""

    content: str
    file_type: str
    title: str = ""
    # A warning worth showing even though extraction succeeded (e.g. best-effort text).
    details: str = ""


def extract(path: Path, filename: str) -> Extraction:
    """Extract the text of the file at `path`, whose original name is `filename`.

    The text is cut at `MAX_CONTENT_CHARS`, with a word about it in `details`.
    """
    extraction = _extract(path, filename)
    content, details = content_capped(extraction.content, extraction.details)
    if content is extraction.content:
        return extraction
    return Extraction(content, extraction.file_type, title=extraction.title, details=details)


def _extract(path: Path, filename: str) -> Extraction:
    extension = extension_of(filename)
    if extension in ZIP_EXTENSIONS:
        zip_bounds_check(path, ZIP_KINDS[extension])
    file_type = media_type_of(filename)
    if extension in TEXT_EXTENSIONS or extension == ".jsonl":
        text, details = text_decode(path.read_bytes())
        return Extraction(text, file_type, details=details)
    if extension in HTML_EXTENSIONS:
        raw, details = text_decode(path.read_bytes())
        text, title = html_to_text(raw)
        return Extraction(text, file_type, title=title, details=details)
    if extension == ".pdf":
        return _pdf(path, filename, file_type)
    if extension == ".docx":
        return _docx(path, file_type)
    if extension == ".xlsx":
        return _xlsx(path, file_type)
    if extension == ".pptx":
        return _pptx(path, file_type)
    if extension == ".epub":
        return _epub(path, file_type)
    if extension in LEGACY_EXTENSIONS:
        return _legacy(path, extension, file_type)
    if extension in IMAGE_EXTENSIONS:
        return _image(path, filename, extension, file_type)
    raise ExtractionError(f"the emulator has no reader for {extension or 'files without an extension'}")


# -- office documents and PDF --------------------------------------------------------------


def _pdf(path: Path, filename: str, file_type: str) -> Extraction:
    from pypdf import PdfReader

    try:
        reader = PdfReader(path)
        if reader.is_encrypted:
            try:
                opened = reader.decrypt("")
            except Exception:  # e.g. AES needs a crypto library: still a locked file to us
                opened = 0
            if not opened:
                raise ExtractionError(
                    "file is encrypted: the PDF needs a password to open, so its text cannot be read"
                )
        pages = [page.extract_text() or "" for page in reader.pages]
        title = ""
        if reader.metadata and reader.metadata.title:
            title = str(reader.metadata.title)
    except ExtractionError:
        raise
    except Exception as exc:
        raise ExtractionError(
            f"file is damaged or not a PDF: it could not be opened ({_short(exc)})"
        ) from exc
    text = "\n\n".join(page.strip() for page in pages if page.strip())
    if not text:
        note = (
            f"[offline mode: {filename} has {len(pages)} page(s) but no text layer; "
            "scanned pages need OCR, which the emulator does not do]"
        )
        return Extraction(note, file_type, title=title, details="no text layer; OCR is not available offline")
    return Extraction(text, file_type, title=title)


def _office_open_error(path: Path, kind: str, exc: Exception) -> ExtractionError:
    with path.open("rb") as handle:
        head = handle.read(8)
    if head == _OLE_MAGIC:
        return ExtractionError(
            f"file is encrypted (a password-protected {kind} document) or an old binary Office "
            "file renamed; it cannot be opened"
        )
    return ExtractionError(
        f"file is damaged or is not a valid {kind} file: it could not be opened ({_short(exc)})"
    )


def _docx(path: Path, file_type: str) -> Extraction:
    import docx

    try:
        document = docx.Document(str(path))
    except Exception as exc:
        raise _office_open_error(path, "Word (.docx)", exc) from exc
    blocks: list[str] = []
    for block in document.iter_inner_content():
        if hasattr(block, "rows"):
            blocks.append(_table_text([[cell.text for cell in row.cells] for row in block.rows]))
        elif block.text.strip():
            blocks.append(block.text)
    return Extraction(
        "\n\n".join(b for b in blocks if b), file_type, title=document.core_properties.title or ""
    )


def _xlsx(path: Path, file_type: str) -> Extraction:
    import openpyxl

    # A file object, not the path: openpyxl refuses paths without an .xlsx suffix.
    with path.open("rb") as handle:
        try:
            workbook = openpyxl.load_workbook(handle, read_only=True, data_only=True)
        except Exception as exc:
            raise _office_open_error(path, "Excel (.xlsx)", exc) from exc
        try:
            sheets = []
            for sheet in workbook.worksheets:
                rows = []
                for row in sheet.iter_rows(values_only=True):
                    cells = ["" if value is None else str(value) for value in row]
                    if any(cells):
                        rows.append("\t".join(cells).rstrip("\t"))
                sheets.append(f"## {sheet.title}\n" + "\n".join(rows))
            title = workbook.properties.title or ""
        finally:
            workbook.close()
    return Extraction("\n\n".join(sheets), file_type, title=title)


def _pptx(path: Path, file_type: str) -> Extraction:
    import pptx

    try:
        presentation = pptx.Presentation(str(path))
    except Exception as exc:
        raise _office_open_error(path, "PowerPoint (.pptx)", exc) from exc
    slides = []
    for number, slide in enumerate(presentation.slides, start=1):
        texts = list(_shape_texts(slide.shapes))
        if slide.has_notes_slide:
            notes = (
                slide.notes_slide.notes_text_frame.text.strip() if slide.notes_slide.notes_text_frame else ""
            )
            if notes:
                texts.append(f"Notes: {notes}")
        slides.append(f"## Slide {number}\n" + "\n".join(texts))
    return Extraction("\n\n".join(slides), file_type, title=presentation.core_properties.title or "")


def _shape_texts(shapes) -> list[str]:
    texts = []
    for shape in shapes:
        if getattr(shape, "shape_type", None) == 6:  # MSO_SHAPE_TYPE.GROUP
            texts.extend(_shape_texts(shape.shapes))
        elif getattr(shape, "has_table", False) and shape.has_table:
            texts.append(_table_text([[cell.text for cell in row.cells] for row in shape.table.rows]))
        elif (
            getattr(shape, "has_text_frame", False) and shape.has_text_frame and shape.text_frame.text.strip()
        ):
            texts.append(shape.text_frame.text)
    return texts


def _table_text(rows: list[list[str]]) -> str:
    return "\n".join(" | ".join(cell.strip() for cell in row) for row in rows if any(c.strip() for c in row))


# -- e-books and legacy binaries -----------------------------------------------------------


def _epub(path: Path, file_type: str) -> Extraction:
    try:
        with zipfile.ZipFile(path) as book:
            documents = _epub_reading_order(book)
            texts = []
            for name in documents:
                raw, _ = text_decode(book.read(name))
                text, _ = html_to_text(raw)
                if text:
                    texts.append(text)
    except (zipfile.BadZipFile, KeyError, ElementTree.ParseError, OSError) as exc:
        raise ExtractionError(
            f"file is damaged or not an EPUB book: it could not be opened ({_short(exc)})"
        ) from exc
    if not texts:
        raise ExtractionError("the EPUB book holds no readable text (it may be DRM-protected)")
    return Extraction("\n\n".join(texts), file_type)


def _epub_reading_order(book: zipfile.ZipFile) -> list[str]:
    """The book's XHTML documents in spine order, or sorted by name if the OPF is unusable."""
    names = set(book.namelist())
    try:
        container = ElementTree.fromstring(book.read("META-INF/container.xml"))
        rootfile = next(el for el in container.iter() if el.tag.endswith("rootfile"))
        opf_path = rootfile.attrib["full-path"]
        opf = ElementTree.fromstring(book.read(opf_path))
        base = posixpath.dirname(opf_path)
        manifest = {
            el.attrib["id"]: posixpath.normpath(posixpath.join(base, el.attrib["href"]))
            for el in opf.iter()
            if el.tag.endswith("item") and "id" in el.attrib and "href" in el.attrib
        }
        spine = [manifest[el.attrib["idref"]] for el in opf.iter() if el.tag.endswith("itemref")]
        ordered = [name for name in spine if name in names]
        if ordered:
            return ordered
    except (KeyError, StopIteration, ElementTree.ParseError):
        pass
    return sorted(n for n in names if n.lower().endswith((".xhtml", ".html", ".htm")))


_ASCII_RUN = re.compile(rb"[\x20-\x7e\t]{5,}")
# UTF-16LE text (how Word, Excel and PowerPoint store most strings): ASCII or CJK code units.
_UTF16_RUN = re.compile(rb"(?:[\x20-\x7e]\x00|[\x00-\xff][\x4e-\x9f]){4,}")


def _legacy(path: Path, extension: str, file_type: str) -> Extraction:
    with path.open("rb") as handle:
        data = handle.read(_LEGACY_SCAN_BYTES)
    found: list[tuple[int, str]] = []
    for match in _ASCII_RUN.finditer(data):
        found.append((match.start(), match.group().decode("ascii").strip()))
    for match in _UTF16_RUN.finditer(data):
        found.append((match.start(), match.group().decode("utf-16-le", errors="ignore").strip()))
    lines: list[str] = []
    for _, text in sorted(found):
        if text and (not lines or lines[-1] != text):
            lines.append(text)
    content = "\n".join(lines)
    if len(content) < _LEGACY_MIN_CHARS:
        raise ExtractionError(
            f"{extension} is a legacy binary format the emulator cannot read, and no readable text "
            "was found in it; save it in a modern format (.docx, .xlsx, .pptx, .pdf) and upload again"
        )
    return Extraction(
        content,
        file_type,
        details=(
            f"best effort: printable strings from a legacy binary {extension} file; "
            "formatting is lost and some text may be missing or garbled"
        ),
    )


# -- images --------------------------------------------------------------------------------


def _image(path: Path, filename: str, extension: str, file_type: str) -> Extraction:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            width, height = image.size
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        if extension in {".svg", ".svgz", ".avif", ".xbm"}:
            # Vector images (and formats this Pillow build may lack) are not a sign of damage.
            note = f"[offline mode: image {filename}; no OCR or image understanding offline]"
            return Extraction(note, file_type)
        raise ExtractionError(
            f"file is damaged or not an image: it could not be opened ({_short(exc)})"
        ) from exc
    note = f"[offline mode: image {filename}, {width}×{height}; no OCR offline]"
    return Extraction(note, file_type)


def _short(exc: Exception) -> str:
    text = paths_hidden(str(exc).strip()) or type(exc).__name__
    return text if len(text) <= 160 else text[:157] + "..."
