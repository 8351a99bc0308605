"""Reads about rooms and participants."""

from __future__ import annotations

from bisect import bisect_left

from streams.errors import NOT_MEMBER, ChatError

from .models import Participant, Room


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
        raise ChatError(NOT_MEMBER, "You are not a member of this room.") from None


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
