"""Reads about rooms and participants."""

from __future__ import annotations

from bisect import bisect_left
from datetime import UTC

from django.contrib.auth import get_user_model
from django.db.models import (
    BigIntegerField,
    BooleanField,
    Case,
    Count,
    Exists,
    F,
    Func,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Value,
    When,
)
from django.db.models.expressions import RawSQL
from django.db.models.functions import Cast, Coalesce, Greatest
from django.utils import timezone

from streams.errors import BANNED, FORBIDDEN, INVALID, MUTED, NOT_FOUND, NOT_MEMBER, ChatError
from streams.realtime.presence import presence_read
from streams.realtime.protocol import BIGINT_MAX

from .models import Participant, Room, RoomSanction

NOT_MEMBER_DETAIL = "You are not a member of this room."


def room_ids_for_user(*, user_id: int) -> list[int]:
    """Ids of the rooms the user is in."""
    return list(Participant.objects.filter(user_id=user_id).values_list("room_id", flat=True))


def room_ids_by_user(*, user_ids: list[int]) -> dict[int, list[int]]:
    """The ids of the rooms each of the users is in (presence announces to them)."""
    out: dict[int, list[int]] = {user_id: [] for user_id in user_ids}
    for user_id, room_id in Participant.objects.filter(user_id__in=user_ids).values_list("user_id", "room_id"):
        out[user_id].append(room_id)
    return out


def participant_get(*, room_id: int, user_id: int) -> Participant:
    """The user's participation in the room, or ``not_member``.

    Rooms the user is not in and rooms that do not exist give the same error, so that ids
    cannot be probed.
    """
    participant = None
    if 0 < room_id <= BIGINT_MAX:
        participant = Participant.objects.select_related("room").filter(room_id=room_id, user_id=user_id).first()
    if participant is None:
        raise ChatError(NOT_MEMBER, NOT_MEMBER_DETAIL)
    return participant


def rooms_with_pair_names(queryset: QuerySet[Room]) -> QuerySet[Room]:
    """Rooms annotated with their direct pair's usernames (``Room.pair_names``; null for a group
    room, or a deleted account), read from the direct key so it names whoever left: two subqueries
    on the users' primary key, no query per room."""
    users = get_user_model().objects

    def name(part: int) -> Subquery:
        half = Cast(Func(OuterRef("direct_key"), Value(":"), Value(part), function="split_part"), BigIntegerField())
        return Subquery(users.filter(pk=half).values("username")[:1])

    return queryset.annotate(pair_low_name=name(1), pair_high_name=name(2))


def until_text(until) -> str:
    """How a sanction's end reads in a refusal: "until 2026-12-05 08:00 UTC", or "until lifted"."""
    if until is None:
        return "until a moderator lifts it"
    return f"until {until.astimezone(UTC).strftime('%Y-%m-%d %H:%M')} UTC"


def room_sanctions_active(*, kind: str, room_id: int | None = None, user_id: int | None = None):
    """The sanctions of ``kind`` in force now (not lifted, not expired), newest first."""
    now = timezone.now()
    query = RoomSanction.objects.filter(Q(until__isnull=True) | Q(until__gt=now), kind=kind, lifted_at__isnull=True)
    if room_id is not None:
        query = query.filter(room_id=room_id)
    if user_id is not None:
        query = query.filter(user_id=user_id)
    return query.order_by("-created_at", "-id")


def room_mutes_for_user(*, user_id: int) -> dict[int, float | None]:
    """{room id: when the user's mute there ends (epoch seconds, None: until lifted)} of the
    moderators' mutes in force: what a socket keeps beside its rooms to refuse a send in memory."""
    out: dict[int, float | None] = {}
    for room_id, until in room_sanctions_active(kind=RoomSanction.Kind.MUTE, user_id=user_id).values_list(
        "room_id", "until"
    ):
        ends = None if until is None else until.timestamp()
        if room_id not in out or ends is None or (out[room_id] is not None and ends > out[room_id]):
            out[room_id] = ends
    return out


def room_mute_refusal(until) -> ChatError:
    """The ``muted`` refusal of a send, naming when the mute ends (a datetime, or None)."""
    return ChatError(MUTED, f"A moderator muted you in this room {until_text(until)}.")


