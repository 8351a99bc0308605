"""Rooms, participants and read positions through the services, on the real database and Redis."""

from __future__ import annotations

import pytest

from chat_messages.models import Message
from rooms import selectors, services
from rooms.models import Participant, Room
from streams.errors import ChatError
from streams.realtime.protocol import OP_JOIN_ROOM, OP_LEAVE_ROOM

pytestmark = pytest.mark.django_db

OWNER, ADMIN, MEMBER = Participant.Role.OWNER, Participant.Role.ADMIN, Participant.Role.MEMBER


def role_of(room, user) -> str | None:
    return Participant.objects.filter(room=room, user=user).values_list("role", flat=True).first()


def refused(code: str, fn, **kwargs) -> ChatError:
    with pytest.raises(ChatError) as caught:
        fn(**kwargs)
    assert caught.value.code == code, caught.value.detail
    return caught.value


# -- rooms ------------------------------------------------------------------------------------------
def test_a_group_room_has_its_creator_as_owner_and_the_invited_as_members(make_user):
    owner, a, b = make_user(), make_user(), make_user()
    room = services.room_create_group(owner=owner, name="  team  ", member_ids=[a.pk, b.pk, owner.pk])
    assert room.name == "team"
    assert {(p.user_id, p.role) for p in room.participants.all()} == {(owner.pk, OWNER), (a.pk, MEMBER), (b.pk, MEMBER)}


def test_a_group_room_with_an_unknown_member_is_refused_and_not_created(make_user):
    owner = make_user()
    refused("invalid", services.room_create_group, owner=owner, name="x", member_ids=[10**12])
    assert not Room.objects.filter(created_by=owner).exists()


def test_there_is_one_direct_room_per_pair_whoever_opens_it(make_user):
    a, b = make_user(), make_user()
    room, created = services.room_open_direct(user=a, other=b)
    again, created_again = services.room_open_direct(user=b, other=a)
    assert created and not created_again
    assert again.pk == room.pk
    assert Room.objects.filter(kind=Room.Kind.DIRECT, participants__user=a).count() == 1


def test_reopening_a_direct_room_brings_back_whoever_left_it(make_user):
    a, b = make_user(), make_user()
    room, _ = services.room_open_direct(user=a, other=b)
    services.participant_leave(user_id=b.pk, room_id=room.pk)
    again, created = services.room_open_direct(user=a, other=b)
    assert (again.pk, created) == (room.pk, False)
    assert set(room.participants.values_list("user_id", flat=True)) == {a.pk, b.pk}


def test_owner_and_admins_may_rename_but_members_may_not(
    make_user, make_room, feed, django_capture_on_commit_callbacks
):
    owner, admin, member = make_user(), make_user(), make_user()
    room = make_room(owner=owner, members=[admin, member])
    Participant.objects.filter(room=room, user=admin).update(role=ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        services.room_update(user_id=admin.pk, room_id=room.pk, name="renamed", is_public=True)
    refused("forbidden", services.room_update, user_id=member.pk, room_id=room.pk, name="mine")
    room.refresh_from_db()
    assert (room.name, room.is_public) == ("renamed", True)
    assert feed.frames(f"room.{room.pk}") == [
        {"type": "room.updated", "room": room.pk, "name": "renamed", "topic": "", "is_public": True, "owner": owner.pk}
    ]


def test_deleting_a_room_removes_its_messages_and_read_positions_and_tells_the_members(
    make_user, make_room, post, feed, django_capture_on_commit_callbacks
):
    from drawer.models import SavedMessage
    from drawer.services import drawer_entry_save

    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member], name="doomed")
    post(room, member, count=3)
    entry, _ = drawer_entry_save(user=member, room_id=room.pk, seq=2)
    feed.clear()

    with django_capture_on_commit_callbacks(execute=True):
        services.room_delete(user_id=owner.pk, room_id=room.pk)

    assert not Room.objects.filter(pk=room.pk).exists()
    assert not Message.objects.filter(room_id=room.pk).exists()
    assert not Participant.objects.filter(room_id=room.pk).exists()
    entry = SavedMessage.objects.get(pk=entry.pk)
    assert (entry.room_id, entry.message_id, entry.body, entry.room_name) == (None, None, "hello 1", "doomed")
    events = [
        (g, f, c) for g, f, c in feed.events() if g in (f"room.{room.pk}", f"user.{owner.pk}", f"user.{member.pk}")
    ]
    assert events[0] == (f"room.{room.pk}", {"type": "room.deleted", "room": room.pk}, None)
    assert {(g, c["op"], c["room"]) for g, _, c in events[1:]} == {
        (f"user.{owner.pk}", OP_LEAVE_ROOM, room.pk),
        (f"user.{member.pk}", OP_LEAVE_ROOM, room.pk),
    }


