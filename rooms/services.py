"""Writes about rooms, participants and read positions.

Functions taking an ``actor_id`` or ``user_id`` authorise that user themselves (REST and
WebSocket adapters call them); the ``*_by_moderator`` ones serve the Django admin, whose
permissions have already authorised the moderator. Every change reaches sockets only after
commit. Membership changes also carry a control for the user's group, so that user's sockets
start or stop receiving the room at once.

A group room's joins, leaves, invitations, removals and renames also become system lines in its
history: after commit a ``room.event`` envelope goes on ``chat.messages`` keyed by room, so the
persistence consumer (chat_messages, which this app may not import) gives it the room's next seq.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth import get_user_model
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Case, Value, When
from django.utils import timezone

from audit.services import audit_record
from streams.errors import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND, NOT_MEMBER, TOO_LARGE, ChatError
from streams.pipeline import kafka
from streams.realtime.hub import Event, frame, publish_on_commit, room_group, user_group
from streams.realtime.protocol import (
    BIGINT_MAX,
    OP_JOIN_ROOM,
    OP_LEAVE_ROOM,
    OP_ROOM_MUTE,
    ROOM_EVENT,
    ROOM_EVENTS,
    is_json_int,
)

from .models import Participant, Room, RoomSanction
from .selectors import (
    NOT_MEMBER_DETAIL,
    participant_get,
    participant_get_with_role,
    participant_target_get,
    room_ban_check,
    until_text,
)

log = logging.getLogger(__name__)


OWNER_ONLY = (Participant.Role.OWNER,)
# A room's retention_days is "not given" in a partial update (None means: follow the site).
UNCHANGED = object()
RETENTION_DAYS_MAX = 36500

NAME_MAX_CHARS = Room._meta.get_field("name").max_length
TOPIC_MAX_CHARS = Room._meta.get_field("topic").max_length
# The house rule on text (chat_messages.services.body_validate): no C0 control character and no
# lone surrogate. A name and a topic are one line, so tab and line breaks are refused too.
_NOT_IN_A_LINE = re.compile("[\x00-\x1f\ud800-\udfff]")


def _direct_key(a: int, b: int) -> str:
    low, high = sorted((a, b))
    return f"{low}:{high}"


def _active_user_ids(user_ids) -> set[int]:
    return set(get_user_model().objects.filter(pk__in=set(user_ids), is_active=True).values_list("pk", flat=True))


def _people(*user_ids: int | None) -> dict[int, dict]:
    """{id: {id, username}} of the given users (None is skipped), in one query."""
    wanted = {uid for uid in user_ids if uid is not None}
    if not wanted:
        return {}
    rows = get_user_model().objects.filter(pk__in=wanted).values_list("pk", "username")
    return {pk: {"id": pk, "username": username} for pk, username in rows}


# -- rooms ------------------------------------------------------------------------------------------
def _line_check(value: str, field: str) -> str:
    bad = _NOT_IN_A_LINE.search(value)
    if bad is not None:
        raise ChatError(
            INVALID, f"`{field}` may not contain the control character U+{ord(bad.group()):04X} (at {bad.start()})."
        )
    return value


def room_name_clean(name) -> str:
    """A group room's name as stored: one line, surrounding blanks dropped, at most NAME_MAX_CHARS."""
    if not isinstance(name, str) or not name.strip():
        raise ChatError(INVALID, "A group room needs a name.")
    return _line_check(name.strip(), "name")[:NAME_MAX_CHARS]


def room_topic_clean(topic) -> str:
    """A topic as stored: one line of at most TOPIC_MAX_CHARS, surrounding blanks dropped ("" has none)."""
    if not isinstance(topic, str):
        raise ChatError(INVALID, "`topic` must be a string.")
    topic = _line_check(topic.strip(), "topic")
    if len(topic) > TOPIC_MAX_CHARS:
        raise ChatError(TOO_LARGE, f"The topic is {len(topic)} characters; the limit is {TOPIC_MAX_CHARS}.")
    return topic


@transaction.atomic
def room_create_group(
    *, owner, name: str, member_ids: list[int] = (), is_public: bool = False, topic: str = ""
) -> Room:
    """Create a group room owned by ``owner`` with the given members (and a topic, if given)."""
    name = room_name_clean(name or "")
    topic = room_topic_clean(topic)
    others = sorted(set(member_ids) - {owner.pk})
    unknown = set(others) - _active_user_ids(others)
    if unknown:
        raise ChatError(INVALID, f"No such users: {sorted(unknown)}.")
    room = Room.objects.create(kind=Room.Kind.GROUP, name=name, topic=topic, created_by=owner, is_public=is_public)
    Participant.objects.create(room=room, user=owner, role=Participant.Role.OWNER)
    Participant.objects.bulk_create([Participant(room=room, user_id=uid) for uid in others])
    # Nobody listens to a brand-new room's group yet: the members' own groups are enough.
    _announce_joined(room, [owner.pk, *others], to_room=False, by={"id": owner.pk, "username": owner.username})
    return room


