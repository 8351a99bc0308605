"""REST views of data exports: a user starts an export of their own data, follows it, downloads it.

Thin: parse, call a service or selector, format. Only the requester sees an export: any other id,
someone else's included, is 404 ``not_found``.
"""

from __future__ import annotations

from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponseRedirect
from django.utils.http import content_disposition_header
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.response import Response

from streams.errors import CONFLICT, NOT_FOUND, ChatError
from streams.web.api import ChatAPIView, WriteThrottle, error_responses, path_id, validated

from . import selectors, services
from .models import DataExport
from .serializers import DataExportSerializer, ExportRequestSerializer

EXPORT_ID = path_id("export_id", "The export's id.")
PRESIGNED_TTL_S = 300


class ExportThrottle(WriteThrottle):
    """Starting an export (each one reads the user's whole history): the `export` rate."""

    scope = "export"


class ExportsView(ChatAPIView):
    write_throttle = ExportThrottle

    @extend_schema(
        operation_id="account_exports_list",
        summary="My data exports",
        description="Newest first, at most 20.",
        responses={200: DataExportSerializer(many=True), **error_responses()},
    )
    def get(self, request):
        return Response(DataExportSerializer(selectors.exports_of(user=request.user), many=True).data)

    @extend_schema(
        operation_id="account_exports_create",
        summary="Export my data",
        description="Starts building a ZIP of my account, my rooms, the messages I sent, my drawer and my "
        "attachments; poll the export for its progress, then download it. One at a time: while one is queued "
        "or running, it is answered (200) instead of a new one (202). Limited by the `export` rate.",
        request=ExportRequestSerializer,
        responses={202: DataExportSerializer, 200: DataExportSerializer, **error_responses(400)},
    )
    def post(self, request):
        data = validated(ExportRequestSerializer, request.data)
        export, created = services.export_request_user(user=request.user, include_files=data["include_files"])
        return Response(
            DataExportSerializer(export).data, status=status.HTTP_202_ACCEPTED if created else status.HTTP_200_OK
        )


@extend_schema(parameters=[EXPORT_ID])
class ExportView(ChatAPIView):
    @extend_schema(
        operation_id="account_exports_retrieve",
        summary="One of my data exports, with its progress",
        responses={200: DataExportSerializer, **error_responses(404)},
    )
    def get(self, request, export_id: int):
        return Response(
            DataExportSerializer(selectors.export_get_for_user(export_id=export_id, user=request.user)).data
        )


@extend_schema(parameters=[EXPORT_ID])
class ExportDownloadView(ChatAPIView):
    @extend_schema(
        operation_id="account_exports_download",
        summary="Download my data export (a ZIP)",
        description="As a download (`Content-Disposition: attachment`); 409 `conflict` while it is not done "
        "(queued, running, failed or expired). With S3 storage: a redirect (302) to a short-lived URL of the store.",
        responses={
            (200, "*/*"): OpenApiResponse(OpenApiTypes.BINARY, description="The ZIP (`application/zip`)."),
            **error_responses(404, 409),
        },
    )
    def get(self, request, export_id: int):
        export = selectors.export_get_for_user(export_id=export_id, user=request.user)
        return export_file_response(export)


def export_file_response(export: DataExport):
    """The export's ZIP as a download (also the admin's), or 409 while it has none."""
    if export.status != DataExport.Status.DONE or not export.file:
        if export.status == DataExport.Status.EXPIRED:
            raise ChatError(CONFLICT, "This export has expired and its file was deleted; start a new one.")
        if export.status == DataExport.Status.FAILED:
            raise ChatError(CONFLICT, f"This export failed; start a new one. {export.error}".strip())
        raise ChatError(CONFLICT, f"This export is not ready yet ({export.status}, {export.progress}%).")
    filename = export.file.rsplit("/", 1)[-1]
    disposition = content_disposition_header(True, filename)
    if hasattr(default_storage, "bucket_name"):
        url = default_storage.url(
            export.file,
            parameters={"ResponseContentType": "application/zip", "ResponseContentDisposition": disposition},
            expire=PRESIGNED_TTL_S,
        )
        return HttpResponseRedirect(url)
    try:
        handle = default_storage.open(export.file, "rb")
    except FileNotFoundError:
        raise ChatError(NOT_FOUND, "This export's file is gone; start a new one.") from None
    response = FileResponse(handle, content_type="application/zip")
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    response["Cache-Control"] = "private, no-store"
    return response