def test_only_the_owner_may_delete_a_group_room_and_nobody_a_direct_one(make_user, make_room):
    owner, admin = make_user(), make_user()
    room = make_room(owner=owner, members=[admin])
    Participant.objects.filter(room=room, user=admin).update(role=ADMIN)
    refused("forbidden", services.room_delete, user_id=admin.pk, room_id=room.pk)
    direct, _ = services.room_open_direct(user=owner, other=admin)
    refused("forbidden", services.room_delete, user_id=owner.pk, room_id=direct.pk)
    assert Room.objects.filter(pk__in=[room.pk, direct.pk]).count() == 2


def test_deleting_a_room_stands_when_kafka_cannot_hear_of_it(
    make_user, make_room, kafka_away, caplog, django_capture_on_commit_callbacks
):
    owner = make_user()
    room = make_room(owner=owner)
    with django_capture_on_commit_callbacks(execute=True):
        services.room_delete(user_id=owner.pk, room_id=room.pk)
    assert not Room.objects.filter(pk=room.pk).exists()
    assert "announcing room.deleted on Kafka failed" in caplog.text


# -- participants ------------------------------------------------------------------------------------
def test_owner_and_admins_invite_members_do_not(make_user, make_room, feed, django_capture_on_commit_callbacks):
    owner, admin, member, newcomer, other = (make_user() for _ in range(5))
    room = make_room(owner=owner, members=[admin, member])
    Participant.objects.filter(room=room, user=admin).update(role=ADMIN)
    with django_capture_on_commit_callbacks(execute=True):
        services.participant_invite(actor_id=admin.pk, room_id=room.pk, user_id=newcomer.pk)
    refused("forbidden", services.participant_invite, actor_id=member.pk, room_id=room.pk, user_id=other.pk)
    refused("conflict", services.participant_invite, actor_id=owner.pk, room_id=room.pk, user_id=member.pk)
    refused("invalid", services.participant_invite, actor_id=owner.pk, room_id=room.pk, user_id=10**12)
    assert role_of(room, newcomer) == MEMBER and role_of(room, other) is None
    added = frame_of_type(feed, "participant.added")
    assert (f"room.{room.pk}", {"type": "participant.added", "room": room.pk, "user": newcomer.pk}, None) in added
    by = {"id": admin.pk, "username": admin.username}  # the newcomer hears who added them
    assert (
        f"user.{newcomer.pk}",
        {"type": "participant.added", "room": room.pk, "user": newcomer.pk, "by": by},
        {"op": OP_JOIN_ROOM, "room": room.pk},
    ) in added


def frame_of_type(feed, kind: str):
    return [(g, f, c) for g, f, c in feed.events() if f and f["type"] == kind]


def test_a_newcomer_starts_caught_up_so_old_messages_keep_their_counters(make_user, make_room, post):
    owner, newcomer = make_user(), make_user()
    room = make_room(owner=owner)
    post(room, owner, count=4)
    participant = services.participant_invite(actor_id=owner.pk, room_id=room.pk, user_id=newcomer.pk)
    assert participant.last_read_seq == 4
    unread = selectors.unread_counter(room_id=room.pk)
    assert [unread(seq) for seq in range(1, 5)] == [0, 0, 0, 0]


def test_anyone_may_join_a_public_room_and_a_private_room_looks_like_a_missing_one(make_user):
    owner, visitor = make_user(), make_user()
    public = services.room_create_group(owner=owner, name="lobby", is_public=True)
    private = services.room_create_group(owner=owner, name="secret")
    participant, joined = services.participant_join(user_id=visitor.pk, room_id=public.pk)
    assert joined and participant.role == MEMBER
    assert services.participant_join(user_id=visitor.pk, room_id=public.pk)[1] is False
    hidden = refused("not_member", services.participant_join, user_id=visitor.pk, room_id=private.pk)
    missing = refused("not_member", services.participant_join, user_id=visitor.pk, room_id=private.pk + 10**6)
    assert hidden.detail == missing.detail


