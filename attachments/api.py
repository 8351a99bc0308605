"""REST endpoints of the attachments app: upload to a room, read one, fetch its file. Thin."""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from rooms.api import ROOM_ID
from streams.errors import INVALID, NOT_FOUND, TOO_LARGE, ChatError
from streams.web.api import ChatAPIView, UploadThrottle, error_responses, path_id

from . import selectors, services
from .selectors import FILE, THUMBNAIL
from .serializers import AttachmentDetailSerializer, AttachmentSerializer, AttachmentUploadSerializer
from .serving import attachment_response
from .uploads import MULTIPART_OVERHEAD, declared_length, limit_uploads

TAGS = ["attachments"]
ATTACHMENT_ID = path_id("attachment_id", "The attachment's id.")
NOT_VISIBLE = "`not_found`: no such attachment, or not yours to see (you are not in its room, or its message is gone)."


def _too_large(size: int | None = None) -> ChatError:
    limit = settings.CHAT_ATTACHMENT_MAX_BYTES
    told = f"The file is {size} bytes" if size is not None else "The file is larger than the limit"
    return ChatError(TOO_LARGE, f"{told}; the limit is {limit} bytes.")


@extend_schema(parameters=[ROOM_ID], tags=TAGS)
class RoomAttachmentsView(ChatAPIView):
    parser_classes = [MultiPartParser]
    write_throttle = UploadThrottle

    def initial(self, request, *args, **kwargs):
        # Before authentication: a session's CSRF check reads the form, so the limit must be in
        # place first, and a body declared too large is refused before a byte of it is parsed.
        limit = settings.CHAT_ATTACHMENT_MAX_BYTES
        self.limiter = limit_uploads(request._request, limit=limit)
        length = declared_length(request._request)
        if request.method == "POST" and length is not None and length > limit + MULTIPART_OVERHEAD:
            raise _too_large()
        super().initial(request, *args, **kwargs)

    @extend_schema(
        operation_id="attachments_upload",
        summary="Upload a file or an image to a room",
        request={"multipart/form-data": AttachmentUploadSerializer},
        responses={201: AttachmentSerializer, **error_responses(400, 403, 404, 413, 415)},
        description=(
            "Multipart, the file in the field `file`. Then send a message naming its `id` in `attachments` "
            "(WebSocket `message.send` or `POST /rooms/{id}/messages/`). An upload never sent is deleted after "
            "CHAT_ATTACHMENT_UNATTACHED_TTL_S. Images get `width`, `height` and a thumbnail, and are stored "
            "without their EXIF location."
        ),
    )
    def post(self, request, room_id: int):
        files = request.FILES  # parsed here, through the limit
        if self.limiter.exceeded:
            raise _too_large()
        upload = files.get("file")
        if upload is None:
            raise ChatError(INVALID, "Send the file as the multipart form field `file`.")
        attachment = services.attachment_create(user=request.user, room_id=room_id, upload=upload)
        return Response(selectors.attachment_payload(attachment), status=status.HTTP_201_CREATED)


@extend_schema(parameters=[ATTACHMENT_ID], tags=TAGS)
class AttachmentView(ChatAPIView):
    @extend_schema(
        operation_id="attachments_get",
        summary="One attachment, with signed URLs",
        responses={200: AttachmentDetailSerializer, **error_responses(404)},
        description=(
            "The attachment object, plus `signed_url` and `signed_thumbnail_url`: links that work without "
            "credentials (for a player, a share sheet, a download manager) until CHAT_ATTACHMENT_URL_TTL_S pass, "
            "and only while you may still see it."
        ),
    )
    def get(self, request, attachment_id: int):
        attachment = selectors.attachment_get_visible(attachment_id=attachment_id, user_id=request.user.pk)
        return Response(selectors.attachment_detail_payload(attachment, user_id=request.user.pk))


BINARY = {(200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The file, with its own content type.")}


class _FileView(ChatAPIView):
    variant = FILE

    def get(self, request, attachment_id: int):
        attachment = selectors.attachment_get_visible(attachment_id=attachment_id, user_id=request.user.pk)
        return attachment_response(attachment, variant=self.variant)


@extend_schema(parameters=[ATTACHMENT_ID], tags=TAGS)
class AttachmentFileView(_FileView):
    @extend_schema(
        operation_id="attachments_file",
        summary="The file",
        responses={**BINARY, **error_responses(404)},
        description=(
            "Checked on every request: a member of its room (while its message stands), or whoever keeps it "
            "in their drawer. Images inline, other files as a download (`Content-Disposition: attachment`). "
            "With S3 storage: a redirect (302) to a short-lived URL of the store."
        ),
    )
    def get(self, request, attachment_id: int):
        return super().get(request, attachment_id)


@extend_schema(parameters=[ATTACHMENT_ID], tags=TAGS)
class AttachmentThumbnailView(_FileView):
    variant = THUMBNAIL

    @extend_schema(
        operation_id="attachments_thumbnail",
        summary="An image's thumbnail",
        responses={**BINARY, **error_responses(404)},
        description="At most CHAT_ATTACHMENT_THUMBNAIL_PX (320) on its longer side, no metadata; 404 for files.",
    )
    def get(self, request, attachment_id: int):
        return super().get(request, attachment_id)


def signed_file(request, token: str, name: str):
    """``/files/<token>/<name>``: a signed URL's file, without credentials, until it expires.

    The token names the attachment, the variant and the user it was made for; that user's
    right to see it is checked again now. Anything else (a tampered or expired token, a user
    who left the room) answers 404.
    """
    opened = selectors.signed_url_open(token)
    if opened is None or request.method not in ("GET", "HEAD"):
        return _not_found()
    attachment_id, user_id, variant = opened
    try:
        attachment = selectors.attachment_get_visible(attachment_id=attachment_id, user_id=user_id)
        return attachment_response(attachment, variant=variant)
    except ChatError:
        return _not_found()


def _not_found() -> JsonResponse:
    response = JsonResponse({"error": {"code": NOT_FOUND, "detail": "No such file, or the link expired."}}, status=404)
    response["Cache-Control"] = "no-store"
    return response
