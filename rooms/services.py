"""Writes about rooms, participants and read positions.

Every change reaches sockets only after commit. Membership changes also carry a control for
the user's group, so that user's sockets start or stop receiving the room at once; a removed
member's sockets drop the room before the room's own ``participant.removed`` arrives, so they
hear nothing further from it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import IntegrityError, transaction
from django.db.models import Case, Value, When

from streams import kafka
from streams.errors import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND, NOT_MEMBER, ChatError
from streams.realtime import Event, frame, publish_on_commit, room_group, user_group

from .models import Participant, Room
from .selectors import (
    NOT_MEMBER_DETAIL,
    active_user_get,
    inactive_or_unknown_user_ids,
    participant_get,
    room_ids_for_user,
)

log = logging.getLogger(__name__)

JOIN_ROOM = "room.join"  # control: sockets of the user start receiving the room
LEAVE_ROOM = "room.leave"  # control: sockets of the user stop receiving the room at once

MANAGERS = (Participant.Role.OWNER, Participant.Role.ADMIN)


def _direct_key(a: int, b: int) -> str:
    low, high = sorted((a, b))
    return f"{low}:{high}"


# -- rooms ----------------------------------------------------------------------------------------
@transaction.atomic
def room_create_group(*, owner, name: str, member_ids: list[int] = (), is_public: bool = False) -> Room:
    """Create a group room owned by ``owner`` with the given members."""
    name = (name or "").strip()
    if not name:
        raise ChatError(INVALID, "A group room needs a name.")
    others = sorted(set(member_ids) - {owner.pk})
    unknown = inactive_or_unknown_user_ids(user_ids=others)
    if unknown:
        raise ChatError(INVALID, f"No such users: {', '.join(map(str, sorted(unknown)))}.")
    room = Room.objects.create(kind=Room.Kind.GROUP, name=name[:100], created_by=owner, is_public=is_public)
    Participant.objects.create(room=room, user=owner, role=Participant.Role.OWNER)
    Participant.objects.bulk_create([Participant(room=room, user_id=uid) for uid in others])
    # Nobody listens to a brand-new room yet: only the members' own groups hear of it.
    _announce_joined(room.pk, [owner.pk, *others], to_room=False)
    return room


def room_open_direct(*, user, other) -> tuple[Room, bool]:
    """The direct room between two users, created on first use. Returns (room, created).

    Opening it again returns the same room; whoever had left it is back in.
    """
    if user.pk == other.pk:
        raise ChatError(INVALID, "A direct room needs two different users.")
    key = _direct_key(user.pk, other.pk)
    existing = Room.objects.filter(direct_key=key).first()
    if existing:
        _direct_rejoin(existing, [user.pk, other.pk])
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
            _announce_joined(room.pk, [user.pk, other.pk], to_room=False)
    except IntegrityError:  # a concurrent request created it first
        return Room.objects.get(direct_key=key), False
    return room, True


def _direct_rejoin(room: Room, user_ids: list[int]) -> None:
    present = set(Participant.objects.filter(room=room).values_list("user_id", flat=True))
    for user_id in user_ids:
        if user_id not in present:
            _participant_add(room_id=room.pk, user_id=user_id, role=Participant.Role.MEMBER)


def room_update(*, actor, room_id: int, name: str | None = None, is_public: bool | None = None) -> Room:
    """Rename a group room or change whether anyone may join it (owner or admin).

    Members get ``room.updated`` {room, name, is_public}.
    """
    participant = participant_get(room_id=room_id, user_id=actor.pk)
    if participant.room.kind == Room.Kind.GROUP and participant.role not in MANAGERS:
        raise ChatError(FORBIDDEN, "Only the room's owner or an admin can change it.")
    return room_update_by_moderator(room=participant.room, name=name, is_public=is_public)


def room_update_by_moderator(*, room: Room, name: str | None = None, is_public: bool | None = None) -> Room:
    """Change a group room's name or openness (no permission check: the admin authorises)."""
    if room.kind == Room.Kind.DIRECT:
        raise ChatError(INVALID, "A direct room has no name or visibility to change.")
    changes = {}
    if name is not None:
        name = name.strip()
        if not name:
            raise ChatError(INVALID, "A group room needs a name.")
        changes["name"] = name[:100]
    if is_public is not None:
        changes["is_public"] = bool(is_public)
    with transaction.atomic():
        # Only these columns: the persistence consumer writes last_seq concurrently.
        Room.objects.filter(pk=room.pk).update(**changes)
        room.refresh_from_db()
        if changes:
            publish_on_commit(
                [
                    (
                        room_group(room.pk),
                        frame("room.updated", room=room.pk, name=room.name, is_public=room.is_public),
                        None,
                    )
                ]
            )
    return room


