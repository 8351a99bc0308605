"""Replies: a message quoting an earlier one of its room, a snapshot that follows deletions and erasures."""

from __future__ import annotations

import uuid

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from accounts.services import account_delete
from chat_messages.selectors import history_page
from chat_messages.services import message_apply_delete, message_apply_edit, message_send, messages_store, send_envelope
from streams.errors import ChatError
from streams.pipeline import kafka
from streams.realtime.protocol import DELETED_USER
from tests.support import KafkaTap

pytestmark = pytest.mark.django_db


def store(room, sender, body: str, reply_to: int | None = None):
    envelope = send_envelope(
        room_id=room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=body, reply_to=reply_to
    )
    return messages_store(sends=[envelope])


def shown(room, reader, seq: int) -> dict:
    page = history_page(room_id=room.pk, user_id=reader.pk, anchor=seq, limit=5)
    return next(m for m in page["messages"] if m["seq"] == seq)


def test_a_reply_carries_a_snapshot_of_what_it_quotes_in_message_new_and_in_history(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    store(room, alice, "Lunch at noon? " + "x" * 300)

    (reply,) = store(room, bob, "Yes!", reply_to=1).stored

    quote = {
        "seq": 1,
        "sender": {"id": alice.pk, "username": alice.username},
        "body": ("Lunch at noon? " + "x" * 300)[:200],
        "deleted": False,
    }
    assert reply.reply_to == quote  # what message.new carries
    assert shown(room, alice, 2)["reply_to"] == quote
    assert shown(room, alice, 1)["reply_to"] is None


def test_a_reply_to_a_seq_that_is_not_an_earlier_message_of_the_room_is_stored_with_an_empty_quote(
    make_user, make_room
):
    alice = make_user()
    room, other = make_room(owner=alice), make_room(owner=alice)
    store(other, alice, "elsewhere")

    stored = store(room, alice, "to nothing", reply_to=7).stored + store(room, alice, "to itself", reply_to=2).stored

    assert [m.seq for m in stored] == [1, 2]  # nothing is lost over a bad quote
    assert [(m.reply_to["deleted"], m.reply_to["body"]) for m in stored] == [(True, ""), (True, "")]
    assert stored[0].reply_to["sender"] == {"id": None, "username": DELETED_USER}


def test_deleting_the_quoted_message_blanks_the_quote_in_every_reply(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    store(room, alice, "a secret")
    store(room, bob, "what secret?", reply_to=1)
    store(room, bob, "tell me", reply_to=1)

    message_apply_delete(env={"room": room.pk, "seq": 1, "sender": alice.pk})

    for seq in (2, 3):
        assert shown(room, bob, seq)["reply_to"] == {
            "seq": 1, "sender": {"id": alice.pk, "username": alice.username}, "body": "", "deleted": True,
        }  # fmt: skip


def test_an_erased_account_leaves_no_name_or_words_in_the_replies_that_quoted_it(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=bob, members=[alice])
    store(room, alice, "my words")
    store(room, bob, "quoting you", reply_to=1)

    account_delete(user=alice, erase_messages=True)

    assert shown(room, bob, 2)["reply_to"] == {
        "seq": 1, "sender": {"id": None, "username": DELETED_USER}, "body": "", "deleted": True,
    }  # fmt: skip


def test_a_history_page_of_replies_costs_no_more_queries_than_one_without(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    for i in range(10):
        store(room, alice, f"plain {i}")
    for i in range(10):
        store(room, bob, f"reply {i}", reply_to=i + 1)

    def queries(anchor: int) -> int:
        with CaptureQueriesContext(connection) as captured:
            history_page(room_id=room.pk, user_id=alice.pk, before=anchor, limit=10)
        return len(captured)

    assert queries(11) == queries(21)  # ten plain messages, then ten replies


@pytest.mark.kafka
def test_a_reply_over_rest_goes_to_kafka_with_its_seq_and_a_bad_one_is_invalid(make_user, make_room, api):
    alice = make_user()
    room = make_room(owner=alice)
    tap = KafkaTap(kafka.MESSAGES)
    try:
        answer = api(alice).post(
            f"/api/v1/rooms/{room.pk}/messages/",
            {"client_msg_id": str(uuid.uuid4()), "body": "re", "reply_to": 4},
            format="json",
        )
        assert answer.status_code == 202
        (record,) = tap.records(1)
        assert record.value["reply_to"] == 4
    finally:
        tap.close()
    for bad in ("4", 0, -1, 2**63, 1.5, True):
        refused = api(alice).post(
            f"/api/v1/rooms/{room.pk}/messages/",
            {"client_msg_id": str(uuid.uuid4()), "body": "re", "reply_to": bad},
            format="json",
        )
        assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid"), bad
    with pytest.raises(ChatError) as caught:
        message_send(user=alice, room_id=room.pk, client_msg_id=uuid.uuid4(), body="re", reply_to="4")
    assert caught.value.code == "invalid"


def test_editing_the_quoted_message_rewrites_the_quote(make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    store(room, alice, "meet at 5")
    store(room, bob, "ok", reply_to=1)

    message_apply_edit(env={"room": room.pk, "seq": 1, "sender": alice.pk, "body": "meet at 6"})

    assert shown(room, bob, 2)["reply_to"]["body"] == "meet at 6"  # the old words are gone
