"""Reads about data exports: a requester's own exports, and the rows an export is built from.

The rows come in keyset pages (``chunks``): each page is one query of at most ``EXPORT_CHUNK``
rows, ordered by a unique key and resumed after the last one, so building an export of any size
holds one page in memory and never counts past rows with OFFSET.
"""

from __future__ import annotations

from collections.abc import Iterator

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db.models import QuerySet

from attachments.models import Attachment
from chat_messages.models import Message
from drawer.models import SavedMessage
from rooms.models import Participant, Room
from streams.errors import NOT_FOUND, ChatError

from .models import DataExport

EXPORTS_LISTED = 20
NOT_FOUND_DETAIL = "No export of yours has this id."


def export_get_for_user(*, export_id: int, user) -> DataExport:
    """One of the user's own exports of their data; any other id (someone else's) is ``not_found``."""
    export = DataExport.objects.filter(pk=export_id, requester_id=user.pk, kind=DataExport.Kind.USER).first()
    if export is None:
        raise ChatError(NOT_FOUND, NOT_FOUND_DETAIL)
    return export


def exports_of(*, user, limit: int = EXPORTS_LISTED) -> list[DataExport]:
    """The user's exports of their own data, newest first."""
    return list(DataExport.objects.filter(requester_id=user.pk, kind=DataExport.Kind.USER)[:limit])


def export_unfinished_for(*, user) -> DataExport | None:
    """The user's export still queued or running, if any (there is at most one)."""
    return DataExport.objects.filter(
        requester_id=user.pk, kind=DataExport.Kind.USER, status__in=DataExport.UNFINISHED
    ).first()


# -- the rows of an export, in keyset pages ---------------------------------------------------------
def chunks(queryset: QuerySet, *, key: str = "id", size: int | None = None) -> Iterator[list[dict]]:
    """``queryset`` (a ``values()`` query that includes ``key``) in pages of ``size`` rows by ``key``."""
    size = size or settings.EXPORT_CHUNK
    last = None
    while True:
        page = queryset.order_by(key)
        if last is not None:
            page = page.filter(**{f"{key}__gt": last})
        rows = list(page[:size])
        if rows:
            yield rows
        if len(rows) < size:
            return
        last = rows[-1][key]


def account_of(*, user_id: int) -> dict | None:
    """What the account itself holds that is the user's to take away (never the password hash)."""
    return (
        get_user_model()
        .objects.filter(pk=user_id)
        .values("id", "username", "first_name", "last_name", "email", "date_joined", "last_login", "is_active")
        .first()
    )


def room_get(*, room_id: int | None) -> Room | None:
    return Room.objects.filter(pk=room_id).first() if room_id is not None else None


def memberships_of(*, user_id: int) -> QuerySet:
    return Participant.objects.filter(user_id=user_id).values(
        "id", "room_id", "room__name", "room__kind", "room__topic", "role", "joined_at", "last_read_seq", "muted"
    )


def direct_partners(*, user_id: int, room_ids: list[int]) -> dict[int, str]:
    """The other person's username in each of these direct rooms (the name the room shows)."""
    rows = (
        Participant.objects.filter(room_id__in=room_ids, room__kind=Room.Kind.DIRECT)
        .exclude(user_id=user_id)
        .values_list("room_id", "user__username")
    )
    return dict(rows)


def messages_sent_by(*, user_id: int) -> QuerySet:
    # System lines have no sender: every row here is a message the user wrote.
    return Message.objects.filter(sender_id=user_id).values(
        "id", "room_id", "room__name", "seq", "body", "created_at", "edited_at", "deleted_at", "reply_to",
        "attachments",
    )  # fmt: skip


def drawer_of(*, user_id: int) -> QuerySet:
    return SavedMessage.objects.filter(user_id=user_id).values(
        "id", "room_id", "room_name", "sender_name", "body", "message_seq", "message_created_at", "attachments",
        "note", "tags", "saved_at",
    )  # fmt: skip


def attachments_sent_by(*, user_id: int) -> QuerySet:
    """The user's uploads that went out in a message and are still kept (not released)."""
    return Attachment.objects.filter(
        uploader_id=user_id, message_id__isnull=False, released_at__isnull=True, room__isnull=False
    ).values("id", "room_id", "message_id", "kind", "name", "content_type", "size", "width", "height", "file",
             "created_at")  # fmt: skip


def room_members(*, room_id: int) -> QuerySet:
    return Participant.objects.filter(room_id=room_id).values(
        "id", "user_id", "user__username", "role", "joined_at", "last_read_seq"
    )


def room_messages(*, room_id: int) -> QuerySet:
    # Paged by seq: the (room, seq) unique index serves each page.
    return Message.objects.filter(room_id=room_id).values(
        "id", "seq", "kind", "sender_id", "sender__username", "body", "created_at", "edited_at", "deleted_at",
        "reply_to", "attachments", "system",
    )  # fmt: skip


def room_attachments(*, room_id: int) -> QuerySet:
    return Attachment.objects.filter(room_id=room_id, message_id__isnull=False).values(
        "id", "message_id", "uploader__username", "uploader_id", "kind", "name", "content_type", "size", "width",
        "height", "created_at", "released_at",
    )  # fmt: skip