def test_who_may_remove_whom(make_user, make_room):
    owner, admin, admin2, member, member2 = (make_user() for _ in range(5))
    room = make_room(owner=owner, members=[admin, admin2, member, member2])
    Participant.objects.filter(room=room, user__in=[admin, admin2]).update(role=ADMIN)
    refused("forbidden", services.participant_remove, actor_id=member.pk, room_id=room.pk, user_id=member2.pk)
    refused("forbidden", services.participant_remove, actor_id=admin.pk, room_id=room.pk, user_id=admin2.pk)
    refused("forbidden", services.participant_remove, actor_id=admin.pk, room_id=room.pk, user_id=owner.pk)
    refused("not_found", services.participant_remove, actor_id=owner.pk, room_id=room.pk, user_id=10**12)
    services.participant_remove(actor_id=admin.pk, room_id=room.pk, user_id=member.pk)
    services.participant_remove(actor_id=owner.pk, room_id=room.pk, user_id=admin2.pk)
    assert set(room.participants.values_list("user_id", flat=True)) == {owner.pk, admin.pk, member2.pk}


def test_a_removed_member_s_sockets_are_told_to_drop_the_room_before_the_room_hears(
    make_user, make_room, feed, django_capture_on_commit_callbacks
):
    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    with django_capture_on_commit_callbacks(execute=True):
        services.participant_remove(actor_id=owner.pk, room_id=room.pk, user_id=member.pk)
    assert frame_of_type(feed, "participant.removed") == [
        (
            f"user.{member.pk}",
            {"type": "participant.removed", "room": room.pk, "user": member.pk},
            {"op": OP_LEAVE_ROOM, "room": room.pk},
        ),
        (
            f"room.{room.pk}",
            {"type": "participant.removed", "room": room.pk, "user": member.pk, "last_read_seq": 0},
            None,
        ),
    ]


def test_an_owner_leaving_hands_the_room_to_the_oldest_admin_else_the_oldest_member(make_user, make_room):
    owner, first, second, admin = (make_user() for _ in range(4))
    room = make_room(owner=owner, members=[first, second, admin])
    Participant.objects.filter(room=room, user=admin).update(role=ADMIN)
    services.participant_remove(actor_id=owner.pk, room_id=room.pk, user_id=owner.pk)  # removing yourself = leaving
    assert role_of(room, admin) == OWNER and role_of(room, owner) is None
    services.participant_leave(user_id=admin.pk, room_id=room.pk)
    assert role_of(room, first) == OWNER and role_of(room, second) == MEMBER


def test_the_last_one_out_deletes_the_room(make_user, make_room, post):
    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    post(room, owner, count=2)
    services.participant_leave(user_id=owner.pk, room_id=room.pk)
    services.participant_leave(user_id=member.pk, room_id=room.pk)
    assert not Room.objects.filter(pk=room.pk).exists()
    assert not Message.objects.filter(room_id=room.pk).exists()


def test_handing_the_room_over_makes_the_old_owner_an_admin(make_user, make_room):
    owner, member = make_user(), make_user()
    room = make_room(owner=owner, members=[member])
    refused(
        "forbidden", services.participant_role_set, actor_id=member.pk, room_id=room.pk, user_id=member.pk, role=ADMIN
    )
    services.participant_role_set(actor_id=owner.pk, room_id=room.pk, user_id=member.pk, role=OWNER)
    assert (role_of(room, owner), role_of(room, member)) == (ADMIN, OWNER)
    refused(
        "invalid", services.participant_role_set, actor_id=member.pk, room_id=room.pk, user_id=owner.pk, role="king"
    )


# -- read positions and unread counts -----------------------------------------------------------------
def test_a_read_position_only_moves_forward_and_stops_at_the_newest_message(make_user, make_room, post):
    owner, reader = make_user(), make_user()
    room = make_room(owner=owner, members=[reader])
    post(room, owner, count=5)
    assert services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=3) == 3
    assert services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=1) == 3
    assert services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=99) == 5
    assert Participant.objects.get(room=room, user=reader).last_read_seq == 5


