"""Rooms, memberships and read positions, through the services the REST API, WebSocket and admin share."""

from __future__ import annotations

import pytest

from rooms import selectors, services
from rooms.models import Participant, Room
from streams.errors import CONFLICT, FORBIDDEN, INVALID, NOT_FOUND, NOT_MEMBER, ChatError

pytestmark = pytest.mark.django_db


class refused:  # noqa: N801 - reads as a phrase: ``with refused(FORBIDDEN):``
    """``with refused("forbidden"):`` -- the block must raise ChatError with that code."""

    def __init__(self, code: str) -> None:
        self.code = code

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        assert exc_type is ChatError, f"expected a {self.code!r} refusal, got {exc_type}"
        assert exc.code == self.code, f"expected {self.code!r}, got {exc.code!r}: {exc.detail}"
        return True


def roles(room) -> dict[str, str]:
    return {p.user.username: p.role for p in Participant.objects.filter(room=room).select_related("user")}


# -- rooms --------------------------------------------------------------------------------------------
def test_a_direct_room_is_unique_per_pair_of_users(make_user):
    ann, bob = make_user("ann"), make_user("bob")
    room, created = services.room_open_direct(user=ann, other=bob)
    again, created_again = services.room_open_direct(user=bob, other=ann)
    assert created and not created_again
    assert again.pk == room.pk
    assert Room.objects.filter(kind=Room.Kind.DIRECT).count() == 1
    assert roles(room) == {"ann": "owner", "bob": "member"}


def test_opening_a_direct_room_again_brings_back_whoever_left_it(make_user):
    ann, bob = make_user("ann"), make_user("bob")
    room, _ = services.room_open_direct(user=ann, other=bob)
    services.participant_leave(user=bob, room_id=room.pk)
    assert roles(room) == {"ann": "owner"}
    again, created = services.room_open_direct(user=ann, other=bob)
    assert (again.pk, created) == (room.pk, False)
    assert roles(room) == {"ann": "owner", "bob": "member"}


def test_a_direct_room_needs_two_people(make_user):
    ann = make_user()
    with refused(INVALID):
        services.room_open_direct(user=ann, other=ann)


def test_owner_and_admins_rename_a_group_room_and_members_hear_of_it(make_user, make_room, listen, committed):
    owner, admin, member = make_user(), make_user(), make_user()
    room = make_room(owner=owner, members=[admin, member])
    services.participant_role_set(actor=owner, room_id=room.pk, user_id=admin.pk, role="admin")
    heard = listen(f"room.{room.pk}")
    with refused(FORBIDDEN):
        services.room_update(actor=member, room_id=room.pk, name="mine now")
    with committed():
        services.room_update(actor=admin, room_id=room.pk, name="  renamed  ", is_public=True)
    room.refresh_from_db()
    assert (room.name, room.is_public) == ("renamed", True)
    assert [f for _, f, _ in heard.events()] == [
        {"type": "room.updated", "room": room.pk, "name": "renamed", "is_public": True}
    ]
    with refused(INVALID):
        services.room_update(actor=owner, room_id=room.pk, name="   ")


def test_a_direct_room_cannot_be_renamed_made_public_or_deleted(make_user):
    ann, bob = make_user(), make_user()
    room, _ = services.room_open_direct(user=ann, other=bob)
    with refused(INVALID):
        services.room_update(actor=ann, room_id=room.pk, is_public=True)
    with refused(FORBIDDEN):
        services.room_delete(actor=ann, room_id=room.pk)
    assert Room.objects.filter(pk=room.pk).exists()


# -- invitations and joining ------------------------------------------------------------------------------
def test_owner_and_admins_invite_members_do_not(make_user, make_room):
    owner, admin, member, newcomer, other = (make_user() for _ in range(5))
    room = make_room(owner=owner, members=[admin, member])
    services.participant_role_set(actor=owner, room_id=room.pk, user_id=admin.pk, role="admin")
    with refused(FORBIDDEN):
        services.participant_invite(actor=member, room_id=room.pk, user_id=newcomer.pk)
    invited = services.participant_invite(actor=admin, room_id=room.pk, user_id=newcomer.pk)
    assert (invited.user_id, invited.role) == (newcomer.pk, "member")
    with refused(CONFLICT):
        services.participant_invite(actor=owner, room_id=room.pk, user_id=newcomer.pk)
    with refused(INVALID):
        services.participant_invite(actor=owner, room_id=room.pk, user_id=10**12)
    with refused(NOT_MEMBER):
        services.participant_invite(actor=other, room_id=room.pk, user_id=other.pk)


def test_nobody_is_invited_into_a_direct_room(make_user):
    ann, bob, cat = make_user(), make_user(), make_user()
    room, _ = services.room_open_direct(user=ann, other=bob)
    with refused(INVALID):
        services.participant_invite(actor=ann, room_id=room.pk, user_id=cat.pk)