def room_open_direct(*, user, other) -> tuple[Room, bool]:
    """The direct room between two users, created on first use. Returns (room, created).

    Opening it again returns the same room, with whichever of the two had left it back in.
    """
    if user.pk == other.pk:
        # The person asked for is the asker (say so: "needs two users" reads like a bug). A note
        # to oneself would be a one-member direct room, which every reader of rooms rules out;
        # the talk drawer is where one keeps things for oneself.
        raise ChatError(INVALID, "That's you: a direct room is with someone else.")
    key = _direct_key(user.pk, other.pk)
    existing = Room.objects.filter(direct_key=key).first()
    if existing:
        with transaction.atomic():
            for uid in (user.pk, other.pk):
                participant_add(room=existing, user_id=uid)
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
            _announce_joined(room, [user.pk, other.pk], to_room=False)
    except IntegrityError:  # a concurrent request created it first
        return Room.objects.get(direct_key=key), False
    return room, True


@transaction.atomic
def room_update(
    *,
    user_id: int,
    room_id: int,
    name: str | None = None,
    topic: str | None = None,
    is_public: bool | None = None,
    retention_days: int | None | object = UNCHANGED,
) -> Room:
    """Rename a group room, change its topic, or open/close it to joining (its owner or an admin);
    set how many days its messages are kept (its owner only; None: the site's period).

    Members get ``room.updated`` {room, name, topic, is_public, owner}.
    """
    _lock_room(room_id)
    participant = participant_get_with_role(
        room_id=room_id, user_id=user_id, roles=Participant.MANAGERS, action="change it"
    )
    if retention_days is not UNCHANGED:
        room_retention_set(room=participant.room, retention_days=retention_days, role=participant.role)
    return _room_change(participant.room, name=name, topic=topic, is_public=is_public, actor_id=user_id)


def room_retention_set(*, room: Room, retention_days: int | None, role: str | None = None) -> Room:
    """Set how many days the room's messages are kept (chat_messages/retention.py): None follows
    CHAT_RETENTION_DAYS, 0 keeps them for ever. Through the REST call its owner only (``role``);
    an admin sets it in the admin. A legal hold suspends it whatever it says."""
    if role is not None and role not in OWNER_ONLY:
        raise ChatError(FORBIDDEN, "Only the room's owner may change how long its messages are kept.")
    if room.kind == Room.Kind.DIRECT:
        raise ChatError(INVALID, "A direct room follows the site's retention period.")
    if retention_days is not None and (
        not is_json_int(retention_days, minimum=0) or retention_days > RETENTION_DAYS_MAX
    ):
        raise ChatError(INVALID, f"retention_days must be null or 0..{RETENTION_DAYS_MAX}.")
    Room.objects.filter(pk=room.pk).update(retention_days=retention_days)
    room.retention_days = retention_days
    return room


@transaction.atomic
def room_update_by_moderator(
    *, room: Room, name: str | None = None, topic: str | None = None, is_public: bool | None = None, actor=None
) -> Room:
    """Like :func:`room_update`, for a moderator in the admin (``actor``: recorded in the audit log)."""
    with transaction.atomic():
        # From the row: the admin hands in an instance its form has changed already.
        before = Room.objects.filter(pk=room.pk).values("name", "topic", "is_public").first() or {}
        room = _room_change(room, name=name, topic=topic, is_public=is_public)
        changed = [f for f, old in before.items() if getattr(room, f) != old]
        if changed:
            audit_record(
                action="room.updated_by_moderator", actor=actor, target_type="room", target_id=room.pk,
                before={f: before[f] for f in changed}, after={f: getattr(room, f) for f in changed},
                detail=f"room {room.pk}: {', '.join(changed)}",
            )  # fmt: skip
    return room


def room_retention_set_by_moderator(*, room: Room, retention_days: int | None, actor=None) -> Room:
    """Like :func:`room_retention_set`, for an admin in the admin (any room kind; audited)."""
    with transaction.atomic():
        before = Room.objects.filter(pk=room.pk).values_list("retention_days", flat=True).first()
        if before == retention_days:
            return room
        if retention_days is not None and not is_json_int(retention_days, minimum=0):
            raise ChatError(INVALID, "retention_days must be null or a number of days.")
        Room.objects.filter(pk=room.pk).update(retention_days=retention_days)
        room.retention_days = retention_days
        audit_record(
            action="room.retention_set", actor=actor, target_type="room", target_id=room.pk,
            before={"retention_days": before}, after={"retention_days": retention_days},
            detail=f"room {room.pk}: messages kept {retention_days if retention_days is not None else 'site'} days",
        )  # fmt: skip
    return room


