"""Reads about rooms and participants."""

from __future__ import annotations

from bisect import bisect_left

from django.contrib.auth import get_user_model
from django.db.models import Case, Count, F, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.db.models.functions import Coalesce, Greatest

from streams.errors import INVALID, NOT_FOUND, NOT_MEMBER, ChatError

from .models import Participant, Room

NOT_MEMBER_DETAIL = "You are not a member of this room."


def room_ids_for_user(*, user_id: int) -> list[int]:
    """Ids of the rooms the user is in."""
    return list(Participant.objects.filter(user_id=user_id).values_list("room_id", flat=True))


def participant_get(*, room_id: int, user_id: int) -> Participant:
    """The user's participation in the room, or ``not_member``.

    Rooms the user is not in and rooms that do not exist give the same error, so that ids
    cannot be probed.
    """
    try:
        return Participant.objects.select_related("room").get(room_id=room_id, user_id=user_id)
    except Participant.DoesNotExist:
        raise ChatError(NOT_MEMBER, NOT_MEMBER_DETAIL) from None


def room_get_for_member(*, room_id: int, user_id: int) -> Room:
    return participant_get(room_id=room_id, user_id=user_id).room


def unread_counter(*, room_id: int):
    """A function seq -> how many current members have not read up to that seq.

    One query fetches the room's read positions; each message's count is then a bisection,
    so a page of messages costs one query whatever its length.
    """
    positions = sorted(Participant.objects.filter(room_id=room_id).values_list("last_read_seq", flat=True))

    def unread(seq: int) -> int:
        return bisect_left(positions, seq)

    return unread


# -- the room list and a room's summary ---------------------------------------------------------------
def _member_count() -> Subquery:
    counts = (
        Participant.objects.filter(room_id=OuterRef("room_id"))
        .order_by()
        .values("room_id")
        .annotate(n=Count("pk"))
        .values("n")
    )
    return Coalesce(Subquery(counts, output_field=IntegerField()), Value(0))


def _other_member(user_id: int, field: str) -> Subquery:
    # The other side of a direct room; None once they have left it.
    other = (
        Participant.objects.filter(room_id=OuterRef("room_id"), room__kind=Room.Kind.DIRECT)
        .exclude(user_id=user_id)
        .order_by("joined_at", "pk")
        .values(field)[:1]
    )
    return Subquery(other)


def _room_summaries(*, user_id: int) -> QuerySet[Participant]:
    return (
        Participant.objects.filter(user_id=user_id)
        .select_related("room")
        .annotate(
            member_count=_member_count(),
            unread=Greatest(F("room__last_seq") - F("last_read_seq"), Value(0)),
            other_user_id=_other_member(user_id, "user_id"),
            other_username=_other_member(user_id, "user__username"),
            activity=Coalesce("room__last_message_at", "room__created_at"),
        )
    )


def room_list_for_user(*, user_id: int) -> list[Participant]:
    """The user's rooms, most recently active first, each with its counts and last message.

    Each row is the user's Participant (``last_read_seq``, ``role``) with its ``room`` and the
    annotations ``member_count``, ``unread``, ``other_user_id`` / ``other_username`` (direct
    rooms). One query, whatever the number of rooms: the last message and ``last_seq`` live
    on the room row, and the counts are correlated subqueries.
    """
    return list(_room_summaries(user_id=user_id).order_by("-activity", "-room_id"))


def room_summary_for_member(*, room_id: int, user_id: int) -> Participant:
    """One room as in :func:`room_list_for_user`, or ``not_member``."""
    summary = _room_summaries(user_id=user_id).filter(room_id=room_id).first()
    if summary is None:
        raise ChatError(NOT_MEMBER, NOT_MEMBER_DETAIL)
    return summary


# -- participants and readers -------------------------------------------------------------------------
def participant_list(*, room_id: int, user_id: int) -> list[Participant]:
    """The members of a room the user is in: the owner, then admins, then members, each by joining order."""
    participant_get(room_id=room_id, user_id=user_id)
    rank = Case(
        When(role=Participant.Role.OWNER, then=Value(0)),
        When(role=Participant.Role.ADMIN, then=Value(1)),
        default=Value(2),
    )
    return list(Participant.objects.filter(room_id=room_id).select_related("user").order_by(rank, "joined_at", "pk"))


def message_readers(*, room_id: int, user_id: int, seq: int) -> tuple[list[Participant], int]:
    """Members who have read up to message ``seq`` (``last_read_seq >= seq``, its sender included),
    and how many members have not.

    Only a member may ask; a seq with no message is ``not_found``.
    """
    participant = participant_get(room_id=room_id, user_id=user_id)
    if seq < 1 or seq > participant.room.last_seq:
        raise ChatError(NOT_FOUND, "No such message.")
    members = list(Participant.objects.filter(room_id=room_id).select_related("user").order_by("user__username", "pk"))
    readers = [m for m in members if m.last_read_seq >= seq]
    return readers, len(members) - len(readers)


def active_user_get(*, user_id: int):
    """The active account with this id, or ``invalid`` (rooms only take people who can chat)."""
    user = get_user_model().objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        raise ChatError(INVALID, "No such user.")
    return user


def inactive_or_unknown_user_ids(*, user_ids) -> set[int]:
    """Those of ``user_ids`` that name no active account."""
    wanted = set(user_ids)
    return wanted - set(get_user_model().objects.filter(pk__in=wanted, is_active=True).values_list("pk", flat=True))
