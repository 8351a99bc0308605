"""Saving, editing and unsaving drawer entries, and what the snapshot survives."""

from __future__ import annotations

import pytest

from chat_messages.models import Message
from chat_messages.services import message_apply_delete, message_apply_edit
from drawer.models import SavedMessage
from drawer.selectors import drawer_entry_get, drawer_entry_payload
from drawer.services import (
    drawer_entry_remove,
    drawer_entry_save,
    drawer_entry_update,
    drawer_snapshots_detach_sender,
)
from rooms.models import Participant
from rooms.services import room_open_direct
from streams.errors import ChatError

pytestmark = pytest.mark.django_db


def payload(user, entry_id):
    return drawer_entry_payload(drawer_entry_get(user_id=user.pk, entry_id=entry_id))


def test_save_keeps_a_snapshot_and_links_back(alice, bob, room, make_message):
    message = make_message(room, bob, "the wifi password is hunter2")

    entry, created = drawer_entry_save(user=alice, message_id=message.pk, note="wifi", tags=["Home", "home ", "net"])

    assert created
    data = payload(alice, entry.pk)
    assert data["body"] == "the wifi password is hunter2"
    assert data["sender_name"] == "bob"
    assert data["room_name"] == "team"
    assert data["message_seq"] == message.seq
    assert data["message_created_at"] == message.created_at.isoformat()
    assert data["note"] == "wifi"
    assert data["tags"] == ["home", "net"]
    assert data["jump"] == {"room": room.pk, "seq": message.seq}
    assert data["current_body"] == "the wifi password is hunter2"
    assert data["edited_since_saved"] is False


def test_save_by_room_and_seq(alice, room, make_message):
    make_message(room, alice, "first")
    second = make_message(room, alice, "second")

    entry, created = drawer_entry_save(user=alice, room_id=room.pk, seq=second.seq)

    assert created
    assert entry.message_id == second.pk
    assert entry.body == "second"


def test_saving_twice_keeps_one_entry_unchanged(alice, room, make_message):
    message = make_message(room, alice)
    first, created = drawer_entry_save(user=alice, message_id=message.pk, note="original", tags=["a"])

    again, created_again = drawer_entry_save(user=alice, room_id=room.pk, seq=message.seq, note="other", tags=["b"])

    assert created and not created_again
    assert again.pk == first.pk
    assert (again.note, again.tags) == ("original", ["a"])
    assert SavedMessage.objects.filter(user=alice).count() == 1


def test_two_users_save_the_same_message_separately(alice, bob, room, make_message):
    message = make_message(room, alice)

    mine, _ = drawer_entry_save(user=alice, message_id=message.pk, note="mine")
    theirs, _ = drawer_entry_save(user=bob, message_id=message.pk, note="theirs")

    assert mine.pk != theirs.pk
    assert payload(alice, mine.pk)["note"] == "mine"
    assert payload(bob, theirs.pk)["note"] == "theirs"


def test_edit_note_and_tags(alice, room, make_message):
    entry, _ = drawer_entry_save(user=alice, message_id=make_message(room, alice).pk, note="old", tags=["x"])

    drawer_entry_update(user=alice, entry_id=entry.pk, note="  new note  ")
    assert (payload(alice, entry.pk)["note"], payload(alice, entry.pk)["tags"]) == ("new note", ["x"])

    drawer_entry_update(user=alice, entry_id=entry.pk, tags=["Y", "z"])
    assert (payload(alice, entry.pk)["note"], payload(alice, entry.pk)["tags"]) == ("new note", ["y", "z"])

    drawer_entry_update(user=alice, entry_id=entry.pk, note="", tags=[])
    assert (payload(alice, entry.pk)["note"], payload(alice, entry.pk)["tags"]) == ("", [])


def test_unsave_removes_the_entry_but_not_the_message(alice, room, make_message):
    message = make_message(room, alice)
    entry, _ = drawer_entry_save(user=alice, message_id=message.pk)

    drawer_entry_remove(user=alice, entry_id=entry.pk)

    assert not SavedMessage.objects.filter(pk=entry.pk).exists()
    message.refresh_from_db()
    assert message.body == "hello"
    # Unsaved, it can be saved again as a new entry.
    _, created = drawer_entry_save(user=alice, message_id=message.pk)
    assert created


def test_snapshot_survives_the_originals_edit(alice, bob, room, make_message):
    message = make_message(room, bob, "meet at 5")
    entry, _ = drawer_entry_save(user=alice, message_id=message.pk)

    message_apply_edit(env={"room": room.pk, "seq": message.seq, "sender": bob.pk, "body": "meet at 6"})

    data = payload(alice, entry.pk)
    assert data["body"] == "meet at 5"
    assert data["current_body"] == "meet at 6"
    assert data["edited_since_saved"] is True
    assert data["jump"] == {"room": room.pk, "seq": message.seq}


def test_snapshot_survives_the_originals_deletion(alice, bob, room, make_message):
    message = make_message(room, bob, "the door code is 4711")
    entry, _ = drawer_entry_save(user=alice, message_id=message.pk)

    message_apply_delete(env={"room": room.pk, "seq": message.seq, "sender": bob.pk})

    data = payload(alice, entry.pk)
    assert data["body"] == "the door code is 4711"
    assert data["sender_name"] == "bob"
    assert data["jump"] is None
    assert data["current_body"] is None