def room_delete(*, actor, room_id: int) -> None:
    """Delete a group room with its messages and read positions (owner only).

    A direct room belongs to both people in it, so neither may delete it: each may leave it.
    """
    participant = participant_get(room_id=room_id, user_id=actor.pk)
    if participant.room.kind == Room.Kind.DIRECT:
        raise ChatError(FORBIDDEN, "A direct room cannot be deleted; leave it instead.")
    if participant.role != Participant.Role.OWNER:
        raise ChatError(FORBIDDEN, "Only the room's owner can delete it.")
    room_delete_by_moderator(room=participant.room)


def room_delete_by_moderator(*, room: Room) -> bool:
    """Delete any room (no permission check: the admin authorises). False if it was gone already."""
    with transaction.atomic():
        locked = Room.objects.select_for_update().filter(pk=room.pk).first()
        if locked is None:
            return False
        _purge(locked)
    return True


def _purge(room: Room) -> None:
    """Delete the room row (participants and messages cascade) and tell everyone after commit."""
    room_id = room.pk
    member_ids = list(Participant.objects.filter(room_id=room_id).values_list("user_id", flat=True))
    Room.objects.filter(pk=room_id).delete()
    events: list[Event] = [(room_group(room_id), frame("room.deleted", room=room_id), None)]
    events += [(user_group(uid), None, {"op": LEAVE_ROOM, "room": room_id}) for uid in member_ids]
    publish_on_commit(events)
    # The other consumer groups (index, audit) follow the bulk removal from the topic.
    transaction.on_commit(lambda: _announce_deleted(room_id), robust=True)


def _announce_deleted(room_id: int) -> None:
    try:
        kafka.produce(kafka.MESSAGES, key=room_id, value=kafka.envelope("room.deleted", room=room_id))
    except kafka.KafkaUnavailable:
        # The deletion stands; only the other consumer groups miss the news.
        log.exception("room %s was deleted but announcing room.deleted on Kafka failed", room_id)


# -- participants ------------------------------------------------------------------------------------
def participant_add(*, room: Room, user_id: int, role: str = Participant.Role.MEMBER) -> Participant:
    """Add a user to a room (no permission check: callers authorise)."""
    participant, _created = _participant_add(room_id=room.pk, user_id=user_id, role=role)
    return participant


def _participant_add(*, room_id: int, user_id: int, role: str) -> tuple[Participant, bool]:
    with transaction.atomic():
        last_seq = Room.objects.filter(pk=room_id).values_list("last_seq", flat=True).first()
        if last_seq is None:
            raise ChatError(NOT_FOUND, "No such room.")
        # A newcomer has nothing to catch up on: joining neither shows the whole history as
        # unread nor puts a "1" back on messages everyone had read.
        participant, created = Participant.objects.get_or_create(
            room_id=room_id, user_id=user_id, defaults={"role": role, "last_read_seq": last_seq}
        )
        if created:
            _announce_joined(room_id, [user_id], to_room=True)
    return participant, created


def _announce_joined(room_id: int, user_ids: list[int], *, to_room: bool) -> None:
    # Room first: the newcomer is not subscribed yet, so each frame reaches each socket once.
    events: list[Event] = []
    if to_room:
        events += [(room_group(room_id), frame("participant.added", room=room_id, user=uid), None) for uid in user_ids]
    events += [
        (user_group(uid), frame("participant.added", room=room_id, user=uid), {"op": JOIN_ROOM, "room": room_id})
        for uid in user_ids
    ]
    publish_on_commit(events)


def participant_invite(*, actor, room_id: int, user_id: int) -> Participant:
    """Add ``user_id`` to a group room (owner or admin); ``conflict`` if already in it."""
    participant = participant_get(room_id=room_id, user_id=actor.pk)
    if participant.room.kind == Room.Kind.DIRECT:
        raise ChatError(INVALID, "A direct room has exactly two members.")
    if participant.role not in MANAGERS:
        raise ChatError(FORBIDDEN, "Only the room's owner or an admin can invite.")
    active_user_get(user_id=user_id)
    invited, created = _participant_add(room_id=room_id, user_id=user_id, role=Participant.Role.MEMBER)
    if not created:
        raise ChatError(CONFLICT, "This user is already in the room.")
    return invited


