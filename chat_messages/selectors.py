"""Reads about messages: history pages, catch-up after a reconnect, the shape sent to clients."""

from __future__ import annotations

from attachments.selectors import attachments_payload
from rooms.selectors import participant_get, unread_counter
from streams.errors import NOT_FOUND, ChatError
from streams.realtime.protocol import DELETED_USER

from .models import Message, Reaction

SYSTEM = Message.Kind.SYSTEM.value


def message_payload(
    message: Message, *, sender_name: str | None, unread_count: int, reactions: list[dict] | None = None
) -> dict:
    """The ``message`` object of ``message.new`` frames and REST history, one shape everywhere.

    A system line (``kind`` "system") has no sender ({id: null, username: null}, unlike a deleted
    account's "deleted user") and no unread counter; ``system`` holds its facts.
    """
    if message.kind == SYSTEM:
        sender, unread_count = {"id": None, "username": None}, 0
    else:
        sender = {"id": message.sender_id, "username": sender_name if message.sender_id else DELETED_USER}
    return {
        "id": message.pk,
        "room": message.room_id,
        "seq": message.seq,
        "kind": message.kind,
        "sender": sender,
        "body": "" if message.deleted_at else message.body,
        "client_msg_id": str(message.client_msg_id),
        "created_at": message.created_at.isoformat(),
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
        "deleted": message.deleted_at is not None,
        "unread_count": unread_count,
        "reactions": reactions or [],
        "reply_to": None if message.deleted_at else message.reply_to,
        "mentions": [] if message.deleted_at else message.mentions or [],
        "system": message.system,
        "attachments": [] if message.deleted_at else attachments_payload(message.attachments),
    }


def _payloads(room_id: int, messages: list[Message]) -> list[dict]:
    unread = unread_counter(room_id=room_id)
    reactions = reactions_of(message_ids=[m.pk for m in messages if m.deleted_at is None])
    return [
        message_payload(
            m,
            sender_name=m.sender.username if m.sender_id else None,
            unread_count=unread(m.seq),
            reactions=reactions.get(m.pk),
        )
        for m in messages
    ]


def message_get(*, room_id: int, user_id: int, seq: int) -> Message:
    """A message of a room the user is in (deleted ones too), else ``not_member`` / ``not_found``."""
    participant_get(room_id=room_id, user_id=user_id)
    message = Message.objects.filter(room_id=room_id, seq=seq).first()
    if message is None:
        raise ChatError(NOT_FOUND, "No such message.")
    return message


def reactions_of(*, message_ids: list[int]) -> dict[int, list[dict]]:
    """Each message's reactions, in one query: ``[{emoji, count, users: [{id, username}]}]``.

    Emojis in the order of ``Reaction.REACTIONS``; users in the order they reacted.
    """
    if not message_ids:
        return {}
    rows = (
        Reaction.objects.filter(message_id__in=message_ids)
        .order_by("created_at", "id")
        .values_list("message_id", "emoji", "user_id", "user__username")
    )
    grouped: dict[int, dict[str, list[dict]]] = {}
    for message_id, emoji, user_id, username in rows:
        grouped.setdefault(message_id, {}).setdefault(emoji, []).append({"id": user_id, "username": username})
    order = {emoji: i for i, emoji in enumerate(Reaction.REACTIONS)}
    return {
        message_id: [
            {"emoji": emoji, "count": len(users), "users": users}
            for emoji, users in sorted(by_emoji.items(), key=lambda item: order.get(item[0], len(order)))
        ]
        for message_id, by_emoji in grouped.items()
    }


def messages_after(*, room_id: int, user_id: int, after_seq: int, limit: int) -> tuple[list[dict], bool]:
    """Messages with seq > after_seq in order, at most ``limit``; and whether more remain."""
    participant_get(room_id=room_id, user_id=user_id)
    rows = list(
        Message.objects.filter(room_id=room_id, seq__gt=after_seq).select_related("sender").order_by("seq")[: limit + 1]
    )
    return _payloads(room_id, rows[:limit]), len(rows) > limit


def messages_before(*, room_id: int, user_id: int, before_seq: int, limit: int) -> tuple[list[dict], bool]:
    """Messages with seq < before_seq, oldest first, at most ``limit``; and whether older remain."""
    participant_get(room_id=room_id, user_id=user_id)
    rows = list(
        Message.objects.filter(room_id=room_id, seq__lt=before_seq)
        .select_related("sender")
        .order_by("-seq")[: limit + 1]
    )
    more = len(rows) > limit
    return _payloads(room_id, list(reversed(rows[:limit]))), more


def messages_around(*, room_id: int, user_id: int, seq: int, limit: int) -> list[dict]:
    """A page of about ``limit`` messages centred on ``seq``: older context, then what follows."""
    participant_get(room_id=room_id, user_id=user_id)
    half = max(1, limit // 2)
    older = list(Message.objects.filter(room_id=room_id, seq__lt=seq).select_related("sender").order_by("-seq")[:half])
    newer = list(
        Message.objects.filter(room_id=room_id, seq__gte=seq)
        .select_related("sender")
        .order_by("seq")[: limit - len(older)]
    )
    return _payloads(room_id, list(reversed(older)) + newer)


def room_enter_state(*, room_id: int, user_id: int, limit: int) -> dict:
    """What entering a room shows: the read position, counts and the page at the first unread."""
    participant = participant_get(room_id=room_id, user_id=user_id)
    room = participant.room
    first_unread = participant.last_read_seq + 1
    anchor = min(first_unread, room.last_seq) if room.last_seq else 1
    return {
        "room": room.pk,
        "last_read_seq": participant.last_read_seq,
        "last_seq": room.last_seq,
        "unread": max(0, room.last_seq - participant.last_read_seq),
        "messages": messages_around(room_id=room.pk, user_id=user_id, seq=anchor, limit=limit),
    }


def history_page(*, room_id: int, user_id: int, anchor=None, before=None, after=None, limit: int) -> dict:
    """A page of history for REST: by ``before``, ``after``, or around an anchor (default newest)."""
    participant = participant_get(room_id=room_id, user_id=user_id)
    last_seq = participant.room.last_seq
    if before is not None:
        messages, has_older = messages_before(room_id=room_id, user_id=user_id, before_seq=before, limit=limit)
        has_newer = before <= last_seq
    elif after is not None:
        messages, has_newer = messages_after(room_id=room_id, user_id=user_id, after_seq=after, limit=limit)
        has_older = after > 0
    elif anchor in (None, "newest"):
        # The last ``limit`` messages: a page around a seq would keep half of it for older ones.
        messages, has_older = messages_before(room_id=room_id, user_id=user_id, before_seq=last_seq + 1, limit=limit)
        has_newer = False
    else:
        seq = min(participant.last_read_seq + 1, max(last_seq, 1)) if anchor == "first_unread" else int(anchor)
        messages = messages_around(room_id=room_id, user_id=user_id, seq=seq, limit=limit) if last_seq else []
        has_older = bool(messages) and messages[0]["seq"] > 1
        has_newer = bool(messages) and messages[-1]["seq"] < last_seq
    return {
        "messages": messages,
        "has_older": has_older,
        "has_newer": has_newer,
        "last_read_seq": participant.last_read_seq,
        "last_seq": last_seq,
    }
