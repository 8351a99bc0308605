"""Writes about rooms, participants and read positions."""

from __future__ import annotations

from django.db import IntegrityError, transaction
from django.db.models.functions import Greatest

from streams.errors import INVALID, ChatError
from streams.realtime import frame, publish_on_commit, room_group, user_group

from .models import Participant, Room
from .selectors import participant_get

JOIN_ROOM = "room.join"  # control: sockets of the user start receiving the room
LEAVE_ROOM = "room.leave"  # control: sockets of the user stop receiving the room at once


def _direct_key(a: int, b: int) -> str:
    low, high = sorted((a, b))
    return f"{low}:{high}"


@transaction.atomic
def room_create_group(*, owner, name: str, member_ids: list[int] = (), is_public: bool = False) -> Room:
    """Create a group room owned by ``owner`` with the given members."""
    name = (name or "").strip()
    if not name:
        raise ChatError(INVALID, "A group room needs a name.")
    room = Room.objects.create(kind=Room.Kind.GROUP, name=name[:100], created_by=owner, is_public=is_public)
    Participant.objects.create(room=room, user=owner, role=Participant.Role.OWNER)
    others = sorted(set(member_ids) - {owner.pk})
    Participant.objects.bulk_create([Participant(room=room, user_id=uid) for uid in others])
    _announce_joined(room, [owner.pk, *others])
    return room


def room_open_direct(*, user, other) -> tuple[Room, bool]:
    """The direct room between two users, created on first use. Returns (room, created)."""
    if user.pk == other.pk:
        raise ChatError(INVALID, "A direct room needs two different users.")
    key = _direct_key(user.pk, other.pk)
    existing = Room.objects.filter(direct_key=key).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            room = Room.objects.create(kind=Room.Kind.DIRECT, direct_key=key, created_by=user)
            Participant.objects.bulk_create(
                [
                    Participant(room=room, user=user, role=Participant.Role.OWNER),
                    Participant(room=room, user=other, role=Participant.Role.MEMBER),
                ]
            )
            _announce_joined(room, [user.pk, other.pk])
    except IntegrityError:  # a concurrent request created it first
        return Room.objects.get(direct_key=key), False
    return room, True


def participant_add(*, room: Room, user_id: int, role: str = Participant.Role.MEMBER) -> Participant:
    """Add a user to a room (no permission check: callers authorise)."""
    participant, created = Participant.objects.get_or_create(
        room=room, user_id=user_id, defaults={"role": role, "last_read_seq": 0}
    )
    if created:
        _announce_joined(room, [user_id])
    return participant


def _announce_joined(room: Room, user_ids: list[int]) -> None:
    publish_on_commit(
        (user_group(uid), frame("participant.added", room=room.pk, user=uid), {"op": JOIN_ROOM, "room": room.pk})
        for uid in user_ids
    )


def read_position_advance(*, user_id: int, room_id: int, seq: int) -> int:
    """Move the user's last-read position forward to ``seq`` (never backward).

    Returns the resulting position. Members of the room (the user's other sessions included)
    get ``room.read`` when the position moved.
    """
    participant = participant_get(room_id=room_id, user_id=user_id)
    seq = min(int(seq), participant.room.last_seq)
    if seq <= participant.last_read_seq:
        return participant.last_read_seq
    with transaction.atomic():
        Participant.objects.filter(pk=participant.pk).update(last_read_seq=Greatest("last_read_seq", seq))
        position = Participant.objects.values_list("last_read_seq", flat=True).get(pk=participant.pk)
        publish_on_commit([(room_group(room_id), frame("room.read", room=room_id, user=user_id, seq=position), None)])
    return position