def participant_join(*, user, room_id: int) -> tuple[Participant, bool]:
    """Join a public group room. Returns (participant, joined); joining twice changes nothing.

    A private room and a missing one give the same ``not_member``, so ids cannot be probed.
    """
    existing = Participant.objects.filter(room_id=room_id, user_id=user.pk).first()
    if existing is not None:
        return existing, False
    if not Room.objects.filter(pk=room_id, kind=Room.Kind.GROUP, is_public=True).exists():
        raise ChatError(NOT_MEMBER, NOT_MEMBER_DETAIL)
    return _participant_add(room_id=room_id, user_id=user.pk, role=Participant.Role.MEMBER)


def participant_remove(*, actor, room_id: int, user_id: int) -> None:
    """Remove ``user_id`` from the room; removing yourself is leaving.

    The owner may remove anyone else, an admin only plain members. Nobody can be removed from
    a direct room (each side may leave it).
    """
    if actor.pk == user_id:
        participant_leave(user=actor, room_id=room_id)
        return
    participant_get(room_id=room_id, user_id=actor.pk)
    with transaction.atomic():
        room, remover = _lock_membership(room_id=room_id, user_id=actor.pk)
        if room.kind == Room.Kind.DIRECT:
            raise ChatError(FORBIDDEN, "Nobody can be removed from a direct room.")
        if remover.role not in MANAGERS:
            raise ChatError(FORBIDDEN, "Only the room's owner or an admin can remove participants.")
        target = _participant_or_404(room_id=room_id, user_id=user_id)
        if target.role == Participant.Role.OWNER:
            raise ChatError(FORBIDDEN, "The owner cannot be removed.")
        if target.role == Participant.Role.ADMIN and remover.role != Participant.Role.OWNER:
            raise ChatError(FORBIDDEN, "Only the owner can remove an admin.")
        _remove(room, target)


def participant_leave(*, user, room_id: int) -> None:
    """Leave a room. An owner hands the room to the oldest admin, else the oldest member;
    the last one out deletes it."""
    participant_get(room_id=room_id, user_id=user.pk)
    with transaction.atomic():
        room, participant = _lock_membership(room_id=room_id, user_id=user.pk)
        _remove(room, participant)


def participant_remove_by_moderator(*, participant: Participant) -> None:
    """Remove anyone from any room (no permission check: the admin authorises)."""
    with transaction.atomic():
        room = Room.objects.select_for_update().filter(pk=participant.room_id).first()
        current = Participant.objects.filter(pk=participant.pk).first() if room else None
        if current is not None:
            _remove(room, current)


def rooms_leave_all(*, user) -> None:
    """Leave every room (account deletion): ownership passes on, emptied rooms are deleted."""
    for room_id in room_ids_for_user(user_id=user.pk):
        try:
            participant_leave(user=user, room_id=room_id)
        except ChatError:
            continue  # left or deleted concurrently


def participant_role_set(*, actor, room_id: int, user_id: int, role: str) -> Participant:
    """Make a member an admin or a member again, or hand the ownership over (owner only).

    Handing it over makes the previous owner an admin. Members get ``participant.updated``
    {room, user, role} for each change.
    """
    participant_get(room_id=room_id, user_id=actor.pk)
    with transaction.atomic():
        room, owner = _lock_membership(room_id=room_id, user_id=actor.pk)
        if room.kind == Room.Kind.DIRECT:
            raise ChatError(INVALID, "A direct room has no roles to change.")
        if owner.role != Participant.Role.OWNER:
            raise ChatError(FORBIDDEN, "Only the room's owner can change roles.")
        target = _participant_or_404(room_id=room_id, user_id=user_id)
        if target.pk == owner.pk:
            raise ChatError(INVALID, "The owner changes role only by handing the ownership to someone else.")
        _role_apply(room, target, role)
    return target


def participant_role_set_by_moderator(*, participant: Participant, role: str) -> Participant:
    """Set anyone's role (no permission check: the admin authorises); ``owner`` hands the room over."""
    with transaction.atomic():
        room = Room.objects.select_for_update().get(pk=participant.room_id)
        target = Participant.objects.get(pk=participant.pk)
        if room.kind == Room.Kind.DIRECT:
            raise ChatError(INVALID, "A direct room has no roles to change.")
        if target.role == Participant.Role.OWNER and role != Participant.Role.OWNER:
            raise ChatError(INVALID, "A room keeps its owner: make someone else the owner instead.")
        _role_apply(room, target, role)
    return target


