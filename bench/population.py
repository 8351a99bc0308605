"""Benchmark data, made with the ORM and the project's own services, and the storage checks.

Needs Django set up (the orchestrator does it; tests have pytest-django).
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password
from django.db import connection
from django.utils import timezone
from rest_framework.authtoken.models import Token

from chat_messages.models import Message
from chat_messages.services import messages_store, send_envelope
from rooms.models import Room
from rooms.services import room_create_group


def users_create(*, prefix: str, count: int) -> list[tuple[int, str]]:
    """``count`` users that cannot log in with a password, each with an API token: [(id, key)].

    Bulk-created: hashing a real password per user would take minutes for thousands of users.
    """
    user_model = get_user_model()
    unusable = make_password(None)
    users = user_model.objects.bulk_create(
        [user_model(username=f"{prefix}{i}", password=unusable) for i in range(count)]
    )
    tokens = Token.objects.bulk_create([Token(key=Token.generate_key(), user=user) for user in users])
    return [(token.user.pk, token.key) for token in tokens]


def rooms_create(*, prefix: str, member_ids: list[list[int]]) -> list[int]:
    """One group room per list of user ids, owned by its first user; returns the room ids."""
    user_model = get_user_model()
    rooms = []
    for index, ids in enumerate(member_ids):
        owner = user_model.objects.get(pk=ids[0])
        rooms.append(room_create_group(owner=owner, name=f"{prefix}{index}", member_ids=ids[1:]).pk)
    return rooms


def body_of(size: int, label: str) -> str:
    return (label + " " + "x" * size)[:size]


def history_fill(*, room_id: int, sender_ids: list[int], count: int, payload: int = 100) -> int:
    """Store ``count`` messages in a room through the persistence service; returns its last seq."""
    for start in range(0, count, 500):
        sends = [
            send_envelope(
                room_id=room_id,
                sender_id=sender_ids[i % len(sender_ids)],
                client_msg_id=uuid.uuid4(),
                body=body_of(payload, f"history {i}"),
            )
            for i in range(start, min(count, start + 500))
        ]
        messages_store(sends=sends)
    return Room.objects.values_list("last_seq", flat=True).get(pk=room_id)


def orm_insert_per_row(*, room_id: int, sender_id: int, count: int, payload: int = 100) -> float:
    """The naive way to store a chat: one ``Message.objects.create`` per message (autocommit).

    Returns the seconds it took. Seqs are numbered locally: this measures the insert alone,
    without the room lock and read positions the real path also keeps.
    """
    start = time.perf_counter()
    for seq in range(1, count + 1):
        Message.objects.create(
            room_id=room_id,
            seq=seq,
            sender_id=sender_id,
            client_msg_id=uuid.uuid4(),
            body=body_of(payload, f"orm {seq}"),
            created_at=timezone.now(),
        )
    return time.perf_counter() - start


def stored_rows(*, room_ids: list[int]) -> int:
    """How many messages the rooms hold now (their last seqs, kept in the storing transaction)."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COALESCE(SUM(last_seq), 0) FROM {Room._meta.db_table} WHERE id = ANY(%s)", [room_ids])
        return int(cursor.fetchone()[0])


@dataclass
class StoredCheck:
    """Does the database hold every accepted message exactly once, numbered without gaps?"""

    accepted: int = 0
    stored: int = 0
    missing: int = 0
    duplicates: int = 0
    unacknowledged: int = 0  # stored although the client never heard "accepted"
    rooms_with_gaps: int = 0

    @property
    def exact(self) -> bool:
        return self.missing == 0 and self.duplicates == 0 and self.rooms_with_gaps == 0


def stored_check(*, accepted: dict) -> StoredCheck:
    """Compare what the server accepted ({room id: [client_msg_id, ...]}) with what it stored."""
    check = StoredCheck()
    for room_id, cmids in accepted.items():
        rows = list(Message.objects.filter(room_id=int(room_id)).values_list("seq", "client_msg_id"))
        stored = Counter(str(cmid) for _, cmid in rows)
        wanted = set(cmids)
        seqs = sorted(seq for seq, _ in rows)
        last_seq = Room.objects.values_list("last_seq", flat=True).get(pk=int(room_id))
        check.accepted += len(wanted)
        check.stored += len(rows)
        check.missing += sum(1 for cmid in wanted if not stored[cmid])
        check.duplicates += sum(n - 1 for n in stored.values() if n > 1)
        check.unacknowledged += sum(1 for cmid in stored if cmid not in wanted)
        if seqs != list(range(1, len(seqs) + 1)) or last_seq != len(seqs):
            check.rooms_with_gaps += 1
    return check
