"""Retention: messages older than their room's retention period are deleted for everyone.

A room's ``retention_days`` (NULL: the site's CHAT_RETENTION_DAYS; 0: kept for ever) sets the
period; a room under legal hold keeps everything. An expired message gets the same cleanup as a
deletion (services.messages_erase), the search index drops it (``messages.expired`` announced on
Kafka), the backup follows by change capture, and the drawer's saved copies lose their text
unless CHAT_RETENTION_KEEPS_DRAWER (the ``messages_expired`` signal, received by the drawer).

Work goes in chunks of CHAT_RETENTION_CHUNK messages, one transaction each: a crash between
chunks loses nothing (each chunk committed is done, the next run picks up what is left).
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection, transaction

from rooms.models import Room
from streams.pipeline import kafka

from .models import Message
from .services import messages_erase
from .signals import messages_expired

log = logging.getLogger(__name__)


def _expired_ids(limit: int) -> list[int]:
    """Up to ``limit`` ids of messages past their room's retention and not deleted yet, in rooms
    not under legal hold: one statement, each room probed through its ``message_alive_by_age``
    index (its oldest standing messages first), so neither the messages deleted already nor the
    rooms that keep everything are walked again and again."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT m.id FROM {Room._meta.db_table} AS r CROSS JOIN LATERAL ("
            f"  SELECT id, created_at FROM {Message._meta.db_table}"
            "   WHERE room_id = r.id AND deleted_at IS NULL"
            "   AND created_at < now() - make_interval(days => COALESCE(r.retention_days, %s))"
            "   ORDER BY created_at, id LIMIT %s"
            ") AS m"
            " WHERE NOT r.legal_hold AND COALESCE(r.retention_days, %s) > 0"
            " LIMIT %s",
            [settings.CHAT_RETENTION_DAYS, limit, settings.CHAT_RETENTION_DAYS, limit],
        )
        return [row[0] for row in cursor.fetchall()]


def messages_expire(*, limit: int | None = None) -> tuple[int, bool]:
    """Delete one chunk of expired messages (at most ``limit``, CHAT_RETENTION_CHUNK by default) in
    one transaction. Returns (how many, whether a full chunk went: more may be waiting)."""
    limit = limit or settings.CHAT_RETENTION_CHUNK
    with transaction.atomic():
        candidates = _expired_ids(limit)
        if not candidates:
            return 0, False
        # Skipping rows a deletion or another run holds: two runs never wait on each other. All of
        # them held elsewhere: that run finishes the work, this one stops.
        chunk = Message.objects.filter(pk__in=candidates, deleted_at__isnull=True).select_for_update(skip_locked=True)
        erased = messages_erase(messages=Message.objects.filter(pk__in=list(chunk.values_list("pk", flat=True))))
        if not erased:
            return 0, False
        messages_expired.send(sender=Message, message_ids=[pk for pk, _, _ in erased])
        spans: dict[int, list[int]] = {}
        for _, room_id, seq in erased:
            span = spans.setdefault(room_id, [seq, seq])
            span[0], span[1] = min(span[0], seq), max(span[1], seq)
        transaction.on_commit(lambda: _announce(spans))
    log.info("retention: %d messages expired in %d rooms", len(erased), len(spans))
    return len(erased), len(candidates) >= limit


def _announce(spans: dict[int, list[int]]) -> None:
    """Announce each room's expired span on the messages topic, keyed by room (its order kept):
    the search index drops them (search/workers.py); the persist group ignores it (done here)."""
    records = [
        (room_id, kafka.encode(kafka.envelope("messages.expired", room=room_id, from_seq=first, up_to_seq=last)))
        for room_id, (first, last) in spans.items()
    ]
    try:
        kafka.produce_many(kafka.MESSAGES, records)
    except kafka.KafkaUnavailable:
        # The deletion stands; the index keeps the documents until a rebuild sweeps them, and the
        # search selector never shows a deleted message meanwhile.
        log.exception("messages expired in rooms %s but announcing it on Kafka failed", sorted(spans))