def _role_apply(room: Room, target: Participant, role: str) -> None:
    if role not in Participant.Role.values:
        raise ChatError(INVALID, f"`role` must be one of {', '.join(Participant.Role.values)}.")
    if role == target.role:
        return
    changed = [(target, role)]
    if role == Participant.Role.OWNER:
        changed += [(p, Participant.Role.ADMIN) for p in Participant.objects.filter(room=room, role=role)]
    for participant, new_role in changed:
        participant.role = new_role
        participant.save(update_fields=["role"])
    _announce_roles(room.pk, changed)


def _lock_membership(*, room_id: int, user_id: int) -> tuple[Room, Participant]:
    # Membership changes of one room run one at a time, so an ownership hand-over cannot race.
    room = Room.objects.select_for_update().filter(pk=room_id).first()
    participant = Participant.objects.filter(room_id=room_id, user_id=user_id).first() if room else None
    if participant is None:
        raise ChatError(NOT_MEMBER, NOT_MEMBER_DETAIL)
    return room, participant


def _participant_or_404(*, room_id: int, user_id: int) -> Participant:
    target = Participant.objects.filter(room_id=room_id, user_id=user_id).first()
    if target is None:
        raise ChatError(NOT_FOUND, "No such participant.")
    return target


def _remove(room: Room, participant: Participant) -> None:
    """Delete a membership (room row locked), hand the ownership on, delete an emptied room."""
    participant.delete()
    event = frame("participant.removed", room=room.pk, user=participant.user_id)
    # The user's sockets drop the room (control) before the room group's copy arrives.
    publish_on_commit(
        [
            (user_group(participant.user_id), event, {"op": LEAVE_ROOM, "room": room.pk}),
            (room_group(room.pk), event, None),
        ]
    )
    remaining = Participant.objects.filter(room=room)
    if not remaining.exists():
        _purge(room)
        return
    if not remaining.filter(role=Participant.Role.OWNER).exists():
        successor = remaining.order_by(
            Case(When(role=Participant.Role.ADMIN, then=Value(0)), default=Value(1)), "joined_at", "pk"
        ).first()
        successor.role = Participant.Role.OWNER
        successor.save(update_fields=["role"])
        _announce_roles(room.pk, [(successor, Participant.Role.OWNER)])


def _announce_roles(room_id: int, changed: list[tuple[Participant, str]]) -> None:
    publish_on_commit(
        (room_group(room_id), frame("participant.updated", room=room_id, user=p.user_id, role=role), None)
        for p, role in changed
    )


# -- read positions ----------------------------------------------------------------------------------
def read_position_advance(*, user_id: int, room_id: int, seq: int) -> int:
    """Move the user's last-read position forward to ``seq`` (never backward).

    Returns the resulting position. Members of the room (the user's other sessions included)
    get ``room.read`` {room, user, seq, previous_seq} when the position moved.
    """
    participant = participant_get(room_id=room_id, user_id=user_id)
    seq = int(seq)
    if min(seq, participant.room.last_seq) <= participant.last_read_seq:
        return participant.last_read_seq  # the common repeat: no lock, no event
    return _read_position_move(participant, lambda current, last_seq: max(current, min(seq, last_seq)))


def read_position_mark_unread(*, user_id: int, room_id: int, seq: int) -> int:
    """Mark the messages from ``seq`` on as unread: the position moves back to ``seq - 1``.

    It never moves forward (marking as unread reads nothing). Returns the resulting position;
    members get ``room.read`` when it moved, so the per-message counters go back up.
    """
    participant = participant_get(room_id=room_id, user_id=user_id)
    seq = int(seq)
    if seq < 1 or seq > participant.room.last_seq:
        raise ChatError(NOT_FOUND, "No such message.")
    return _read_position_move(participant, lambda current, last_seq: min(current, seq - 1))


def _read_position_move(participant: Participant, target: Callable[[int, int], int]) -> int:
    with transaction.atomic():
        # Locked so that previous_seq in the event is exact even with concurrent reads.
        row = (
            Participant.objects.select_for_update(of=("self",)).select_related("room").filter(pk=participant.pk).first()
        )
        if row is None:
            raise ChatError(NOT_MEMBER, NOT_MEMBER_DETAIL)
        previous = row.last_read_seq
        position = target(previous, row.room.last_seq)
        if position == previous:
            return position
        Participant.objects.filter(pk=row.pk).update(last_read_seq=position)
        publish_on_commit(
            [
                (
                    room_group(row.room_id),
                    frame("room.read", room=row.room_id, user=row.user_id, seq=position, previous_seq=previous),
                    None,
                )
            ]
        )
    return position
