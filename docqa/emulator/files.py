"""`/v1/files`: upload (streamed to disk), list, retrieve, delete and extracted content."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from docqa.emulator.errors import RESOURCE_NOT_FOUND, ApiError, invalid_request
from docqa.emulator.extraction import extract
from docqa.emulator.faults import DONE_STATUSES
from docqa.emulator.formats import ALLOWED_BY_PURPOSE, extension_of, media_type_of, upload_check
from docqa.emulator.guard import ExtractionError, paths_hidden
from docqa.emulator.state import EmulatorState
from docqa.emulator.store import ERROR_STATUS, MB, PENDING_STATUS, FileRecord

logger = logging.getLogger("docqa.emulator")

# Room for the multipart boundaries, part headers and the purpose field around the file.
MULTIPART_ALLOWANCE = 64 * 1024
_MAX_FIELD_BYTES = 64 * 1024
# A stuck reader fails its file after this long instead of leaving it in progress forever.
EXTRACTION_TIMEOUT = 120.0
_ANY_ALLOWED = frozenset().union(*ALLOWED_BY_PURPOSE.values())


def _state(request: Request) -> EmulatorState:
    return request.app.state.emulator


def _too_large(limit: int) -> ApiError:
    return invalid_request(
        f"file too large: a file may be at most {limit // MB} MB; split it or compress it and upload again"
    )


@dataclass
class _Upload:
    """What the multipart stream carried."""

    temp_path: Path
    filename: str | None = None
    size: int = 0
    fields: dict[str, str] = field(default_factory=dict)


async def _upload_receive(request: Request, temp_path: Path, max_bytes: int) -> _Upload:
    """Stream the multipart body, writing the `file` part straight into `temp_path`.

    Only the current network chunk is in memory. An unsupported file type or an oversized
    file is refused as soon as it shows, without reading the rest of the body.
    """
    content_type, params = parse_options_header(request.headers.get("content-type", ""))
    boundary = params.get(b"boundary")
    if content_type != b"multipart/form-data" or not boundary:
        raise invalid_request(
            "the upload must be multipart/form-data with a `file` part and a `purpose` field"
        )

    upload = _Upload(temp_path=temp_path)
    part: dict = {}
    header_name = bytearray()
    header_value = bytearray()

    def on_part_begin() -> None:
        part.clear()
        part.update(headers={}, data=bytearray(), is_file=False, name="")

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_name.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    def on_header_end() -> None:
        part["headers"][bytes(header_name).lower()] = bytes(header_value)
        header_name.clear()
        header_value.clear()

    def on_headers_finished() -> None:
        _, options = parse_options_header(part["headers"].get(b"content-disposition", b""))
        part["name"] = _decode(options.get(b"name", b""))
        if part["name"] == "file" and b"filename" in options:
            if upload.filename is not None:
                raise invalid_request("send one `file` part per upload")
            filename = _decode(options[b"filename"]).replace("\\", "/").rsplit("/", 1)[-1]
            upload.filename = filename
            part["is_file"] = True
            if filename and extension_of(filename) not in _ANY_ALLOWED:
                shown = extension_of(filename) or "(no extension)"
                raise invalid_request(
                    f"unsupported file type {shown} ({filename}); supported types are "
                    f"{' '.join(sorted(ALLOWED_BY_PURPOSE['file-extract']))}"
                )

    def on_part_data(data: bytes, start: int, end: int) -> None:
        if part["is_file"]:
            upload.size += end - start
            if upload.size > max_bytes:
                raise _too_large(max_bytes)
            # A local disk write of one network chunk lands in the page cache in microseconds;
            # handing it to a thread would cost more than it saves.
            handle.write(data[start:end])
        else:
            part["data"].extend(data[start:end])
            if len(part["data"]) > _MAX_FIELD_BYTES:
                raise invalid_request(f"form field {part['name']!r} is too long")

    def on_part_end() -> None:
        if not part["is_file"] and part["name"]:
            upload.fields[part["name"]] = _decode(bytes(part["data"]))

    parser = MultipartParser(
        boundary,
        {
            "on_part_begin": on_part_begin,
            "on_header_field": on_header_field,
            "on_header_value": on_header_value,
            "on_header_end": on_header_end,
            "on_headers_finished": on_headers_finished,
            "on_part_data": on_part_data,
            "on_part_end": on_part_end,
        },
    )
    with temp_path.open("wb") as handle:
        try:
            async for chunk in request.stream():
                parser.write(chunk)
            parser.finalize()
        except (ApiError, ClientDisconnect):
            raise
        except Exception as exc:
            raise invalid_request(f"the multipart body could not be parsed: {exc}") from exc
    return upload


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def files_upload(request: Request) -> Response:
    """POST /v1/files: store the file and start extracting it in the background."""
    state = _state(request)
    limits = state.store.limits
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            declared_bytes = int(declared)
        except ValueError:
            raise invalid_request("the Content-Length header is not a number") from None
        # Refused before a byte of the body is read: the client learns at once.
        if declared_bytes > limits.max_file_bytes + MULTIPART_ALLOWANCE:
            raise _too_large(limits.max_file_bytes)
        # The file is at least the body less the multipart framing: enough to refuse early.
        state.store.room_check(max(0, declared_bytes - MULTIPART_ALLOWANCE))
    else:
        state.store.room_check(0)

    temp_path = state.store.temp_path_new()
    try:
        upload = await _upload_receive(request, temp_path, limits.max_file_bytes)
        if upload.filename is None:
            raise invalid_request("the upload has no `file` part")
        purpose = upload.fields.get("purpose")
        if not purpose:
            raise invalid_request("the upload has no `purpose` field; use purpose=file-extract")
        upload_check(upload.filename, purpose)
        if upload.size == 0:
            raise invalid_request(f"the file {upload.filename} is empty; there is nothing to upload")
        extracting = purpose == "file-extract"
        pending_status, done_status = request.scope.get("state", {}).get("file_status", (None, None))
        record = state.store.add(
            temp_path=temp_path,
            filename=upload.filename,
            purpose=purpose,
            size=upload.size,
            file_type=media_type_of(upload.filename),
            status=(pending_status or PENDING_STATUS) if extracting else (done_status or "ok"),
        )
    finally:
        temp_path.unlink(missing_ok=True)  # already moved into place when all went well
    logger.info("file %s uploaded: %s, %d bytes", record.id, record.filename, record.bytes)
    if extracting:
        forced_error = request.scope.get("state", {}).get("extract_error")
        extraction_schedule(state, record, forced_error=forced_error, done_status=done_status or "ok")
    return JSONResponse(record.as_json())


def extraction_schedule(
    state: EmulatorState, record: FileRecord, *, forced_error: str | None = None, done_status: str = "ok"
) -> None:
    """Extract a file's text in the background; its status moves to `done_status` or `error`."""
    task = asyncio.get_running_loop().create_task(_extraction_run(state, record, forced_error, done_status))
    state.tasks.add(task)
    task.add_done_callback(state.tasks.discard)


