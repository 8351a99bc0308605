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
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, IntegerField, Value
from django.db.models.functions import Coalesce, Now

from streams.pipeline import kafka

from .models import Message
from .services import messages_erase
from .signals import messages_expired

log = logging.getLogger(__name__)


def _expired():
    """Messages past their room's retention, not yet deleted, in rooms not under legal hold."""
    days = Coalesce(F("room__retention_days"), Value(settings.CHAT_RETENTION_DAYS), output_field=IntegerField())
    period = ExpressionWrapper(F("retention") * Value(timedelta(days=1)), output_field=DurationField())
    return (
        Message.objects.alias(retention=days)
        .alias(cutoff=ExpressionWrapper(Now() - period, output_field=DateTimeField()))
        .filter(deleted_at__isnull=True, room__legal_hold=False, retention__gt=0, created_at__lt=F("cutoff"))
    )


def messages_expire(*, limit: int | None = None) -> tuple[int, bool]:
    """Delete one chunk of expired messages (at most ``limit``, CHAT_RETENTION_CHUNK by default) in
    one transaction. Returns (how many, whether a full chunk went: more may be waiting)."""
    limit = limit or settings.CHAT_RETENTION_CHUNK
    with transaction.atomic():
        # The oldest first, skipping rows a deletion or another run holds: two runs never wait on
        # each other, and each erases a distinct chunk.
        chunk = list(
            _expired()
            .order_by("pk")
            .select_for_update(of=("self",), skip_locked=True)
            .values_list("pk", flat=True)[:limit]
        )
        if not chunk:
            return 0, False
        erased = messages_erase(messages=Message.objects.filter(pk__in=chunk))
        messages_expired.send(sender=Message, message_ids=[pk for pk, _, _ in erased])
        spans: dict[int, list[int]] = {}
        for _, room_id, seq in erased:
            span = spans.setdefault(room_id, [seq, seq])
            span[0], span[1] = min(span[0], seq), max(span[1], seq)
        transaction.on_commit(lambda: _announce(spans))
    log.info("retention: %d messages expired in %d rooms", len(erased), len(spans))
    return len(erased), len(chunk) >= limit


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
