"""Reading an upload without reading more than the limit allows.

The request's Content-Length is checked before the body is parsed; a body sent without one
(chunked) or lying about it is counted while it is read, and reading stops at the limit. What
is read goes to a temporary file, never wholly into memory.
"""

from __future__ import annotations

from django.core.files.uploadhandler import FileUploadHandler, StopUpload, TemporaryFileUploadHandler

# Room in a multipart body for its boundaries and part headers besides the file itself.
MULTIPART_OVERHEAD = 64 * 1024


class LimitedUploadHandler(FileUploadHandler):
    """Counts the bytes of the files in a multipart body; stops the parse once over ``limit``.

    It passes every chunk on to the next handler (a temporary file) and keeps none itself.
    """

    def __init__(self, request, *, limit: int) -> None:
        super().__init__(request)
        self.limit = limit
        self.received = 0
        self.exceeded = False

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            self.exceeded = True
            # connection_reset: the rest of the body is not read (nor stored) at all.
            raise StopUpload(connection_reset=True)
        return raw_data

    def file_complete(self, file_size):
        return None  # the temporary file handler makes the file


def limit_uploads(request, *, limit: int) -> LimitedUploadHandler:
    """Install the limiting handlers on a Django request before its body is read; returns the counter."""
    handler = LimitedUploadHandler(request, limit=limit)
    request.upload_handlers = [handler, TemporaryFileUploadHandler(request)]
    return handler


def declared_length(request) -> int | None:
    """The request's Content-Length, when it gives a usable one."""
    try:
        value = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return None
    return value if value >= 0 else None
