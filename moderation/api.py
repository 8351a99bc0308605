"""REST endpoints of moderation: report a message; a user's own warnings. One call thick."""

from drf_spectacular.utils import extend_schema
from rest_framework import status
from rest_framework.response import Response

from rooms.api import ROOM_ID, SEQ
from streams.web.api import ChatAPIView, error_responses, path_id, validated

from . import selectors, services
from .models import Report
from .serializers import (
    ReportCreateSerializer,
    ReportSerializer,
    WarningDismissSerializer,
    WarningListSerializer,
    WarningSerializer,
)

WARNING_ID = path_id("warning_id", "The warning's id.")


def _report(report: Report) -> dict:
    return {
        "id": report.pk, "room": report.message.room_id, "seq": report.message.seq, "reason": report.reason,
        "note": report.note, "status": report.status, "created_at": report.created_at,
    }  # fmt: skip


@extend_schema(parameters=[ROOM_ID, SEQ])
class MessageReportView(ChatAPIView):
    @extend_schema(
        operation_id="messages_report",
        request=ReportCreateSerializer,
        responses={201: ReportSerializer, 200: ReportSerializer, **error_responses(400, 403, 404, 429)},
        description="Report a message of a room you are in to the site's moderators (201). Reporting it again "
        "while your report is open returns that report (200), unchanged. Non-members get 403 `not_member`, a "
        "message that does not exist (or is deleted) 404; your own message and system lines 400.",
    )
    def post(self, request, room_id: int, seq: int):
        data = validated(ReportCreateSerializer, request.data)
        report, created = services.report_create(user=request.user, room_id=room_id, seq=seq, **data)
        return Response(ReportSerializer(_report(report)).data, status=status.HTTP_201_CREATED if created else 200)


class WarningsView(ChatAPIView):
    @extend_schema(
        operation_id="account_warnings",
        responses={200: WarningListSerializer, **error_responses(401)},
        description="The moderators' warnings to you, newest first (dismissed ones too, marked). New ones also "
        "arrive on your sockets as `moderation.warning.v1`.",
    )
    def get(self, request):
        return Response({"warnings": selectors.warnings_for_user(user_id=request.user.pk)})


@extend_schema(parameters=[WARNING_ID])
class WarningView(ChatAPIView):
    @extend_schema(
        operation_id="account_warning_dismiss",
        request=WarningDismissSerializer,
        responses={200: WarningSerializer, **error_responses(400, 404)},
        description='Dismiss one of your warnings with `{"dismissed": true}` (it stays listed, marked).',
    )
    def patch(self, request, warning_id: int):
        validated(WarningDismissSerializer, request.data)
        return Response(services.warning_dismiss(user=request.user, warning_id=warning_id))