def participant_get_to_send(*, room_id: int, user_id: int) -> Participant:
    """:func:`participant_get` for a send or an edit: also ``muted`` while a moderator's mute is in
    force, read in the same query (a subquery of the membership's)."""
    participant = None
    if 0 < room_id <= BIGINT_MAX:
        mutes = room_sanctions_active(kind=RoomSanction.Kind.MUTE, room_id=room_id, user_id=user_id)
        participant = (
            Participant.objects.select_related("room")
            .filter(room_id=room_id, user_id=user_id)
            .annotate(mute_id=Subquery(mutes.values("id")[:1]))
            .first()
        )
    if participant is None:
        raise ChatError(NOT_MEMBER, NOT_MEMBER_DETAIL)
    if participant.mute_id is not None:
        until = RoomSanction.objects.filter(pk=participant.mute_id).values_list("until", flat=True).first()
        raise room_mute_refusal(until)
    return participant


def room_ban_check(*, room_id: int, user_id: int, themself: bool = True) -> None:
    """``banned`` while a moderator's ban of the user from the room is in force (``themself``:
    the user asks, else someone adds them)."""
    ban = room_sanctions_active(kind=RoomSanction.Kind.BAN, room_id=room_id, user_id=user_id).first()
    if ban is not None:
        who = "you" if themself else "that user"
        raise ChatError(BANNED, f"A moderator banned {who} from this room {until_text(ban.until)}.")


def room_is_read_only(*, room: Room, user_id: int) -> bool:
    """Whether ``user_id`` can no longer send in ``room``: a direct room whose other person's
    account is gone (deleted, or deactivated)."""
    if room.kind != Room.Kind.DIRECT:
        return False
    return not Participant.objects.filter(room_id=room.pk, user__is_active=True).exclude(user_id=user_id).exists()


def participant_target_get(*, room_id: int, user_id: int) -> Participant:
    """Another member of a room the caller is in (an action's target), or ``not_found``."""
    participant = None
    if 0 < user_id <= BIGINT_MAX:
        participant = Participant.objects.filter(room_id=room_id, user_id=user_id).first()
    if participant is None:
        raise ChatError(NOT_FOUND, "That user is not a member of this room.")
    return participant


def active_user_get(*, user_id: int):
    """An active user by id, or ``invalid`` (a request naming someone who cannot chat)."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first() if 0 < user_id <= BIGINT_MAX else None
    if user is None:
        raise ChatError(INVALID, "No such user.")
    return user


def participant_get_with_role(*, room_id: int, user_id: int, roles: tuple[str, ...], action: str) -> Participant:
    """The user's participation, refused with ``forbidden`` unless their role is in ``roles``.

    Membership is checked first, so a non-member learns nothing more than ``not_member``.
    """
    participant = participant_get(room_id=room_id, user_id=user_id)
    if participant.role not in roles:
        names = " or ".join(Participant.Role(role).label.lower() for role in roles)
        raise ChatError(FORBIDDEN, f"Only the room's {names} can {action}.")
    return participant


def _other_user_id(user_id: int):
    # A direct room's key is "low:high"; the other user is whichever half is not ``user_id``.
    # Read from the key rather than the participants so the room still names them after they left.
    def half(n: int):
        return Cast(Func(F("room__direct_key"), Value(":"), Value(n), function="split_part"), BigIntegerField())

    return Case(
        When(room__kind=Room.Kind.DIRECT, room__direct_key__startswith=f"{user_id}:", then=half(2)),
        When(room__kind=Room.Kind.DIRECT, then=half(1)),
        default=None,
        output_field=BigIntegerField(),
    )


def _summaries(user_id: int) -> QuerySet[Participant]:
    """The user's participations annotated with everything a room summary shows, in one query."""
    member_count = (
        Participant.objects.filter(room_id=OuterRef("room_id"))
        .order_by()
        .values("room_id")
        .annotate(n=Count("*"))
        .values("n")
    )
    usernames = get_user_model().objects.filter(pk=OuterRef("other_user_id")).values("username")
    # A direct room is read-only once nobody else who can read it is in it.
    someone_else = Exists(
        Participant.objects.filter(room_id=OuterRef("room_id"), user__is_active=True).exclude(user_id=user_id)
    )
    table = Participant._meta.db_table
    return (
        Participant.objects.filter(user_id=user_id)
        .select_related("room")
        .annotate(
            unread=Greatest(F("room__last_seq") - F("last_read_seq"), Value(0)),
            mentions=RawSQL(
                f"(SELECT count(*) FROM unnest({table}.mention_seqs) AS s WHERE s > {table}.last_read_seq)", []
            ),
            member_count=Subquery(member_count),
            other_user_id=_other_user_id(user_id),
        )
        .annotate(
            other_username=Subquery(usernames),
            read_only=Case(
                When(room__kind=Room.Kind.DIRECT, then=~someone_else), default=Value(False), output_field=BooleanField()
            ),
        )
    )