async def _extraction_run(
    state: EmulatorState, record: FileRecord, forced_error: str | None, done_status: str
) -> None:
    await asyncio.sleep(state.knobs.extract_delay)
    if forced_error is not None:
        state.store.result_set(record.id, status="error", status_details=forced_error, content=None)
        return
    path = state.store.blob_path(record.id)
    loop = asyncio.get_running_loop()
    try:
        # The worker thread cannot be stopped, but the file is failed in time; the readers'
        # own size caps (see extraction.py) keep what it still does bounded.
        result = await asyncio.wait_for(
            loop.run_in_executor(state.executor, extract, path, record.filename), EXTRACTION_TIMEOUT
        )
    except ExtractionError as exc:
        logger.info("file %s could not be extracted: %s", record.id, exc)
        state.store.result_set(record.id, status="error", status_details=str(exc), content=None)
        return
    except FileNotFoundError:
        return  # deleted while waiting: nothing left to report on
    except TimeoutError:
        details = f"extraction took longer than {EXTRACTION_TIMEOUT:g} seconds and was given up"
        state.store.result_set(record.id, status="error", status_details=details, content=None)
        return
    except Exception as exc:
        logger.exception("extraction of file %s failed unexpectedly", record.id)
        details = f"the file could not be read ({type(exc).__name__}: {paths_hidden(str(exc))})"
        state.store.result_set(record.id, status="error", status_details=details, content=None)
        return
    state.store.result_set(
        record.id,
        status=done_status,
        status_details=result.details,
        content=result.content,
        title=result.title,
    )


def _record_or_404(state: EmulatorState, file_id: str) -> FileRecord:
    record = state.store.get(file_id)
    if record is None:
        raise ApiError(404, RESOURCE_NOT_FOUND, f"file {file_id} not found")
    return record


async def files_list(request: Request) -> Response:
    """GET /v1/files."""
    records = _state(request).store.list()
    return JSONResponse({"object": "list", "data": [record.as_json() for record in records]})


async def files_retrieve(request: Request) -> Response:
    """GET /v1/files/{id}."""
    record = _record_or_404(_state(request), request.path_params["id"])
    return JSONResponse(record.as_json())


async def files_delete(request: Request) -> Response:
    """DELETE /v1/files/{id}."""
    file_id = request.path_params["id"]
    if request.scope.get("state", {}).get("not_deleted"):
        _record_or_404(_state(request), file_id)
        logger.info("file %s not deleted (injected fault)", file_id)
        return JSONResponse({"id": file_id, "object": "file", "deleted": False})
    if not _state(request).store.delete(file_id):
        raise ApiError(404, RESOURCE_NOT_FOUND, f"file {file_id} not found")
    logger.info("file %s deleted", file_id)
    return JSONResponse({"id": file_id, "object": "file", "deleted": True})


async def files_content(request: Request) -> Response:
    """GET /v1/files/{id}/content: Moonshot's JSON string of the extracted text, as text/plain."""
    state = _state(request)
    record = _record_or_404(state, request.path_params["id"])
    if record.purpose != "file-extract":
        raise invalid_request(
            f"file {record.id} was uploaded with purpose {record.purpose}; "
            "only file-extract files have extracted content"
        )
    if record.status == ERROR_STATUS:
        raise invalid_request(f"file {record.id} could not be extracted: {record.status_details}")
    if record.status not in DONE_STATUSES:
        raise invalid_request(
            f"file {record.id} is still being processed (status: {record.status}); "
            "retry when its status is ok"
        )
    if record.fake:
        content = f"[offline mode: {record.filename} is a filler record with no bytes, made for tests]"
    else:
        content = state.store.content(record.id) or ""
    body = {
        "content": content,
        "file_type": record.file_type,
        "filename": record.filename,
        "title": record.title,
        "type": "file",
    }
    return Response(json.dumps(body, ensure_ascii=False), media_type="text/plain")