def test_an_invited_user_hears_of_it_and_so_does_the_room(make_user, make_room, listen, committed):
    owner, newcomer = make_user(), make_user()
    room = make_room(owner=owner)
    heard = listen(f"room.{room.pk}", f"user.{newcomer.pk}")
    with committed():
        services.participant_invite(actor=owner, room_id=room.pk, user_id=newcomer.pk)
    added = {"type": "participant.added", "room": room.pk, "user": newcomer.pk}
    # Room first: the newcomer's sockets are not in the room yet, so they get it once.
    assert heard.events() == [
        (f"room.{room.pk}", added, None),
        (f"user.{newcomer.pk}", added, {"op": services.JOIN_ROOM, "room": room.pk}),
    ]


def test_anyone_joins_a_public_room_but_a_private_one_looks_missing(make_user, make_room):
    owner, walker = make_user(), make_user()
    public = make_room(owner=owner, name="lobby")
    services.room_update(actor=owner, room_id=public.pk, is_public=True)
    private = make_room(owner=owner, name="staff")
    participant, joined = services.participant_join(user=walker, room_id=public.pk)
    assert joined and participant.role == "member"
    assert services.participant_join(user=walker, room_id=public.pk)[1] is False
    # The same refusal as for a room that does not exist: ids cannot be probed.
    with refused(NOT_MEMBER):
        services.participant_join(user=walker, room_id=private.pk)
    with refused(NOT_MEMBER):
        services.participant_join(user=walker, room_id=private.pk + 1000)


def test_a_newcomer_starts_with_the_history_read(make_user, make_room, store_messages):
    owner, early, late = make_user(), make_user(), make_user()
    room = make_room(owner=owner, members=[early])
    store_messages(room, owner, count=3)
    services.participant_invite(actor=owner, room_id=room.pk, user_id=late.pk)
    assert selectors.participant_get(room_id=room.pk, user_id=late.pk).last_read_seq == 3
    # Joining puts no "1" back on messages only `early` has not read.
    unread = selectors.unread_counter(room_id=room.pk)
    assert [unread(seq) for seq in (1, 2, 3)] == [1, 1, 1]


# -- leaving and removing -----------------------------------------------------------------------------------
def test_the_owner_leaving_hands_the_room_to_the_oldest_admin(make_user, make_room):
    owner, first, second, third = (make_user(n) for n in ("owner", "first", "second", "third"))
    room = make_room(owner=owner, members=[first, second, third])
    services.participant_role_set(actor=owner, room_id=room.pk, user_id=third.pk, role="admin")
    services.participant_role_set(actor=owner, room_id=room.pk, user_id=second.pk, role="admin")
    services.participant_leave(user=owner, room_id=room.pk)
    # Of the two admins, `second` joined first (the order of promotion does not matter).
    assert roles(room) == {"first": "member", "second": "owner", "third": "admin"}


def test_the_owner_leaving_without_admins_hands_the_room_to_the_oldest_member(make_user, make_room):
    owner, first, later = make_user("owner"), make_user("first"), make_user("later")
    room = make_room(owner=owner, members=[first])
    services.participant_invite(actor=owner, room_id=room.pk, user_id=later.pk)
    services.participant_leave(user=owner, room_id=room.pk)
    assert roles(room) == {"first": "owner", "later": "member"}


def test_the_oldest_admin_wins_over_older_members(make_user, make_room, listen, committed):
    owner, member, admin = make_user("owner"), make_user("member"), make_user("admin")
    room = make_room(owner=owner, members=[member])
    services.participant_invite(actor=owner, room_id=room.pk, user_id=admin.pk)
    services.participant_role_set(actor=owner, room_id=room.pk, user_id=admin.pk, role="admin")
    heard = listen(f"room.{room.pk}")
    with committed():
        services.participant_leave(user=owner, room_id=room.pk)
    assert roles(room) == {"member": "member", "admin": "owner"}
    frames = [f for _, f, _ in heard.events()]
    assert frames == [
        {"type": "participant.removed", "room": room.pk, "user": owner.pk},
        {"type": "participant.updated", "room": room.pk, "user": admin.pk, "role": "owner"},
    ]


def test_the_last_one_out_deletes_the_room(make_user, make_room, store_messages):
    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    store_messages(room, member, count=2)
    services.participant_leave(user=member, room_id=room.pk)
    services.participant_leave(user=owner, room_id=room.pk)
    assert not Room.objects.filter(pk=room.pk).exists()
    assert not room.messages.exists()


