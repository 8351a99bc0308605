"""Sending a stored file to a client who may see it, with headers that keep a browser from
running it: its detected type, ``nosniff``, a sandboxing CSP, a download for anything but an
image, and private caching only. With an S3-compatible store, a redirect to a short-lived
presigned URL of the store itself, which carries the type, the disposition and the caching
(``response-*`` parameters) but not ``nosniff`` nor the CSP: S3 has no parameter for them, so the
proxy in front of the store must add them."""

from __future__ import annotations

import functools
import os

from django.conf import settings
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header

from streams.errors import NOT_FOUND, ChatError

from . import images
from .models import Attachment
from .selectors import NOT_FOUND_DETAIL, THUMBNAIL

# A file is data, never a page: no script, no plugin, no form, no framing, even if a browser
# were made to render it as HTML.
FILE_CSP = "default-src 'none'; img-src 'self' data:; media-src 'self'; style-src 'unsafe-inline'; sandbox"
CACHE_CONTROL = "private, max-age=300"
PRESIGNED_TTL_S = 300  # the store's own URL: followed at once, so short


def attachment_response(attachment: Attachment, *, variant: str) -> HttpResponse:
    """The file (or the thumbnail) of an attachment the caller was found allowed to see."""
    thumbnail = variant == THUMBNAIL
    name = attachment.thumbnail if thumbnail else attachment.file
    if not name:
        raise ChatError(NOT_FOUND, "This attachment has no thumbnail: it is not an image.")
    content_type = images.THUMBNAIL_TYPE if thumbnail else attachment.content_type
    filename = attachment.name
    if thumbnail:
        filename = f"{os.path.splitext(attachment.name)[0]}-thumbnail{images.THUMBNAIL_EXT}"
    # Images are shown in the page; anything else is downloaded, never rendered by the browser.
    disposition = content_disposition_header(attachment.kind != Attachment.Kind.IMAGE, filename)
    if not hasattr(default_storage, "bucket_name"):  # a local folder: sent from here
        try:
            handle = default_storage.open(name, "rb")
        except FileNotFoundError:
            raise ChatError(NOT_FOUND, NOT_FOUND_DETAIL) from None
        response: HttpResponse = FileResponse(handle, content_type=content_type)
        response["Content-Disposition"] = disposition
    else:
        url = _presigner().url(
            name,
            parameters={
                "ResponseContentType": content_type,
                "ResponseContentDisposition": disposition,
                "ResponseCacheControl": CACHE_CONTROL,
            },
            expire=PRESIGNED_TTL_S,
        )
        response = HttpResponseRedirect(url)
    response["X-Content-Type-Options"] = "nosniff"
    response["Content-Security-Policy"] = FILE_CSP
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["Cache-Control"] = CACHE_CONTROL
    response["Vary"] = "Authorization, Cookie"
    return response


def _presigner():
    """The storage that signs URLs: the default one, or the same bucket at the address clients
    reach (S3_PUBLIC_ENDPOINT_URL) when the servers reach it at another. Signing needs no request."""
    public = settings.S3_PUBLIC_ENDPOINT_URL
    if not public:
        return default_storage
    return _public_storage(public, repr(sorted(settings.STORAGES["default"].get("OPTIONS", {}).items())))


@functools.lru_cache(maxsize=4)
def _public_storage(endpoint_url: str, options_key: str):
    from storages.backends.s3 import S3Storage

    return S3Storage(**{**settings.STORAGES["default"].get("OPTIONS", {}), "endpoint_url": endpoint_url})
