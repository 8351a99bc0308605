"""Full-text search of messages, over the rooms the searching user is in.

PostgreSQL full-text search with the ``simple`` configuration (no stemming, no stop words: chat
is multilingual and short, and a stemmer for one language mangles the others). The match uses the
same expression as the GIN index of migration 0002, ``to_tsvector('simple', body)``, so the index
serves it; a change to one needs the same change to the other.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.contrib.postgres.search import SearchQuery, SearchVectorField
from django.db.models import F, Func, Subquery

from rooms.models import Participant
from rooms.selectors import participant_get
from streams.errors import INVALID, ChatError
from streams.realtime.protocol import BIGINT_MAX, DELETED_USER

from .models import Message

SEARCH_PAGE_SIZE = 20
SEARCH_PAGE_SIZE_MAX = 100
SEARCH_QUERY_MAX_CHARS = 200


class BodyVector(Func):
    """``to_tsvector('simple', body)``: the indexed expression, written out so it matches the index."""

    template = "to_tsvector('simple'::regconfig, %(expressions)s)"
    arity = 1
    output_field = SearchVectorField()


@dataclass
class SearchPage:
    """Hits newest first; ``next_before`` asks for the older ones (None at the end)."""

    hits: list[dict]
    next_before: int | None


def search_hit_payload(message: Message) -> dict:
    """A hit as clients get it: where the message is (room, seq), who said it and what."""
    return {
        "id": message.pk,
        "room": message.room_id,
        "seq": message.seq,
        "sender": {
            "id": message.sender_id,
            "username": message.sender.username if message.sender_id else DELETED_USER,
        },
        "body": message.body,
        "created_at": message.created_at.isoformat(),
        "edited_at": message.edited_at.isoformat() if message.edited_at else None,
    }


def message_search(
    *,
    user_id: int,
    query: str,
    room_id: int | None = None,
    before: int | None = None,
    limit: int = SEARCH_PAGE_SIZE,
) -> SearchPage:
    """Messages containing every word of ``query``, from the rooms the user is in now, newest first.

    ``room_id`` narrows the search to one room (``not_member`` if the user is not in it, as for
    every other room call); ``before`` is the ``next_before`` of the previous page. Deleted
    messages and system lines ("alice added bob") are never found. Words match whole
    (case-insensitive), in any order.
    """
    query = (query or "").strip()
    if not query:
        raise ChatError(INVALID, "`q` must contain a word to search for.")
    if len(query) > SEARCH_QUERY_MAX_CHARS:
        raise ChatError(INVALID, f"`q` has at most {SEARCH_QUERY_MAX_CHARS} characters.")
    if not 1 <= limit <= SEARCH_PAGE_SIZE_MAX:
        raise ChatError(INVALID, f"`limit` must be between 1 and {SEARCH_PAGE_SIZE_MAX}.")
    if room_id is not None:
        participant_get(room_id=room_id, user_id=user_id)
        rooms = [room_id]
    else:
        # A subquery, not a list: a user in thousands of rooms still sends one short statement.
        rooms = Subquery(Participant.objects.filter(user_id=user_id).values("room_id"))
    messages = (
        Message.objects.filter(room_id__in=rooms, deleted_at__isnull=True, kind=Message.Kind.TEXT)
        .alias(document=BodyVector(F("body")))
        .filter(document=SearchQuery(query, config="simple", search_type="plain"))
    )
    if before is not None:
        messages = messages.filter(pk__lt=min(before, BIGINT_MAX))
    rows = list(messages.select_related("sender").order_by("-pk")[: limit + 1])
    page = rows[:limit]
    return SearchPage(
        hits=[search_hit_payload(m) for m in page],
        next_before=page[-1].pk if len(rows) > limit else None,
    )