def room_list_for_user(*, user_id: int) -> list[Participant]:
    """The user's rooms, latest activity first, each with its unread count and last message.

    One query whatever the number of rooms: each row is the user's ``Participant`` with its
    ``room`` and the annotations ``unread``, ``member_count``, ``other_user_id`` and
    ``other_username`` (the last two only for direct rooms).
    """
    activity = Coalesce(F("room__last_message_at"), F("room__created_at"))
    return _with_other_presence(list(_summaries(user_id).order_by(activity.desc(), F("room_id").desc())))


def _with_other_presence(summaries: list[Participant]) -> list[Participant]:
    """Set ``other_presence`` on each summary: the direct room's other person's presence while they
    are in the room (else None: someone who shares no room is never shown), in one Redis round trip."""
    shown = [s for s in summaries if s.room.kind == Room.Kind.DIRECT and s.other_user_id and not s.read_only]
    states = presence_read(s.other_user_id for s in shown)
    for summary in summaries:
        summary.other_presence = None
    for summary in shown:
        summary.other_presence = states[summary.other_user_id]
    return summaries


def room_summary_for_member(*, room_id: int, user_id: int) -> Participant:
    """One room as :func:`room_list_for_user` shows it, or ``not_member``."""
    participant = _summaries(user_id).filter(room_id=room_id).first() if 0 < room_id <= BIGINT_MAX else None
    if participant is None:
        raise ChatError(NOT_MEMBER, NOT_MEMBER_DETAIL)
    return _with_other_presence([participant])[0]


def participant_list(*, room_id: int, user_id: int) -> list[Participant]:
    """The room's members (owner first, then admins, then by joining order), for a member."""
    participant_get(room_id=room_id, user_id=user_id)
    role_order = Case(
        When(role=Participant.Role.OWNER, then=Value(0)),
        When(role=Participant.Role.ADMIN, then=Value(1)),
        default=Value(2),
    )
    members = list(
        Participant.objects.filter(room_id=room_id).select_related("user").order_by(role_order, "joined_at", "id")
    )
    return participants_with_presence(members)


def participants_with_presence(participants: list[Participant]) -> list[Participant]:
    """Set ``presence`` ({status, last_seen}) on each participant, in one Redis round trip.

    For members of a room the caller is in: presence is shown only to who shares a room.
    """
    states = presence_read(p.user_id for p in participants)
    for participant in participants:
        participant.presence = states[participant.user_id]
    return participants


def message_readers(*, room_id: int, user_id: int, seq: int) -> tuple[list[Participant], int]:
    """Who has read message ``seq`` of the room, and how many members have not.

    Readers are the current members whose last-read position reached ``seq`` (the sender and
    the asking user included), by username.
    """
    room = participant_get(room_id=room_id, user_id=user_id).room
    if not 1 <= seq <= room.last_seq:
        raise ChatError(NOT_FOUND, "No such message.")
    members = list(Participant.objects.filter(room_id=room_id).select_related("user").order_by("user__username"))
    readers = [p for p in members if p.last_read_seq >= seq]
    return readers, len(members) - len(readers)


def unread_counter(*, room_id: int):
    """A function seq -> how many current members have not read up to that seq.

    One query fetches the room's read positions; each message's count is then a bisection,
    so a page of messages costs one query whatever its length.
    """
    positions = sorted(Participant.objects.filter(room_id=room_id).values_list("last_read_seq", flat=True))

    def unread(seq: int) -> int:
        return bisect_left(positions, seq)

    return unread
