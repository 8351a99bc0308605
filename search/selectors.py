"""Reading the search index: a user's search over the rooms they are in now.

Membership is applied twice: the index is asked about the user's rooms only, and every hit it
answers is checked against the database (the user is in its room, the message is a text message
that is not deleted, and its words hold every term) before it is shown. An index that lags
behind a deletion, a departure or an edit, or a backend that answers too broadly, therefore
never shows what the user may not see; at worst a page has fewer hits.
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db.models import Q

from chat_messages.models import Message
from rooms.models import Participant, Room
from rooms.selectors import participant_get
from streams.errors import INVALID, ChatError
from streams.realtime.protocol import BIGINT_MAX, DELETED_USER, is_json_int

from . import text
from .backends.base import Query, get_backend

SEARCH_PAGE_SIZE = 20
SEARCH_PAGE_SIZE_MAX = 100
SEARCH_QUERY_MAX_CHARS = 200
ORDERS = ("recent", "relevance")


@dataclass
class SearchPage:
    """Hits in the order asked for; ``next_cursor`` asks for the next page (None at the end).

    ``next_before`` is the older, id-only cursor of "recent" order, kept for clients that use it.
    """

    hits: list[dict]
    next_cursor: str | None
    next_before: int | None


def _cursor_encode(order: str, value: int) -> str:
    raw = json.dumps({"o": order, "v": value}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _cursor_decode(cursor: str, *, order: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        value = data["v"]
        # is_json_int: a tampered ``true`` is an int to Python, and a boolean to the database.
        if data["o"] != order or not is_json_int(value):
            raise ValueError
    except (ValueError, TypeError, KeyError, binascii.Error, UnicodeDecodeError):
        raise ChatError(INVALID, "`cursor` is not one this search gave (take `next_cursor` as it is).") from None
    return value


def _room_names(room_ids: set[int], *, user_id: int) -> dict[int, str]:
    """Each room's name as this user sees it: a group's name, or a direct room's other person."""
    names: dict[int, str] = {}
    others: dict[int, int] = {}
    for pk, kind, name, key in Room.objects.filter(pk__in=room_ids).values_list("pk", "kind", "name", "direct_key"):
        if kind == Room.Kind.DIRECT and key:
            low, _, high = key.partition(":")
            others[pk] = int(high) if low == str(user_id) else int(low)
        else:
            names[pk] = name
    if others:
        from django.contrib.auth import get_user_model

        usernames = dict(get_user_model().objects.filter(pk__in=others.values()).values_list("pk", "username"))
        for pk, other in others.items():
            names[pk] = usernames.get(other, DELETED_USER)
    return names


def search_hit_payload(message: Message, *, terms: list[str], room_name: str) -> dict:
    """A hit as clients get it: where the message is (room, seq), who said it, what, and where the terms are."""
    return {
        "id": message.pk,
        "room": message.room_id,
        "room_name": room_name,
        "seq": message.seq,
        "sender": {
            "id": message.sender_id,
            "username": message.sender.username if message.sender_id else DELETED_USER,
        },
        "body": message.body,
        "created_at": message.created_at.isoformat(),
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
        "snippet": text.snippet(message.body, terms),
    }


def message_search(
    *,
    user_id: int,
    q: str,
    room_id: int | None = None,
    sender_id: int | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    order: str = "recent",
    cursor: str | None = None,
    before: int | None = None,
    limit: int = SEARCH_PAGE_SIZE,
) -> SearchPage:
    """Messages holding every term of ``q`` (as substrings, any case), from the rooms the user is in now.

    ``room_id`` narrows it to one room (``not_member`` if the user is not in it, as for every
    other room call); ``sender_id`` to one sender; ``since``/``until`` to a time range. ``order``
    "recent" (newest first) or "relevance" (whole-word hits first, among the newest 1,000
    matches). ``cursor`` is the previous page's ``next_cursor``; ``before`` is the older id cursor.
    Deleted messages and system lines are never found.
    """
    q = (q or "").strip()
    if len(q) > SEARCH_QUERY_MAX_CHARS:
        raise ChatError(INVALID, f"`q` has at most {SEARCH_QUERY_MAX_CHARS} characters.")
    terms = text.query_terms(q)
    if not terms:
        raise ChatError(INVALID, "`q` must contain something to search for.")
    if order not in ORDERS:
        raise ChatError(INVALID, f"`order` is one of {', '.join(ORDERS)}.")
    if not 1 <= limit <= SEARCH_PAGE_SIZE_MAX:
        raise ChatError(INVALID, f"`limit` must be between 1 and {SEARCH_PAGE_SIZE_MAX}.")
    if since is not None and until is not None and since >= until:
        raise ChatError(INVALID, "`since` must be before `until`.")
    offset, before_id = 0, before
    if cursor:
        value = _cursor_decode(cursor, order=order)
        if order == "recent":
            before_id = value
        else:
            offset = value
    if room_id is not None:
        participant_get(room_id=room_id, user_id=user_id)
        rooms = [room_id]
    else:
        rooms = list(Participant.objects.filter(user_id=user_id).values_list("room_id", flat=True))
    ids = get_backend().search(
        Query(
            terms=terms, room_ids=rooms, sender_id=sender_id, since=since, until=until,
            before_id=min(before_id, BIGINT_MAX) if before_id is not None else None,
            order=order, offset=offset, limit=limit,
        )
    )  # fmt: skip
    more, ids = len(ids) > limit, ids[:limit]
    visible = Message.objects.filter(
        Q(pk__in=ids), Q(room_id__in=rooms), deleted_at__isnull=True, kind=Message.Kind.TEXT
    )
    if sender_id is not None:
        visible = visible.filter(sender_id=sender_id)
    found = {m.pk: m for m in visible.select_related("sender")}
    shown = [found[pk] for pk in ids if pk in found and text.matches(found[pk].body, terms)]
    names = _room_names({m.room_id for m in shown}, user_id=user_id)
    next_cursor = next_before = None
    if more and ids:
        if order == "recent":
            next_cursor, next_before = _cursor_encode(order, ids[-1]), ids[-1]
        else:
            next_cursor = _cursor_encode(order, offset + limit)
    return SearchPage(
        hits=[search_hit_payload(m, terms=terms, room_name=names.get(m.room_id, "")) for m in shown],
        next_cursor=next_cursor,
        next_before=next_before,
    )


def index_status() -> dict:
    """The index's backend, size, and records of ``chat.messages`` not yet committed by
    ``chat-index`` and by ``chat-persist`` (``lag`` None, ``lag_error`` why, when the broker
    cannot say)."""
    from streams.pipeline import kafka
    from streams.pipeline.broker import Broker

    from .workers import IndexWorker

    status = {**get_backend().stats(), "lag": None, "lag_error": None}
    broker = Broker()
    try:
        topic = kafka.topic(kafka.MESSAGES)
        lag = {}
        for group in (IndexWorker.group_id, IndexWorker.follows):
            behind = broker.lag(kafka.topic(group), topic)
            lag[group] = sum(high - first for first, high in behind.values())
        status["lag"] = lag
    except Exception as exc:  # noqa: BLE001 - the broker's own words, for the operator
        status["lag_error"] = f"Kafka at {settings.KAFKA_BOOTSTRAP_SERVERS}: {exc}"
    finally:
        broker.close()
    return status