def room_legal_hold_set(*, room: Room, hold: bool, actor) -> Room:
    """Put the room under legal hold (retention deletes none of its messages) or lift it: a site
    admin's (superuser's) act only, recorded with who and when, and in the audit log."""
    if actor is None or not getattr(actor, "is_superuser", False):
        raise ChatError(FORBIDDEN, "Only a site admin may set or lift a legal hold.")
    with transaction.atomic():
        before = (
            Room.objects.select_for_update()
            .filter(pk=room.pk)
            .values("legal_hold", "legal_hold_by", "legal_hold_at")
            .first()
        )
        if before is None or before["legal_hold"] == bool(hold):
            return room
        changes = {"legal_hold": bool(hold), "legal_hold_by": actor.get_username() if hold else "",
                   "legal_hold_at": timezone.now() if hold else None}  # fmt: skip
        Room.objects.filter(pk=room.pk).update(**changes)
        for field, value in changes.items():
            setattr(room, field, value)
        audit_record(
            action="room.legal_hold_set" if hold else "room.legal_hold_lifted", actor=actor, target_type="room",
            target_id=room.pk, before={"legal_hold": before["legal_hold"]}, after={"legal_hold": bool(hold)},
            detail=f"room {room.pk} ({room}): legal hold {'set' if hold else 'lifted'}",
        )  # fmt: skip
    return room


def _room_change(
    room: Room, *, name: str | None, topic: str | None, is_public: bool | None, actor_id: int | None = None
) -> Room:
    if room.kind == Room.Kind.DIRECT:
        raise ChatError(INVALID, "A direct room has no name, topic or visibility to change.")
    changes = {}
    renamed = False
    if name is not None:
        changes["name"] = room_name_clean(name)
        # From the row, not ``room``: the admin hands in an instance its form has changed already.
        renamed = changes["name"] != Room.objects.filter(pk=room.pk).values_list("name", flat=True).first()
    if topic is not None:
        changes["topic"] = room_topic_clean(topic)
    if is_public is not None:
        changes["is_public"] = bool(is_public)
    if changes:
        # Only these columns: the persistence consumer writes last_seq and the preview meanwhile.
        Room.objects.filter(pk=room.pk).update(**changes)
        for field, value in changes.items():
            setattr(room, field, value)
        _announce_room_updated(room)
    if renamed:
        _line_on_commit(room, "renamed", user=_people(actor_id).get(actor_id), name=room.name)
    return room


def room_delete(*, user_id: int, room_id: int) -> None:
    """Delete a group room with its messages and read positions (its owner only).

    A direct room belongs to both its users, so neither may delete it; each may leave it.
    """
    with transaction.atomic():
        _lock_room(room_id)
        participant = participant_get_with_role(room_id=room_id, user_id=user_id, roles=OWNER_ONLY, action="delete it")
        if participant.room.kind == Room.Kind.DIRECT:
            raise ChatError(FORBIDDEN, "A direct room cannot be deleted; leave it instead.")
        _room_destroy(participant.room)


def room_delete_by_moderator(*, room: Room, actor=None) -> None:
    """Delete any room from the admin, with the same effects as its owner deleting it."""
    with transaction.atomic():
        members = Participant.objects.filter(room_id=room.pk).count()
        audit_record(
            action="room.deleted_by_moderator", actor=actor, target_type="room", target_id=room.pk,
            before={"kind": room.kind, "name": room.name, "topic": room.topic, "is_public": room.is_public,
                    "members": members, "last_seq": room.last_seq},
            detail=f"room {room.pk} ({room}) with {members} member(s) and {room.last_seq} message(s)",
        )  # fmt: skip
        _room_destroy(room)


def _room_destroy(room: Room) -> None:
    # Locked first, like every membership change: a member added concurrently is either
    # counted here (and told to drop the room) or finds the room gone.
    _lock_room(room.pk)
    rooms_destroy(room_ids=[room.pk])


def rooms_destroy(*, room_ids: list[int]) -> None:
    """Delete rooms with their participants and messages, a fixed number of statements per table.

    For the rooms' members: ``room.deleted`` in each room, then their sockets drop it; on Kafka:
    ``room.deleted`` per room after commit, so the other consumer groups follow. Callers hold the
    rooms' locks (id order) and the transaction.

    Deleting through the ORM alone would load every message of the rooms and delete them a
    hundred at a time, because other rows (drawer entries) point at messages. Here the rows
    that point at the rooms are found through the model's relations (rooms knows no app above
    it by name): what points at those rows is let go in bulk as its foreign key asks (SET_NULL:
    the drawer keeps its snapshot; CASCADE: deleted), then each table is emptied of the rooms'
    rows in one statement, and the rooms go last.
    """
    if not room_ids:
        return
    members = list(Participant.objects.filter(room_id__in=room_ids).values_list("room_id", "user_id"))
    for relation in _reverse_relations(Room):
        rows = relation.related_model._base_manager.filter(**{f"{relation.field.name}__in": room_ids})
        if relation.on_delete is models.SET_NULL:
            rows.update(**{relation.field.name: None})
            continue
        for inner in _reverse_relations(relation.related_model):
            linked = inner.related_model._base_manager.filter(**{f"{inner.field.name}__in": rows})
            if inner.on_delete is models.SET_NULL:
                linked.update(**{inner.field.name: None})
            else:
                linked.delete()
        _delete_where(relation.related_model._meta.db_table, relation.field.column, room_ids)
    # Everything pointing at the rooms is handled: the ORM's delete would only look again.
    _delete_where(Room._meta.db_table, Room._meta.pk.column, room_ids)
    events: list[Event] = [(room_group(room_id), frame("room.deleted", room=room_id), None) for room_id in room_ids]
    events += [(user_group(uid), None, {"op": OP_LEAVE_ROOM, "room": room_id}) for room_id, uid in members]
    publish_on_commit(events)
    ids = list(room_ids)
    transaction.on_commit(lambda: _announce_rooms_deleted(ids))


