"""Listing a drawer: newest first, every filter, cursor pages, and one query per page."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chat_messages.services import message_apply_delete
from drawer.models import SavedMessage
from drawer.selectors import drawer_entries_list, drawer_entry_payload, drawer_rooms, drawer_tags
from drawer.services import drawer_entry_save
from rooms.models import Participant
from streams.errors import ChatError

pytestmark = pytest.mark.django_db


def save(user, message, *, at: datetime | None = None, **fields) -> SavedMessage:
    entry, _ = drawer_entry_save(user=user, message_id=message.pk, **fields)
    if at is not None:
        SavedMessage.objects.filter(pk=entry.pk).update(saved_at=at)
    return entry


def ids(page) -> list[int]:
    return [e.pk for e in page.entries]


def all_pages(**kwargs) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        page = drawer_entries_list(cursor=cursor, **kwargs)
        pages.append(ids(page))
        cursor = page.next_cursor
        if cursor is None:
            return pages


def test_newest_saved_first(alice, make_room, make_message):
    room = make_room(owner=alice)
    first = save(alice, make_message(room, alice, "one"))
    second = save(alice, make_message(room, alice, "two"))
    # Saving an old message later puts it on top: the drawer is ordered by when I saved.
    old = make_message(room, alice, "three")
    third = save(alice, old)

    assert ids(drawer_entries_list(user_id=alice.pk)) == [third.pk, second.pk, first.pk]


def test_only_my_entries_are_listed(alice, bob, make_room, make_message):
    room = make_room(owner=alice, members=[bob])
    message = make_message(room, alice, "shared")
    mine = save(alice, message)
    save(bob, make_message(room, bob, "bob's own"))
    save(bob, message)

    assert ids(drawer_entries_list(user_id=alice.pk)) == [mine.pk]
    assert ids(drawer_entries_list(user_id=alice.pk, query="bob's own")) == []


def test_filter_by_room(alice, make_room, make_message):
    kitchen, garden = make_room(owner=alice, name="kitchen"), make_room(owner=alice, name="garden")
    in_kitchen = [save(alice, make_message(kitchen, alice)) for _ in range(2)]
    save(alice, make_message(garden, alice))

    assert ids(drawer_entries_list(user_id=alice.pk, room_id=kitchen.pk)) == [e.pk for e in reversed(in_kitchen)]


def test_filter_by_tags_needs_all_of_them_and_ignores_case(alice, make_room, make_message):
    room = make_room(owner=alice)
    both = save(alice, make_message(room, alice), tags=["work", "urgent"])
    work = save(alice, make_message(room, alice), tags=["work"])
    save(alice, make_message(room, alice), tags=["home"])
    save(alice, make_message(room, alice))

    assert ids(drawer_entries_list(user_id=alice.pk, tags=["Work"])) == [work.pk, both.pk]
    assert ids(drawer_entries_list(user_id=alice.pk, tags=["work", "URGENT"])) == [both.pk]
    assert ids(drawer_entries_list(user_id=alice.pk, tags=["nope"])) == []


def test_filter_by_date_range(alice, make_room, make_message):
    room = make_room(owner=alice)
    day = datetime(2026, 3, 10, tzinfo=UTC)
    before = save(alice, make_message(room, alice), at=day - timedelta(seconds=1))
    start = save(alice, make_message(room, alice), at=day)
    noon = save(alice, make_message(room, alice), at=day + timedelta(hours=12))
    next_day = save(alice, make_message(room, alice), at=day + timedelta(days=1))

    assert ids(drawer_entries_list(user_id=alice.pk, since=day)) == [next_day.pk, noon.pk, start.pk]
    assert ids(drawer_entries_list(user_id=alice.pk, until=day)) == [before.pk]
    assert ids(drawer_entries_list(user_id=alice.pk, since=day, until=day + timedelta(days=1))) == [noon.pk, start.pk]


def test_filter_by_text_in_body_note_sender_room_and_tag(alice, bob, make_room, make_message):
    room = make_room(owner=alice, members=[bob], name="Quarterly planning")
    other = make_room(owner=alice, name="random")
    by_body = save(alice, make_message(other, alice, "The BUDGET is due friday"))
    by_note = save(alice, make_message(other, alice, "see attachment"), note="budget numbers")
    by_tag = save(alice, make_message(other, alice, "numbers"), tags=["budget"])
    by_room = save(alice, make_message(room, alice, "y"))
    by_bob = save(alice, make_message(room, bob, "z"))

    assert ids(drawer_entries_list(user_id=alice.pk, query="budget")) == [by_tag.pk, by_note.pk, by_body.pk]
    assert ids(drawer_entries_list(user_id=alice.pk, query="quarterly")) == [by_bob.pk, by_room.pk]
    assert ids(drawer_entries_list(user_id=alice.pk, query="BOB")) == [by_bob.pk]


def test_filters_combine(alice, make_room, make_message):
    kitchen, garden = make_room(owner=alice, name="kitchen"), make_room(owner=alice, name="garden")
    match = save(alice, make_message(kitchen, alice, "buy milk"), tags=["todo"])
    save(alice, make_message(kitchen, alice, "buy eggs"))
    save(alice, make_message(garden, alice, "buy seeds"), tags=["todo"])

    page = drawer_entries_list(user_id=alice.pk, room_id=kitchen.pk, tags=["todo"], query="buy")
    assert ids(page) == [match.pk]


def test_cursor_pages_cover_everything_once_in_order(alice, make_room, make_message):
    room = make_room(owner=alice)
    same_time = datetime(2026, 1, 1, tzinfo=UTC)
    # Several entries share a saved_at: the cursor's id tie-break keeps them apart.
    entries = [save(alice, make_message(room, alice), at=same_time if i % 2 else None) for i in range(7)]
    expected = [e.pk for e in sorted(SavedMessage.objects.filter(pk__in=[e.pk for e in entries]),
                                     key=lambda e: (e.saved_at, e.pk), reverse=True)]  # fmt: skip

    pages = all_pages(user_id=alice.pk, limit=3)

    assert [len(p) for p in pages] == [3, 3, 1]
    assert [pk for p in pages for pk in p] == expected


def test_cursor_pages_keep_the_filters(alice, make_room, make_message):
    room = make_room(owner=alice)
    tagged = [save(alice, make_message(room, alice), tags=["keep"]) for _ in range(5)]
    for _ in range(3):
        save(alice, make_message(room, alice))

    pages = all_pages(user_id=alice.pk, tags=["keep"], limit=2)

    assert pages == [[tagged[4].pk, tagged[3].pk], [tagged[2].pk, tagged[1].pk], [tagged[0].pk]]


def test_exact_last_page_has_no_next_cursor(alice, make_room, make_message):
    room = make_room(owner=alice)
    for _ in range(2):
        save(alice, make_message(room, alice))

    assert drawer_entries_list(user_id=alice.pk, limit=2).next_cursor is None


@pytest.mark.parametrize("cursor", ["garbage", "W10", "WyJub3QtYS1kYXRlIiwxXQ"])
def test_a_forged_cursor_is_invalid(alice, cursor):
    with pytest.raises(ChatError) as refused:
        drawer_entries_list(user_id=alice.pk, cursor=cursor)
    assert refused.value.code == "invalid"


def test_a_page_costs_one_query_whatever_its_links(alice, bob, make_room, make_message, django_assert_num_queries):
    rooms = [make_room(owner=alice, members=[bob], name=f"room {i}") for i in range(4)]
    for room in rooms:
        for _ in range(3):
            save(bob, make_message(room, alice))
    # Mixed states: a deleted message, a room bob left, a deleted room.
    deleted = make_message(rooms[0], alice, "gone")
    save(bob, deleted)
    message_apply_delete(env={"room": rooms[0].pk, "seq": deleted.seq, "sender": alice.pk})
    Participant.objects.filter(room=rooms[1], user=bob).delete()
    rooms[2].delete()

    with django_assert_num_queries(1):
        page = drawer_entries_list(user_id=bob.pk, limit=50)
        payloads = [drawer_entry_payload(e) for e in page.entries]

    linked = {p["room"] for p in payloads if p["jump"]}
    assert linked == {rooms[0].pk, rooms[3].pk}
    assert len(payloads) == 13
    assert next(p for p in payloads if p["body"] == "gone")["jump"] is None


def test_filter_choices(alice, make_room, make_message):
    kitchen, garden = make_room(owner=alice, name="kitchen"), make_room(owner=alice, name="garden")
    save(alice, make_message(kitchen, alice), tags=["todo", "home"])
    save(alice, make_message(kitchen, alice), tags=["todo"])
    save(alice, make_message(garden, alice))

    assert drawer_rooms(user_id=alice.pk) == [
        {"room": garden.pk, "room_name": "garden", "count": 1},
        {"room": kitchen.pk, "room_name": "kitchen", "count": 2},
    ]
    assert drawer_tags(user_id=alice.pk) == [{"tag": "todo", "count": 2}, {"tag": "home", "count": 1}]