def test_only_owner_and_admins_remove_and_admins_only_members(make_user, make_room):
    owner, admin, admin2, member, member2, outsider = (make_user() for _ in range(6))
    room = make_room(owner=owner, members=[admin, admin2, member, member2])
    for a in (admin, admin2):
        services.participant_role_set(actor=owner, room_id=room.pk, user_id=a.pk, role="admin")
    with refused(FORBIDDEN):
        services.participant_remove(actor=member, room_id=room.pk, user_id=member2.pk)
    with refused(FORBIDDEN):
        services.participant_remove(actor=admin, room_id=room.pk, user_id=admin2.pk)
    with refused(FORBIDDEN):
        services.participant_remove(actor=admin, room_id=room.pk, user_id=owner.pk)
    with refused(NOT_MEMBER):
        services.participant_remove(actor=outsider, room_id=room.pk, user_id=member.pk)
    with refused(NOT_FOUND):
        services.participant_remove(actor=owner, room_id=room.pk, user_id=outsider.pk)
    services.participant_remove(actor=admin, room_id=room.pk, user_id=member2.pk)
    services.participant_remove(actor=owner, room_id=room.pk, user_id=admin2.pk)
    services.participant_remove(actor=member, room_id=room.pk, user_id=member.pk)  # leaving
    assert set(roles(room).values()) == {"owner", "admin"}
    assert len(roles(room)) == 2


def test_nobody_is_removed_from_a_direct_room(make_user):
    ann, bob = make_user(), make_user()
    room, _ = services.room_open_direct(user=ann, other=bob)
    with refused(FORBIDDEN):
        services.participant_remove(actor=ann, room_id=room.pk, user_id=bob.pk)


def test_a_removed_users_sockets_drop_the_room_before_the_room_hears_of_it(make_user, make_room, listen, committed):
    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    heard = listen(f"room.{room.pk}", f"user.{member.pk}")
    with committed():
        services.participant_remove(actor=owner, room_id=room.pk, user_id=member.pk)
    removed = {"type": "participant.removed", "room": room.pk, "user": member.pk}
    assert heard.events() == [
        (f"user.{member.pk}", removed, {"op": services.LEAVE_ROOM, "room": room.pk}),
        (f"room.{room.pk}", removed, None),
    ]
    assert selectors.room_ids_for_user(user_id=member.pk) == []


def test_nothing_is_announced_when_the_change_is_rolled_back(make_user, make_room, listen, committed):
    from django.db import transaction

    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    heard = listen(f"room.{room.pk}", f"user.{member.pk}")

    class Abort(Exception):
        pass

    with committed(), pytest.raises(Abort), transaction.atomic():
        services.participant_remove(actor=owner, room_id=room.pk, user_id=member.pk)
        raise Abort
    assert heard.events() == []
    assert Participant.objects.filter(room=room, user=member).exists()


# -- roles --------------------------------------------------------------------------------------------------
def test_handing_over_the_ownership_makes_the_old_owner_an_admin(make_user, make_room):
    owner, heir, member = make_user("owner"), make_user("heir"), make_user("member")
    room = make_room(owner=owner, members=[heir, member])
    with refused(FORBIDDEN):
        services.participant_role_set(actor=member, room_id=room.pk, user_id=member.pk, role="admin")
    with refused(INVALID):
        services.participant_role_set(actor=owner, room_id=room.pk, user_id=owner.pk, role="member")
    with refused(INVALID):
        services.participant_role_set(actor=owner, room_id=room.pk, user_id=heir.pk, role="king")
    services.participant_role_set(actor=owner, room_id=room.pk, user_id=heir.pk, role="owner")
    assert roles(room) == {"owner": "admin", "heir": "owner", "member": "member"}
    with refused(FORBIDDEN):
        services.room_delete(actor=owner, room_id=room.pk)


# -- deleting a room ---------------------------------------------------------------------------------------
def test_only_the_owner_deletes_a_room(make_user, make_room):
    owner, member, outsider = make_user(), make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    with refused(FORBIDDEN):
        services.room_delete(actor=member, room_id=room.pk)
    with refused(NOT_MEMBER):
        services.room_delete(actor=outsider, room_id=room.pk)
    assert Room.objects.filter(pk=room.pk).exists()


def test_deleting_a_room_removes_its_messages_and_read_positions_and_unsubscribes_members(
    make_user, make_room, store_messages, listen, committed
):
    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    kept = make_room(owner=owner, members=[member], name="kept")
    store_messages(room, owner, count=3)
    store_messages(kept, owner, count=1)
    heard = listen(f"room.{room.pk}", f"user.{owner.pk}", f"user.{member.pk}")
    with committed():
        services.room_delete(actor=owner, room_id=room.pk)
    assert not Room.objects.filter(pk=room.pk).exists()
    assert not Participant.objects.filter(room_id=room.pk).exists()
    assert not kept.messages.model.objects.filter(room_id=room.pk).exists()
    assert kept.messages.count() == 1 and Participant.objects.filter(room=kept).count() == 2
    events = heard.events()
    assert events[0] == (f"room.{room.pk}", {"type": "room.deleted", "room": room.pk}, None)
    assert sorted(events[1:]) == sorted(
        (f"user.{u.pk}", None, {"op": services.LEAVE_ROOM, "room": room.pk}) for u in (owner, member)
    )
    assert selectors.room_ids_for_user(user_id=member.pk) == [kept.pk]
