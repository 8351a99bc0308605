"""Reads of moderation: a user's warnings, a report's message in its context, the queue's counts."""

from __future__ import annotations

from django.db.models import Count, OuterRef, QuerySet, Subquery
from django.db.models.functions import Coalesce

from chat_messages.models import Message
from streams.realtime.protocol import DELETED_USER

from .models import ModerationWarning, Report

CONTEXT_AROUND = 5  # messages shown before and after a reported one


def warning_payload(warning: ModerationWarning) -> dict:
    """A warning as clients get it (REST and ``moderation.warning.v1``)."""
    return {
        "id": warning.pk,
        "text": warning.text,
        "created_at": warning.created_at.isoformat(),
        "dismissed": warning.dismissed_at is not None,
    }


def warnings_for_user(*, user_id: int, limit: int = 50) -> list[dict]:
    """The user's warnings, newest first (dismissed ones too, marked)."""
    return [
        warning_payload(w)
        for w in ModerationWarning.objects.filter(user_id=user_id).order_by("-created_at", "-id")[:limit]
    ]


def reports_with_counts(queryset: QuerySet[Report]) -> QuerySet[Report]:
    """Reports annotated with ``open_on_message``: how many open reports their message has."""
    open_count = (
        Report.objects.filter(message_id=OuterRef("message_id"), status=Report.Status.OPEN)
        .order_by()
        .values("message_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    return queryset.annotate(open_on_message=Coalesce(Subquery(open_count), 0))


def report_context(*, report: Report, around: int = CONTEXT_AROUND) -> list[dict]:
    """The reported message with the ``around`` messages before and after it in its room, in seq
    order: {seq, sender (a name; "deleted user"; None for a system line), body, deleted, created_at,
    reported}. One read of the room's (room, seq) index, whatever the room's size."""
    message = report.message
    rows = Message.objects.filter(
        room_id=message.room_id, seq__gte=message.seq - around, seq__lte=message.seq + around
    ).select_related("sender")
    out = []
    for m in rows.order_by("seq"):
        # A system line has no sender; a deleted account's message shows as DELETED_USER.
        name = m.sender.username if m.sender_id else DELETED_USER
        sender = None if m.kind == Message.Kind.SYSTEM else name
        out.append({
            "seq": m.seq, "sender": sender, "body": "" if m.deleted_at else m.body,
            "deleted": m.deleted_at is not None, "created_at": m.created_at, "reported": m.pk == message.pk,
        })  # fmt: skip
    return out