def _delete_where(table: str, column: str, ids: list[int]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {table} WHERE {column} = ANY(%s)", [list(ids)])


def _reverse_relations(model) -> list:
    """The one-to-many links pointing at ``model`` that its deletion must handle (hidden ones too):
    CASCADE or SET_NULL; anything else (PROTECT) is refused rather than guessed at."""
    relations = [f for f in model._meta.get_fields(include_hidden=True) if f.auto_created and not f.concrete]
    relations = [f for f in relations if not f.many_to_many and f.on_delete is not models.DO_NOTHING]
    unhandled = [f for f in relations if f.on_delete not in (models.CASCADE, models.SET_NULL)]
    if unhandled:
        raise TypeError(f"rooms_destroy cannot handle {unhandled[0]} ({unhandled[0].on_delete.__name__})")
    return relations


def _announce_rooms_deleted(room_ids: list[int]) -> None:
    # The other consumer groups (index, audit) follow bulk removals from the topic.
    envelopes = [(room_id, kafka.envelope("room.deleted", room=room_id)) for room_id in room_ids]
    _produce(envelopes, failure=f"rooms {room_ids} were deleted but announcing room.deleted on Kafka failed")


def _produce(envelopes: list[tuple[int, dict]], *, failure: str) -> None:
    """Produce ``(room id, envelope)`` pairs to ``chat.messages`` (after a commit): what the
    database did stands whatever the broker says, so a failure is logged, not raised."""
    try:
        kafka.produce_many(kafka.MESSAGES, [(key, kafka.encode(envelope)) for key, envelope in envelopes])
    except Exception:
        log.exception(failure)


def _line_on_commit(
    room: Room, event: str, *, user: dict | None, by: dict | None = None, name: str | None = None
) -> None:
    """After commit, ask for a system line in a group room's history (``user`` and ``by``: {id,
    username} or None).

    A ``room.event`` envelope keyed by room, so the line takes its place among the room's
    messages; its event_id makes storing it idempotent. A broker that cannot be reached loses
    the line (logged), never the change itself. Direct rooms get none: a pair's comings and
    goings (reopening it brings one back) are not news.
    """
    if room.kind != Room.Kind.GROUP:
        return
    if event not in ROOM_EVENTS:
        raise ValueError(f"unknown room event {event!r}")
    extra = {} if name is None else {"name": name}
    envelope = kafka.envelope(ROOM_EVENT, room=room.pk, event=event, user=user, by=by, **extra)
    failure = f"room {room.pk}: {event} stands but its system line could not be put on Kafka"
    transaction.on_commit(lambda: _produce([(room.pk, envelope)], failure=failure))


def _announce_room_updated(room: Room) -> None:
    owner_id = (
        Participant.objects.filter(room_id=room.pk, role=Participant.Role.OWNER)
        .values_list("user_id", flat=True)
        .first()
    )
    update = frame(
        "room.updated", room=room.pk, name=room.name, topic=room.topic, is_public=room.is_public, owner=owner_id
    )
    publish_on_commit([(room_group(room.pk), update, None)])


def _lock_room(room_id: int) -> None:
    """Take the room row's lock: membership and role changes of one room happen one at a time."""
    list(Room.objects.select_for_update().filter(pk=room_id).values_list("id", flat=True))


# -- participants ------------------------------------------------------------------------------------
def participant_add(
    *, room: Room, user_id: int, role: str = Participant.Role.MEMBER, by_id: int | None = None, moderator=None
) -> Participant:
    """Add a user to a room (no permission check: callers authorise); ``by_id`` invited them.

    ``moderator``: a site moderator adding them from the admin, recorded in the audit log.

    A newcomer starts at the room's newest message: what was said before is not "unread" for
    them, and messages everyone had read do not get a "1" back. A group room gets the system
    line "invited" (by ``by_id``) or "joined", and the invited user's sockets hear who added them.
    """
    with transaction.atomic():
        last_seq = Room.objects.select_for_update().filter(pk=room.pk).values_list("last_seq", flat=True).first()
        if last_seq is None:
            raise ChatError(NOT_FOUND, "The room was deleted.")
        if not Participant.objects.filter(room_id=room.pk, user_id=user_id).exists():
            # A moderator's ban keeps them out whoever adds them (themself, an inviter, the admin).
            room_ban_check(room_id=room.pk, user_id=user_id, themself=by_id is None and moderator is None)
        participant, created = Participant.objects.get_or_create(
            room_id=room.pk, user_id=user_id, defaults={"role": role, "last_read_seq": last_seq}
        )
        if created:
            people = _people(user_id, by_id) if room.kind == Room.Kind.GROUP else {}
            by = people.get(by_id)
            _announce_joined(room, [user_id], by=by)
            _line_on_commit(room, "invited" if by else "joined", user=people.get(user_id), by=by)
            if moderator is not None:
                _audit_membership("room.member_added_by_moderator", moderator, participant, after=True)
    return participant


def _announce_joined(room: Room, user_ids: list[int], *, to_room: bool = True, by: dict | None = None) -> None:
    """``participant.added`` to the room and to each newcomer's sockets (with a control that
    subscribes them); the newcomer's copy names ``by`` ({id, username}), who added them."""
    # The room's copy first: the newcomer is not subscribed yet, so each socket gets one frame.
    events: list[Event] = []
    if to_room:
        events += [(room_group(room.pk), frame("participant.added", room=room.pk, user=uid), None) for uid in user_ids]
    for uid in user_ids:
        extra = {"by": by} if by is not None and by["id"] != uid else {}
        added = frame("participant.added", room=room.pk, user=uid, **extra)
        events.append((user_group(uid), added, {"op": OP_JOIN_ROOM, "room": room.pk}))
    publish_on_commit(events)


@transaction.atomic
def participant_invite(*, actor_id: int, room_id: int, user_id: int) -> Participant:
    """Add a user to a group room (its owner or an admin)."""
    _lock_room(room_id)
    actor = participant_get_with_role(
        room_id=room_id, user_id=actor_id, roles=Participant.MANAGERS, action="invite people"
    )
    if actor.room.kind == Room.Kind.DIRECT:
        raise ChatError(INVALID, "A direct room is for its two users only.")
    if not _active_user_ids([user_id]):
        raise ChatError(INVALID, "No such user.")
    if Participant.objects.filter(room_id=room_id, user_id=user_id).exists():
        raise ChatError(CONFLICT, "That user is already a member of this room.")
    return participant_add(room=actor.room, user_id=user_id, by_id=actor_id)


@transaction.atomic
def participant_join(*, user_id: int, room_id: int) -> tuple[Participant, bool]:
    """Join a public group room. Returns (participation, joined now); joining twice is a no-op.

    A private room gives the same ``not_member`` as a room that does not exist.
    """
    if not 0 < room_id <= BIGINT_MAX:
        raise ChatError(NOT_MEMBER, f"{NOT_MEMBER_DETAIL} It is not open to join.")
    existing = Participant.objects.filter(room_id=room_id, user_id=user_id).first()
    if existing is not None:
        return existing, False
    room = Room.objects.filter(pk=room_id, kind=Room.Kind.GROUP, is_public=True).first()
    if room is None:
        raise ChatError(NOT_MEMBER, f"{NOT_MEMBER_DETAIL} It is not open to join.")
    return participant_add(room=room, user_id=user_id), True


def participant_remove(*, actor_id: int, room_id: int, user_id: int) -> None:
    """Remove ``user_id`` from the room; removing oneself is leaving (see :func:`participant_leave`).

    The owner may remove anyone else, an admin plain members only; nobody can be removed from a
    direct room (each side may leave it).
    """
    if user_id == actor_id:
        participant_leave(user_id=user_id, room_id=room_id)
        return
    with transaction.atomic():
        _lock_room(room_id)  # the actor's role cannot change between this check and the removal
        actor = participant_get_with_role(
            room_id=room_id, user_id=actor_id, roles=Participant.MANAGERS, action="remove people"
        )
        if actor.room.kind == Room.Kind.DIRECT:
            raise ChatError(FORBIDDEN, "Nobody can be removed from a direct room.")
        target = participant_target_get(room_id=room_id, user_id=user_id)
        if actor.role == Participant.Role.ADMIN and target.role != Participant.Role.MEMBER:
            raise ChatError(FORBIDDEN, "An admin can remove members only.")
        _participant_drop(target, event="removed", by_id=actor_id)


def participant_leave(*, user_id: int, room_id: int) -> None:
    """Leave a room. The owner hands it to the oldest admin, else the oldest member; the last
    one out deletes it."""
    with transaction.atomic():
        _participant_drop(participant_get(room_id=room_id, user_id=user_id))


def participant_remove_by_moderator(*, participant: Participant, actor=None) -> None:
    """Remove a participant from the admin, with the same effects as a removal by the owner
    (the system line names nobody as having removed them)."""
    with transaction.atomic():
        if Participant.objects.filter(pk=participant.pk).exists():  # else gone already: nothing to record
            _audit_membership("room.member_removed", actor, participant, after=False)
        _participant_drop(participant, event="removed")


def _audit_membership(action: str, actor, participant: Participant, *, after: bool) -> None:
    """An audit entry of a moderator adding or removing ``participant`` (target: the room)."""
    username = get_user_model().objects.filter(pk=participant.user_id).values_list("username", flat=True).first()
    values = {"user": participant.user_id, "username": username, "role": participant.role}
    audit_record(
        action=action, actor=actor, target_type="room", target_id=participant.room_id,
        before=None if after else values, after=values if after else None,
        detail=f"{username} ({participant.user_id}) {'added to' if after else 'removed from'} room {participant.room_id}",
    )  # fmt: skip


def _participant_drop(participant: Participant, *, event: str = "left", by_id: int | None = None) -> None:
    """Delete a participation: tell the sockets, hand on ownership, delete an emptied room.

    A room that stays gets the system line ``event`` ("left", or "removed" by ``by_id``).
    """
    room_id, user_id = participant.room_id, participant.user_id
    # The room row lock serialises membership changes: two owners leaving at once still leave
    # exactly one successor.
    room = Room.objects.select_for_update().filter(pk=room_id).first()
    if room is None or not Participant.objects.filter(pk=participant.pk).delete()[0]:
        return  # gone already with a concurrent removal or deletion
    publish_on_commit(
        [
            # The user's sockets drop the room (control) before the room group's copy arrives.
            (user_group(user_id), frame("participant.removed", room=room_id, user=user_id), {"op": OP_LEAVE_ROOM, "room": room_id}),
            # Their read position lets members lower the counters of the messages they had not read.
            (
                room_group(room_id),
                frame("participant.removed", room=room_id, user=user_id, last_read_seq=participant.last_read_seq),
                None,
            ),
        ]
    )  # fmt: skip
    remaining = Participant.objects.filter(room_id=room_id)
    if not remaining.exists():
        _room_destroy(room)
        return
    if room.kind == Room.Kind.GROUP:
        people = _people(user_id, by_id)
        _line_on_commit(room, event, user=people.get(user_id), by=people.get(by_id))
    if not remaining.filter(role=Participant.Role.OWNER).exists():
        successor = (
            remaining.filter(role=Participant.Role.ADMIN).order_by("joined_at", "id").first()
            or remaining.order_by("joined_at", "id").first()
        )
        successor.role = Participant.Role.OWNER
        successor.save(update_fields=["role"])
        _announce_roles(room, [successor])


@dataclass
class RoomsReleased:
    """What :func:`participants_release_user` did: rooms kept, rooms deleted, new owners."""

    kept: list[int]
    deleted: list[int]
    heirs: dict[int, int]


def participants_release_user(*, user_id: int) -> RoomsReleased:
    """Take a user out of every room at once (their account is going), in bulk.

    The same rules as one member leaving (:func:`participant_leave`), in a fixed number of
    statements whatever the number of rooms: a room they owned passes to an existing co-owner,
    else the oldest admin, else the oldest member; a room nobody else is in is deleted. Members
    hear ``participant.removed`` (with the read position, for their counters) and, where the
    owner changed, ``participant.updated``. Runs in the caller's transaction.
    """
    memberships = {
        room_id: (role, last_read)
        for room_id, role, last_read in Participant.objects.filter(user_id=user_id).values_list(
            "room_id", "role", "last_read_seq"
        )
    }
    if not memberships:
        return RoomsReleased([], [], {})
    # Same lock order as the persistence consumer (rooms by id): no message from this user is
    # stored in these rooms once their memberships are gone, and no deadlock between the two.
    room_ids = sorted(memberships)
    list(Room.objects.select_for_update().filter(id__in=room_ids).order_by("id").values_list("id", flat=True))
    others = Participant.objects.filter(room_id__in=room_ids).exclude(user_id=user_id)
    kept = sorted(set(others.order_by().values_list("room_id", flat=True).distinct()))
    deleted = sorted(set(room_ids) - set(kept))

    heirs: dict[int, int] = {}
    orphaned = [room_id for room_id in kept if memberships[room_id][0] == Participant.Role.OWNER]
    if orphaned:
        rank = Case(
            When(role=Participant.Role.OWNER, then=Value(0)),
            When(role=Participant.Role.ADMIN, then=Value(1)),
            default=Value(2),
        )
        # One row per room: an existing co-owner, else the oldest admin, else the oldest member.
        rows = list(
            others.filter(room_id__in=orphaned)
            .annotate(rank=rank)
            .order_by("room_id", "rank", "joined_at", "pk")
            .distinct("room_id")
            .values_list("pk", "room_id", "user_id")
        )
        Participant.objects.filter(pk__in=[pk for pk, _, _ in rows]).update(role=Participant.Role.OWNER)
        heirs = {room_id: heir for _, room_id, heir in rows}

    Participant.objects.filter(user_id=user_id).delete()
    rooms_destroy(room_ids=deleted)
    owner = Participant.Role.OWNER.value
    events: list[Event] = [
        (room_group(room_id), frame("participant.removed", room=room_id, user=user_id,
                                    last_read_seq=memberships[room_id][1]), None)
        for room_id in kept
    ]  # fmt: skip
    events += [
        (room_group(room_id), frame("participant.updated", room=room_id, user=heir, role=owner), None)
        for room_id, heir in heirs.items()
    ]
    publish_on_commit(events)
    return RoomsReleased(kept, deleted, heirs)


@transaction.atomic
def participant_role_set(*, actor_id: int, room_id: int, user_id: int, role: str) -> Participant:
    """Make a member an admin or a member again, or hand the room over (the owner only).

    Handing it over makes the previous owner an admin. Members get ``participant.updated``
    {room, user, role} for each change.
    """
    _lock_room(room_id)  # two owners handing over at once: the second sees the first's result
    actor = participant_get_with_role(room_id=room_id, user_id=actor_id, roles=OWNER_ONLY, action="change roles")
    if actor.room.kind == Room.Kind.DIRECT:
        raise ChatError(INVALID, "A direct room has no roles to change.")
    if user_id == actor_id:
        raise ChatError(INVALID, "The owner changes role only by making someone else the owner.")
    return _role_change(participant_target_get(room_id=room_id, user_id=user_id), role)


@transaction.atomic
def participant_role_set_by_moderator(*, participant: Participant, role: str, actor=None) -> Participant:
    """Like :func:`participant_role_set`, for a moderator in the admin (``actor``: recorded in the audit log)."""
    with transaction.atomic():
        before = participant.role
        participant = _role_change(participant, role)
        if participant.role != before:
            audit_record(
                action="room.member_role_changed_by_moderator", actor=actor, target_type="room",
                target_id=participant.room_id, before={"user": participant.user_id, "role": before},
                after={"user": participant.user_id, "role": participant.role},
                detail=f"user {participant.user_id} in room {participant.room_id}: {before} -> {participant.role}",
            )  # fmt: skip
    return participant


def _role_change(participant: Participant, role: str) -> Participant:
    if role not in Participant.Role.values:
        raise ChatError(INVALID, f"`role` must be one of {', '.join(Participant.Role.values)}.")
    room = Room.objects.select_for_update().filter(pk=participant.room_id).first()
    if room is None:
        raise ChatError(NOT_FOUND, "The room was deleted.")
    if participant.role == role:
        return participant
    if participant.role == Participant.Role.OWNER:
        raise ChatError(INVALID, "A room keeps its owner until someone else is made the owner.")
    changed = []
    if role == Participant.Role.OWNER:
        # One owner per room: the previous one stays on as an admin.
        changed = list(Participant.objects.filter(room_id=room.pk, role=Participant.Role.OWNER))
        for previous in changed:
            previous.role = Participant.Role.ADMIN
            previous.save(update_fields=["role"])
    participant.role = role
    participant.save(update_fields=["role"])
    _announce_roles(room, [participant, *changed])
    return participant


def _announce_roles(room: Room, participants: list[Participant]) -> None:
    publish_on_commit(
        (room_group(room.pk), frame("participant.updated", room=room.pk, user=p.user_id, role=p.role), None)
        for p in participants
    )


# -- read positions -----------------------------------------------------------------------------------
def participant_mute(*, user_id: int, room_id: int, muted: bool) -> bool:
    """Mute or unmute the room for the user; True when that changed it.

    Only the user's own sockets hear of it (``room.updated {room, muted}`` on their group): it is
    nobody else's business.
    """
    participant_get(room_id=room_id, user_id=user_id)
    changed = Participant.objects.filter(room_id=room_id, user_id=user_id).exclude(muted=muted).update(muted=muted)
    if changed:
        publish_on_commit([(user_group(user_id), frame("room.updated", room=room_id, muted=muted), None)])
    return bool(changed)


def read_position_advance(*, user_id: int, room_id: int, seq: int) -> int:
    """Move the user's last-read position forward to ``seq`` (never backward).

    Returns the resulting position. Members of the room (the user's other sessions included)
    get ``room.read`` {room, user, seq, from_seq} when the position moved: each message with
    from_seq < its seq <= seq has one unread member fewer.
    """
    participant = participant_get(room_id=room_id, user_id=user_id)
    target = min(int(seq), participant.room.last_seq)
    if target <= participant.last_read_seq:
        return participant.last_read_seq  # the common repeat: no lock, no event
    return _read_position_move(participant, lambda current: max(current, target))


def read_position_mark_unread(*, user_id: int, room_id: int, seq: int) -> int:
    """Show the room as unread from message ``seq`` on: the position moves back to ``seq - 1``.

    The only way a read position moves backward; it never moves one forward. Returns the
    resulting position; members get ``room.read`` as for :func:`read_position_advance` (with
    ``seq`` below ``from_seq``, so the counters go back up).
    """
    participant = participant_get(room_id=room_id, user_id=user_id)
    seq = int(seq)
    if not 1 <= seq <= participant.room.last_seq:
        raise ChatError(NOT_FOUND, "No such message.")
    return _read_position_move(participant, lambda current: min(current, seq - 1))


def _read_position_move(participant: Participant, to: Callable[[int], int]) -> int:
    with transaction.atomic():
        # Locked so that from_seq in the event is exact under concurrent reads from other sessions.
        current = (
            Participant.objects.select_for_update()
            .filter(pk=participant.pk)
            .values_list("last_read_seq", flat=True)
            .first()
        )
        if current is None:  # removed meanwhile
            raise ChatError(NOT_MEMBER, NOT_MEMBER_DETAIL)
        position = to(current)
        if position != current:
            Participant.objects.filter(pk=participant.pk).update(last_read_seq=position)
            room_id = participant.room_id
            read = frame("room.read", room=room_id, user=participant.user_id, seq=position, from_seq=current)
            publish_on_commit([(room_group(room_id), read, None)])
    return position


# -- moderators' sanctions (docs/moderation.md) --------------------------------------------------------
def _sanction_values(sanction: RoomSanction) -> dict:
    return {
        "kind": sanction.kind, "user": sanction.user_id, "room": sanction.room_id, "until": sanction.until,
        "reason": sanction.reason, "lifted_at": sanction.lifted_at,
    }  # fmt: skip


def _mute_control(sanction: RoomSanction, *, active: bool) -> None:
    """Tell the user's sockets, after commit, that they are muted in the room until when (or no
    longer): each socket refuses their sends there in memory, with no query per message."""
    until = sanction.until.timestamp() if sanction.until is not None else None
    control = {"op": OP_ROOM_MUTE, "room": sanction.room_id, "until": until, "active": active}
    publish_on_commit([(user_group(sanction.user_id), None, control)])


def room_sanction_impose(*, room: Room, user, kind: str, until=None, reason: str = "", actor=None) -> RoomSanction:
    """A site moderator mutes ``user`` in ``room`` or bans them from it, until ``until`` (None: until
    lifted). Replaces a sanction of the same kind in force there (the new end holds).

    A mute: the user's sockets refuse their sends in the room at once (``muted``), and so do REST
    and storage. A ban: the user is removed at once (the room's "removed" system line, their
    sockets stop receiving it), and joining, being invited or re-opening the direct room are
    refused (``banned``) while it lasts. Audited.
    """
    if kind not in RoomSanction.Kind.values:
        raise ChatError(INVALID, f"`kind` must be one of {', '.join(RoomSanction.Kind.values)}.")
    now = timezone.now()
    if until is not None and until <= now:
        raise ChatError(INVALID, "A sanction must end in the future (or be until lifted).")
    with transaction.atomic():
        _lock_room(room.pk)
        RoomSanction.objects.filter(room_id=room.pk, user_id=user.pk, kind=kind, lifted_at__isnull=True).update(
            lifted_at=now, lifted_by=actor if getattr(actor, "pk", None) else None
        )
        sanction = RoomSanction.objects.create(
            room_id=room.pk, user_id=user.pk, kind=kind, until=until, reason=reason or "",
            created_by=actor if getattr(actor, "pk", None) else None,
        )  # fmt: skip
        audit_record(
            action=f"room.user_{'muted' if kind == RoomSanction.Kind.MUTE else 'banned'}", actor=actor,
            target_type="room", target_id=room.pk, before=None, after=_sanction_values(sanction),
            detail=f"{user.username} ({user.pk}) {kind}d in room {room.pk} {until_text(until)}"
            + (f": {reason}" if reason else ""),
        )  # fmt: skip
        if kind == RoomSanction.Kind.MUTE:
            _mute_control(sanction, active=True)
        else:
            participant = Participant.objects.filter(room_id=room.pk, user_id=user.pk).first()
            if participant is not None:
                _participant_drop(participant, event="removed")
    return sanction


def room_sanction_lift(*, sanction: RoomSanction, actor=None) -> bool:
    """End a sanction before its time (a moderator); False if it had ended already. Audited.

    A lifted ban lets the user join or be invited again; it does not add them back."""
    with transaction.atomic():
        now = timezone.now()
        before = _sanction_values(sanction)
        lifted = RoomSanction.objects.filter(pk=sanction.pk, lifted_at__isnull=True).update(
            lifted_at=now, lifted_by=actor if getattr(actor, "pk", None) else None
        )
        if not lifted:
            return False
        sanction.refresh_from_db()
        audit_record(
            action=f"room.user_{'unmuted' if sanction.kind == RoomSanction.Kind.MUTE else 'unbanned'}",
            actor=actor, target_type="room", target_id=sanction.room_id, before=before,
            after=_sanction_values(sanction), detail=f"{sanction} lifted",
        )  # fmt: skip
        if sanction.kind == RoomSanction.Kind.MUTE:
            _mute_control(sanction, active=False)
    return True