def test_marking_unread_is_the_only_way_back_and_never_moves_forward(make_user, make_room, post):
    owner, reader = make_user(), make_user()
    room = make_room(owner=owner, members=[reader])
    post(room, owner, count=5)
    services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=4)
    assert services.read_position_mark_unread(user_id=reader.pk, room_id=room.pk, seq=2) == 1
    assert services.read_position_mark_unread(user_id=reader.pk, room_id=room.pk, seq=5) == 1
    refused("not_found", services.read_position_mark_unread, user_id=reader.pk, room_id=room.pk, seq=6)
    assert selectors.room_summary_for_member(room_id=room.pk, user_id=reader.pk).unread == 4


def test_members_and_the_reader_s_other_sessions_hear_of_reads_with_the_range_that_changed(
    make_user, make_room, post, feed, django_capture_on_commit_callbacks
):
    owner, reader = make_user(), make_user()
    room = make_room(owner=owner, members=[reader])
    post(room, owner, count=5)
    with django_capture_on_commit_callbacks(execute=True):
        services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=4)
        services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=2)  # no move, no event
        services.read_position_mark_unread(user_id=reader.pk, room_id=room.pk, seq=3)
    reads = [f for f in feed.frames(f"room.{room.pk}") if f["type"] == "room.read"]
    assert reads == [
        {"type": "room.read", "room": room.pk, "user": reader.pk, "seq": 4, "from_seq": 0},
        {"type": "room.read", "room": room.pk, "user": reader.pk, "seq": 2, "from_seq": 4},
    ]


def test_per_message_counters_follow_sends_reads_leaves_and_removals(make_user, make_room, post):
    owner, a, b, c = (make_user() for _ in range(4))
    room = make_room(owner=owner, members=[a, b, c])

    def counters():
        unread = selectors.unread_counter(room_id=room.pk)
        return [unread(seq) for seq in range(1, room.last_seq + 1)]

    post(room, owner, count=3)
    assert counters() == [3, 3, 3]  # the sender has read their own messages
    post(room, a)
    assert counters() == [2, 2, 2, 3]  # sending reads up to one's own message
    services.read_position_advance(user_id=b.pk, room_id=room.pk, seq=2)
    assert counters() == [1, 1, 2, 3]
    services.participant_leave(user_id=c.pk, room_id=room.pk)
    assert counters() == [0, 0, 1, 2]
    services.participant_remove(actor_id=owner.pk, room_id=room.pk, user_id=b.pk)
    assert counters() == [0, 0, 0, 1]
    services.read_position_mark_unread(user_id=a.pk, room_id=room.pk, seq=4)
    assert counters() == [0, 0, 0, 2]


def test_unread_counts_follow_sends_and_reads(make_user, make_room, post):
    owner, reader = make_user(), make_user()
    room = make_room(owner=owner, members=[reader])
    post(room, owner, count=3)
    summary = selectors.room_summary_for_member(room_id=room.pk, user_id=reader.pk)
    assert (summary.unread, summary.last_read_seq, summary.room.last_seq) == (3, 0, 3)
    assert selectors.room_summary_for_member(room_id=room.pk, user_id=owner.pk).unread == 0
    services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=2)
    assert selectors.room_summary_for_member(room_id=room.pk, user_id=reader.pk).unread == 1
    post(room, reader)
    assert selectors.room_summary_for_member(room_id=room.pk, user_id=reader.pk).unread == 0
    assert selectors.room_summary_for_member(room_id=room.pk, user_id=owner.pk).unread == 1


def test_readers_of_a_message_are_the_members_who_reached_it(make_user, make_room, post):
    owner, early, late = make_user("olga"), make_user("erin"), make_user("lena")
    room = make_room(owner=owner, members=[early, late])
    post(room, owner, count=3)
    services.read_position_advance(user_id=early.pk, room_id=room.pk, seq=3)
    services.read_position_advance(user_id=late.pk, room_id=room.pk, seq=1)
    readers, unread = selectors.message_readers(room_id=room.pk, user_id=late.pk, seq=2)
    assert [p.user.username for p in readers] == ["erin", "olga"] and unread == 1
    refused("not_found", selectors.message_readers, room_id=room.pk, user_id=late.pk, seq=4)
