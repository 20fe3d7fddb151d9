"""An upload handler that hashes and size-checks a file while it streams to disk."""

from __future__ import annotations

import hashlib

from django.conf import settings
from django.core.files.uploadhandler import StopUpload, TemporaryFileUploadHandler

MAX_EXTENSION_CHARS = 20


class HashingUploadHandler(TemporaryFileUploadHandler):
    """Writes each file to a temporary file, hashing it on the way (constant memory).

    A file over the limit stops the upload at the chunk that crosses it, so nothing more of
    the body is read; the view then explains the limit.
    """

    def __init__(self, request=None):
        super().__init__(request)
        self.too_large: list[str] = []

    def new_file(self, field_name, file_name, *args, **kwargs):
        # The temporary file's name ends with the upload's extension: a 250-character one
        # would fail the OS (ENAMETOOLONG). Such a name is refused by validation anyway.
        stem, dot, extension = file_name.rpartition(".")
        if dot and len(extension) > MAX_EXTENSION_CHARS:
            file_name = f"{stem[:100]}.{extension[:MAX_EXTENSION_CHARS]}"
        super().new_file(field_name, file_name, *args, **kwargs)
        self._sha256 = hashlib.sha256()
        self._received = 0

    def receive_data_chunk(self, raw_data, start):
        self._received += len(raw_data)
        if self._received > settings.DOCQA_MAX_UPLOAD_BYTES:
            self.too_large.append(self.file_name)
            self.file.close()
            # Under ASGI the body already sits in a spooled file: just stop parsing.
            raise StopUpload(connection_reset=True)
        self._sha256.update(raw_data)
        return super().receive_data_chunk(raw_data, start)

    def file_complete(self, file_size):
        uploaded = super().file_complete(file_size)
        if uploaded is not None:
            uploaded.sha256 = self._sha256.hexdigest()
        return uploaded
