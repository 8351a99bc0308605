"""Reads about the talk drawer: one user's entries, filtered and cursor-paginated, newest first.

Only the owner's entries are ever read: every query starts from ``user_id``. Each entry carries
whether it still links back to its message (the message exists, is not deleted and the user is
still in its room), computed in the same query as the page, so a page costs one query.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connection
from django.db.models import BooleanField, Exists, ExpressionWrapper, OuterRef, Q, QuerySet
from django.utils.dateparse import parse_datetime

from attachments.selectors import attachments_payload
from rooms.models import Participant
from streams.errors import INVALID, NOT_FOUND, ChatError
from streams.realtime.protocol import BIGINT_MAX

from .models import SavedMessage, tag_normalize

PAGE_SIZE = 30
PAGE_SIZE_MAX = 100
QUERY_MAX_CHARS = 200
# The cursors this module writes are about 60 characters; nothing longer is one of them.
CURSOR_MAX_CHARS = 200


@dataclass
class DrawerPage:
    """A page of entries, newest first; ``next_cursor`` fetches the older ones (None at the end)."""

    entries: list[SavedMessage]
    next_cursor: str | None


def with_link(queryset: QuerySet) -> QuerySet:
    """Entries annotated with ``linked`` (and their message fetched), for drawer_entry_payload."""
    # `linked` is true while the message exists, is not deleted and the entry's owner is in its
    # room: only then can they jump to it, and only then is its current body theirs to see.
    # A message never changes room, so the entry's room is the message's while it links.
    member = Participant.objects.filter(room_id=OuterRef("room_id"), user_id=OuterRef("user_id"))
    linked = Q(message__isnull=False) & Q(message__deleted_at__isnull=True) & Exists(member)
    return queryset.select_related("message").annotate(linked=ExpressionWrapper(linked, output_field=BooleanField()))


def drawer_entry_get(*, user_id: int, entry_id: int) -> SavedMessage:
    """One of the user's entries, or ``not_found`` (also for another user's entry id)."""
    entry = with_link(SavedMessage.objects.filter(user_id=user_id)).filter(pk=entry_id).first()
    if entry is None:
        raise ChatError(NOT_FOUND, "No such entry in your drawer.")
    return entry


def encode_cursor(entry: SavedMessage) -> str:
    raw = json.dumps([entry.saved_at.isoformat(), entry.pk], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, int]:
    """The (saved_at, id) a cursor stands for; ``invalid`` if it is not one of ours.

    A cursor is client input: anything that decodes is checked as the database will see it
    (a UTC time within Python's range, a bigint id), so a forged one cannot reach PostgreSQL
    with a time zone or a number it refuses.
    """
    try:
        if len(cursor) > CURSOR_MAX_CHARS:
            raise ValueError(cursor)
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        stamp, pk = json.loads(raw)
        saved_at = parse_datetime(stamp)
        if saved_at is None or saved_at.tzinfo is None or not isinstance(pk, int) or isinstance(pk, bool):
            raise ValueError(cursor)
        if not 0 < pk <= BIGINT_MAX:
            raise ValueError(cursor)
        # PostgreSQL refuses offsets past 15:59 (DataError); in UTC any moment that exists is fine.
        saved_at = saved_at.astimezone(UTC)
    except (binascii.Error, ValueError, TypeError, OverflowError, RecursionError):
        raise ChatError(INVALID, "`cursor` is not a cursor this server gave.") from None
    return saved_at, pk


def drawer_entries_list(
    *,
    user_id: int,
    room_id: int | None = None,
    tags: list[str] | tuple[str, ...] = (),
    since: datetime | None = None,
    until: datetime | None = None,
    query: str | None = None,
    cursor: str | None = None,
    limit: int = PAGE_SIZE,
) -> DrawerPage:
    """The user's entries, newest saved first, filtered and cut into pages.

    ``room_id``: saved from that room. ``tags``: carrying every one of them (case-insensitive).
    ``since`` / ``until``: saved at or after ``since`` and before ``until``. ``query``: the text
    appears in the saved body, the note, the sender's or the room's name, or a tag.
    ``cursor``: the ``next_cursor`` of the previous page.
    """
    if not 1 <= limit <= PAGE_SIZE_MAX:
        raise ChatError(INVALID, f"`limit` must be between 1 and {PAGE_SIZE_MAX}.")
    entries = SavedMessage.objects.filter(user_id=user_id)
    if room_id is not None:
        entries = entries.filter(room_id=room_id)
    wanted_tags = sorted({tag_normalize(t) for t in tags if t and t.strip()})
    if wanted_tags:
        entries = entries.filter(tags__contains=wanted_tags)
    if since is not None:
        entries = entries.filter(saved_at__gte=since)
    if until is not None:
        entries = entries.filter(saved_at__lt=until)
    query = (query or "").strip()
    if len(query) > QUERY_MAX_CHARS:
        raise ChatError(INVALID, f"`q` has at most {QUERY_MAX_CHARS} characters.")
    if query:
        entries = entries.filter(
            Q(body__icontains=query)
            | Q(note__icontains=query)
            | Q(sender_name__icontains=query)
            | Q(room_name__icontains=query)
            | Q(tags__contains=[tag_normalize(query)])
        )
    if cursor:
        saved_at, pk = decode_cursor(cursor)
        entries = entries.filter(Q(saved_at__lt=saved_at) | Q(saved_at=saved_at, pk__lt=pk))
    rows = list(with_link(entries).order_by("-saved_at", "-pk")[: limit + 1])
    page = rows[:limit]
    return DrawerPage(entries=page, next_cursor=encode_cursor(page[-1]) if len(rows) > limit else None)


def drawer_entry_payload(entry: SavedMessage) -> dict:
    """The shape of an entry in REST answers and ``drawer.changed`` frames.

    ``entry`` comes from a selector of this module (it needs the ``linked`` annotation).
    ``jump`` and ``current_body`` are null once the entry no longer links back to its message
    (deleted, its room deleted, or the user left the room).
    """
    linked = bool(getattr(entry, "linked", False))
    message = entry.message if linked else None
    return {
        "id": entry.pk,
        "message": entry.message_id,
        "room": entry.room_id,
        "room_name": entry.room_name,
        "sender_name": entry.sender_name,
        "body": entry.body,
        "message_seq": entry.message_seq,
        "message_created_at": entry.message_created_at.isoformat(),
        # The files it carried when saved: the entry keeps them, fetched by their usual URLs.
        "attachments": attachments_payload(entry.attachments),
        "note": entry.note,
        "tags": list(entry.tags),
        "saved_at": entry.saved_at.isoformat(),
        "jump": {"room": message.room_id, "seq": message.seq} if message else None,
        "current_body": message.body if message else None,
        # The original was edited after it was saved: the snapshot keeps what was saved.
        "edited_since_saved": bool(message and message.body != entry.body),
    }


def drawer_rooms(*, user_id: int) -> list[dict]:
    """The rooms the user's entries come from, with counts: the choices of the room filter."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT room_id, (array_agg(room_name ORDER BY saved_at DESC))[1], count(*)"
            f" FROM {SavedMessage._meta.db_table} WHERE user_id = %s AND room_id IS NOT NULL"
            " GROUP BY room_id ORDER BY 2, 1",
            [user_id],
        )
        return [{"room": room, "room_name": name, "count": count} for room, name, count in cursor.fetchall()]


def drawer_tags(*, user_id: int) -> list[dict]:
    """The tags the user has used, most used first: the choices of the tag filter."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT tag, count(*) FROM {SavedMessage._meta.db_table}, unnest(tags) AS tag"
            " WHERE user_id = %s GROUP BY tag ORDER BY 2 DESC, 1",
            [user_id],
        )
        return [{"tag": tag, "count": count} for tag, count in cursor.fetchall()]


def drawer_entries_for_query(*, user_id: int, data: dict):
    """:func:`drawer_entries_list` for the validated fields of a drawer list query.

    One place maps the query's names (``tag``, ``q``...) to the selector's, for REST and the page.
    """
    return drawer_entries_list(
        user_id=user_id,
        room_id=data.get("room"),
        tags=data.get("tag", []),
        since=data.get("since"),
        until=data.get("until"),
        query=data.get("q"),
        cursor=data.get("cursor"),
        limit=data["limit"],
    )