def test_snapshot_survives_the_room_being_deleted(alice, bob, room, make_message):
    message = make_message(room, bob, "keep this")
    entry, _ = drawer_entry_save(user=alice, message_id=message.pk)

    room.delete()

    data = payload(alice, entry.pk)
    assert (data["message"], data["room"], data["jump"]) == (None, None, None)
    assert (data["body"], data["room_name"], data["sender_name"]) == ("keep this", "team", "bob")


def test_snapshot_survives_leaving_the_room_and_stops_linking(alice, bob, room, make_message):
    message = make_message(room, alice, "before I left")
    entry, _ = drawer_entry_save(user=bob, message_id=message.pk)
    Participant.objects.filter(room=room, user=bob).delete()

    message_apply_edit(env={"room": room.pk, "seq": message.seq, "sender": alice.pk, "body": "said after"})

    data = payload(bob, entry.pk)
    assert data["body"] == "before I left"
    # No longer a member: no jump, and nothing of what the room says now.
    assert data["jump"] is None
    assert data["current_body"] is None
    assert data["edited_since_saved"] is False


def test_entries_of_a_deleted_sender_say_deleted_user(alice, bob, room, make_message):
    message = make_message(room, bob, "from bob")
    bob.delete()

    entry, _ = drawer_entry_save(user=alice, message_id=message.pk)

    assert entry.sender_name == "deleted user"


def test_a_direct_room_is_named_after_the_other_person(alice, bob, make_message):
    direct, _ = room_open_direct(user=alice, other=bob)
    message = make_message(direct, bob, "psst")

    mine, _ = drawer_entry_save(user=alice, message_id=message.pk)
    theirs, _ = drawer_entry_save(user=bob, message_id=message.pk)

    assert mine.room_name == "bob"
    assert theirs.room_name == "alice"


def test_a_non_member_cannot_save_and_learns_nothing(make_user, alice, room, make_message):
    mallory = make_user("mallory")
    message = make_message(room, alice, "secret")

    with pytest.raises(ChatError) as by_id:
        drawer_entry_save(user=mallory, message_id=message.pk)
    with pytest.raises(ChatError) as by_seq:
        drawer_entry_save(user=mallory, room_id=room.pk, seq=message.seq)
    with pytest.raises(ChatError) as missing_id:
        drawer_entry_save(user=mallory, message_id=message.pk + 1000)
    with pytest.raises(ChatError) as missing_seq:
        drawer_entry_save(user=mallory, room_id=room.pk, seq=999)

    # The same answer whether the message exists or not.
    answers = {(e.value.code, e.value.detail) for e in (by_id, by_seq, missing_id, missing_seq)}
    assert answers == {("not_member", "You are not a member of this message's room.")}
    assert not SavedMessage.objects.filter(user=mallory).exists()


def test_a_former_member_cannot_save_any_more(alice, bob, room, make_message):
    message = make_message(room, alice)
    Participant.objects.filter(room=room, user=bob).delete()

    with pytest.raises(ChatError) as refused:
        drawer_entry_save(user=bob, message_id=message.pk)

    assert refused.value.code == "not_member"


def test_a_deleted_or_missing_message_of_my_room_is_not_found(alice, room, make_message):
    message = make_message(room, alice)
    message_apply_delete(env={"room": room.pk, "seq": message.seq, "sender": alice.pk})

    for kwargs in (
        {"message_id": message.pk},
        {"room_id": room.pk, "seq": message.seq},
        {"room_id": room.pk, "seq": 99},
    ):
        with pytest.raises(ChatError) as refused:
            drawer_entry_save(user=alice, **kwargs)
        assert refused.value.code == "not_found"


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        ({"note": "x" * 2001}, "too_large"),
        ({"tags": ["x" * 33]}, "invalid"),
        ({"tags": [f"t{i}" for i in range(11)]}, "invalid"),
        ({"tags": "not-a-list"}, "invalid"),
    ],
)
def test_bad_note_or_tags_are_refused(alice, room, make_message, fields, code):
    message = make_message(room, alice)

    with pytest.raises(ChatError) as refused:
        drawer_entry_save(user=alice, message_id=message.pk, **fields)

    assert refused.value.code == code
    assert not SavedMessage.objects.exists()


def test_nobody_else_can_change_or_remove_my_entry(alice, bob, room, make_message):
    entry, _ = drawer_entry_save(user=alice, message_id=make_message(room, alice).pk, note="mine")

    for attempt in (
        lambda: drawer_entry_update(user=bob, entry_id=entry.pk, note="hacked"),
        lambda: drawer_entry_remove(user=bob, entry_id=entry.pk),
        lambda: drawer_entry_get(user_id=bob.pk, entry_id=entry.pk),
    ):
        with pytest.raises(ChatError) as refused:
            attempt()
        assert refused.value.code == "not_found"

    assert payload(alice, entry.pk)["note"] == "mine"


@pytest.mark.parametrize("erase", [False, True])
def test_a_deleted_account_is_forgotten_in_other_drawers(alice, bob, room, make_message, erase):
    from_bob = make_message(room, bob, "bob's words")
    from_alice = make_message(room, alice, "alice's words")
    kept, _ = drawer_entry_save(user=alice, message_id=from_bob.pk, note="my note")
    other, _ = drawer_entry_save(user=alice, message_id=from_alice.pk)

    changed = drawer_snapshots_detach_sender(messages=Message.objects.filter(sender=bob), erase=erase)

    assert changed == 1
    data = payload(alice, kept.pk)
    assert (data["sender_name"], data["note"]) == ("deleted user", "my note")
    assert data["body"] == ("" if erase else "bob's words")
    assert (payload(alice, other.pk)["sender_name"], payload(alice, other.pk)["body"]) == ("alice", "alice's words")
