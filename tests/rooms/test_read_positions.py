"""Last-read positions, unread counts and KakaoTalk's per-message "1"."""

from __future__ import annotations

import pytest

from rooms import selectors, services
from streams.errors import NOT_FOUND, NOT_MEMBER, ChatError

pytestmark = pytest.mark.django_db


def position(room, user) -> int:
    return selectors.participant_get(room_id=room.pk, user_id=user.pk).last_read_seq


def counters(room) -> list[int]:
    unread = selectors.unread_counter(room_id=room.pk)
    room.refresh_from_db()
    return [unread(seq) for seq in range(1, room.last_seq + 1)]


def test_a_read_position_only_moves_forward_and_never_past_the_newest_message(make_user, make_room, store_messages):
    owner, reader = make_user(), make_user()
    room = make_room(owner=owner, members=[reader])
    store_messages(room, owner, count=5)
    assert services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=3) == 3
    assert services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=1) == 3
    assert services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=99) == 5
    assert position(room, reader) == 5


def test_mark_unread_moves_back_to_just_before_the_message_and_never_forward(make_user, make_room, store_messages):
    owner, reader = make_user(), make_user()
    room = make_room(owner=owner, members=[reader])
    store_messages(room, owner, count=5)
    services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=4)
    assert services.read_position_mark_unread(user_id=reader.pk, room_id=room.pk, seq=2) == 1
    # Marking a later message unread reads nothing.
    assert services.read_position_mark_unread(user_id=reader.pk, room_id=room.pk, seq=5) == 1
    assert position(room, reader) == 1
    for seq in (0, 6):
        with pytest.raises(ChatError) as refusal:
            services.read_position_mark_unread(user_id=reader.pk, room_id=room.pk, seq=seq)
        assert refusal.value.code == NOT_FOUND


def test_reads_are_told_to_the_room_with_the_previous_position_and_repeats_are_silent(
    make_user, make_room, store_messages, listen, committed
):
    owner, reader = make_user(), make_user()
    room = make_room(owner=owner, members=[reader])
    store_messages(room, owner, count=4)
    heard = listen(f"room.{room.pk}")
    with committed():
        services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=3)
        services.read_position_advance(user_id=reader.pk, room_id=room.pk, seq=2)
        services.read_position_mark_unread(user_id=reader.pk, room_id=room.pk, seq=2)
    base = {"type": "room.read", "room": room.pk, "user": reader.pk}
    assert [f for _, f, _ in heard.events()] == [
        {**base, "seq": 3, "previous_seq": 0},
        {**base, "seq": 1, "previous_seq": 3},
    ]


def test_non_members_neither_read_nor_mark_unread(make_user, make_room, store_messages):
    owner, outsider = make_user(), make_user()
    room = make_room(owner=owner)
    store_messages(room, owner)
    for call in (services.read_position_advance, services.read_position_mark_unread):
        with pytest.raises(ChatError) as refusal:
            call(user_id=outsider.pk, room_id=room.pk, seq=1)
        assert refusal.value.code == NOT_MEMBER


def test_unread_counts_follow_sends_reads_leaves_and_removals(make_user, make_room, store_messages):
    ann, bob, cat, dan = (make_user(n) for n in ("ann", "bob", "cat", "dan"))
    room = make_room(owner=ann, members=[bob, cat, dan])
    store_messages(room, ann, count=3)
    # The sender has read their own messages; the three others have not.
    assert counters(room) == [3, 3, 3]
    assert position(room, ann) == 3
    store_messages(room, bob)
    # Sending moved bob past ann's messages too; his own is unread by the three others.
    assert counters(room) == [2, 2, 2, 3]
    services.read_position_advance(user_id=cat.pk, room_id=room.pk, seq=2)
    assert counters(room) == [1, 1, 2, 3]
    services.participant_leave(user=dan, room_id=room.pk)
    assert counters(room) == [0, 0, 1, 2]
    services.participant_remove(actor=ann, room_id=room.pk, user_id=cat.pk)
    assert counters(room) == [0, 0, 0, 1]
    services.read_position_mark_unread(user_id=bob.pk, room_id=room.pk, seq=1)
    assert counters(room) == [1, 1, 1, 2]

    rooms = {r.room_id: r for r in selectors.room_list_for_user(user_id=bob.pk)}
    assert (rooms[room.pk].unread, rooms[room.pk].last_read_seq, rooms[room.pk].room.last_seq) == (4, 0, 4)


def test_readers_of_a_message_are_the_members_who_read_that_far(make_user, make_room, store_messages):
    ann, bob, cat = make_user("ann"), make_user("bob"), make_user("cat")
    room = make_room(owner=ann, members=[bob, cat])
    store_messages(room, ann, count=3)
    services.read_position_advance(user_id=cat.pk, room_id=room.pk, seq=2)
    readers, unread = selectors.message_readers(room_id=room.pk, user_id=bob.pk, seq=2)
    assert ([r.user.username for r in readers], unread) == (["ann", "cat"], 1)
    readers, unread = selectors.message_readers(room_id=room.pk, user_id=bob.pk, seq=3)
    assert ([r.user.username for r in readers], unread) == (["ann"], 2)
    for seq in (0, 4):
        with pytest.raises(ChatError) as refusal:
            selectors.message_readers(room_id=room.pk, user_id=bob.pk, seq=seq)
        assert refusal.value.code == NOT_FOUND


# -- the room list -------------------------------------------------------------------------------------
def test_the_room_list_is_ordered_by_latest_activity_with_counts_and_last_message(make_user, make_room, store_messages):
    me, ann, bob = make_user("me"), make_user("ann"), make_user("bob")
    quiet = make_room(owner=me, members=[ann], name="quiet")
    busy = make_room(owner=ann, members=[me, bob], name="busy")
    direct, _ = services.room_open_direct(user=bob, other=me)
    store_messages(busy, ann, count=2, body="latest news")
    store_messages(direct, bob, count=1, body="psst")
    store_messages(busy, bob, count=1, body="newest of all")

    listed = selectors.room_list_for_user(user_id=me.pk)
    assert [r.room_id for r in listed] == [busy.pk, direct.pk, quiet.pk]
    by_id = {r.room_id: r for r in listed}
    assert (by_id[busy.pk].unread, by_id[busy.pk].member_count) == (3, 3)
    assert by_id[busy.pk].room.last_message_preview == "newest of all 0"
    assert (by_id[direct.pk].other_user_id, by_id[direct.pk].other_username) == (bob.pk, "bob")
    assert (by_id[direct.pk].unread, by_id[direct.pk].member_count) == (1, 2)
    assert (by_id[quiet.pk].unread, by_id[quiet.pk].other_user_id, by_id[quiet.pk].room.last_message_at) == (
        0,
        None,
        None,
    )


def test_the_room_list_of_a_user_in_200_rooms_takes_one_query(
    make_user, make_room, store_messages, django_assert_num_queries
):
    me, other = make_user(), make_user()
    rooms = [make_room(owner=other, members=[me], name=f"room {i}") for i in range(198)]
    for friend in (make_user(), make_user()):
        rooms.append(services.room_open_direct(user=me, other=friend)[0])
    for room in rooms[::20]:
        store_messages(room, other)
    with django_assert_num_queries(1):
        listed = selectors.room_list_for_user(user_id=me.pk)
        # Reading every field the REST answer shows must not add queries either.
        shown = [(r.room.name, r.unread, r.member_count, r.other_username, r.room.last_message_preview) for r in listed]
    assert len(shown) == 200
    assert sum(unread for _, unread, *_ in shown) == len(rooms[::20])
