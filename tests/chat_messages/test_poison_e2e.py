"""Hostile bodies and poison records: refused at the door, or set aside without stalling anyone."""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
import uuid

import pytest
from django.utils import timezone

from chat_messages.models import Message
from streams.pipeline import kafka
from tests.support import ChatClient, KafkaTap, in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def _post(url: str, token: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Authorization": f"Token {token}", "Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def _stored_message(room, sender, body: str) -> Message:
    from rooms.models import Room

    Room.objects.filter(pk=room.pk).update(last_seq=1)  # as if stored by the pipeline
    return Message.objects.create(
        room=room, seq=1, sender=sender, client_msg_id=uuid.uuid4(), body=body, created_at=timezone.now()
    )


@pytest.mark.parametrize(
    ("body", "detail"),
    [("a\u0000b", "U+0000"), ("bell \u0007", "U+0007"), ("esc \u001b[31m", "U+001B")],
    ids=["nul", "bell", "escape"],
)
async def test_a_control_character_is_refused_the_same_way_on_every_entry_and_never_reaches_kafka(
    server, make_user, make_room, body, detail
):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    tap = await asyncio.to_thread(KafkaTap, kafka.MESSAGES)
    client = await ChatClient.connect(server.ws, alice)
    try:
        cmid = await client.send_message(room.pk, body)
        await client.wait_for(lambda c: c.of_type("error"))
        ws_error = client.of_type("error")[0]
        assert ws_error["code"] == "invalid" and detail in ws_error["detail"]
        assert ws_error["client_msg_id"] == cmid and ws_error["room"] == room.pk
        assert not client.of_type("message.accepted")

        token = await in_thread(token_for, alice)
        status, answer = await asyncio.to_thread(
            _post,
            f"{server.http}/api/v1/rooms/{room.pk}/messages/",
            token,
            json.dumps({"client_msg_id": str(uuid.uuid4()), "body": body}).encode(),
        )
        assert status == 400
        assert answer["error"] == {"code": "invalid", "detail": ws_error["detail"]}  # the same words

        # A tab and a newline are text; the socket still works.
        ok = await client.send_message(room.pk, "two\tcolumns\nand a line")
        await client.wait_for(lambda c: any(m["client_msg_id"] == ok for m in c.new_messages(room.pk)))
        produced = await asyncio.to_thread(tap.records, 1, 2.0)
        assert [r.value["client_msg_id"] for r in produced if r.value.get("room") == room.pk] == [ok]
    finally:
        await client.close()
        await asyncio.to_thread(tap.close)


async def test_a_lone_surrogate_in_a_rest_body_is_invalid_not_a_server_error(server, make_user, make_room):
    alice = await in_thread(make_user)
    room = await in_thread(make_room, owner=alice)
    token = await in_thread(token_for, alice)
    raw = b'{"client_msg_id": "%s", "body": "half \\ud83d"}' % str(uuid.uuid4()).encode()
    status, answer = await asyncio.to_thread(_post, f"{server.http}/api/v1/rooms/{room.pk}/messages/", token, raw)
    assert status == 400 and answer["error"]["code"] == "invalid"


@pytest.mark.parametrize("room", ["١", "²", "7", 7.0, True, 2**63, -1, 0], ids=repr)
async def test_room_ids_over_the_websocket_are_json_integers_only(server, make_user, make_room, room):
    alice = await in_thread(make_user)
    await in_thread(make_room, owner=alice)
    client = await ChatClient.connect(server.ws, alice)
    try:
        for kind in ("room.enter", "typing", "message.send"):
            await client.send(type=kind, room=room, client_msg_id=str(uuid.uuid4()), body="hi", req=kind)
        await client.send(type="sync", rooms={"١": 0}, req="sync")
        await client.wait_for(lambda c: len(c.of_type("error")) == 4)
        assert {(e["req"], e["code"]) for e in client.of_type("error")} == {
            ("room.enter", "invalid"),
            ("typing", "invalid"),
            ("message.send", "invalid"),
            ("sync", "invalid"),
        }
    finally:
        await client.close()


async def test_a_poison_record_is_dead_lettered_its_sender_told_and_other_rooms_of_its_batch_delivered_at_once(
    server, make_user, make_room
):
    """Records injected straight into the topic, as a bug or another producer could: one with a
    body storage refuses, one edit the database refuses, and good sends of two other rooms."""
    alice, bob, carol = await in_thread(lambda: [make_user() for _ in range(3)])
    poisoned = await in_thread(make_room, owner=alice, members=[bob], name="poisoned")
    others = await in_thread(lambda: [make_room(owner=bob, members=[carol], name=f"other{i}") for i in range(2)])
    first = await in_thread(_stored_message, poisoned, alice, "first")
    alice_ws = await ChatClient.connect(server.ws, alice)
    carol_ws = await ChatClient.connect(server.ws, carol)
    dlq = await asyncio.to_thread(KafkaTap, kafka.DLQ)
    try:
        # The pipeline is warm (the persist consumer owns its partitions) before the clock starts.
        warm = await alice_ws.send_message(poisoned.pk, "warm-up")
        await alice_ws.wait_for(lambda c: any(m["client_msg_id"] == warm for m in c.new_messages(poisoned.pk)))
        bad_send = str(uuid.uuid4())
        good = [str(uuid.uuid4()) for _ in others]
        envelopes = [
            (poisoned.pk, kafka.envelope("message.send", room=poisoned.pk, sender=alice.pk,
                                         client_msg_id=bad_send, body="nul \u0000 here")),
            (poisoned.pk, kafka.envelope("message.edit", room=poisoned.pk, seq=first.seq, sender=alice.pk,
                                         body="edited \u0000")),
            *[(room.pk, kafka.envelope("message.send", room=room.pk, sender=bob.pk, client_msg_id=cmid,
                                       body=f"fine in {room.name}")) for room, cmid in zip(others, good, strict=True)],
        ]  # fmt: skip
        await asyncio.to_thread(kafka.produce_many, kafka.MESSAGES, [(k, kafka.encode(v)) for k, v in envelopes])
        started = time.monotonic()  # the batch is in the broker: from here on it is the consumer's time
        delivered = {r.pk: None for r in others}

        def both_delivered(client):
            for room in others:
                if delivered[room.pk] is None and client.new_messages(room.pk):
                    delivered[room.pk] = time.monotonic() - started
            return all(v is not None for v in delivered.values())

        await carol_ws.wait_for(both_delivered, timeout=10)
        slowest = max(delivered.values())
        print(f"other rooms delivered {slowest * 1000:.0f} ms after the poisoned batch was produced")
        assert slowest < 1.0, f"the poison record held other rooms back for {slowest:.2f} s"

        # The sender hears their message is gone, naming it.
        await alice_ws.wait_for(lambda c: any(e.get("client_msg_id") == bad_send for e in c.of_type("error")))
        notice = next(e for e in alice_ws.of_type("error") if e.get("client_msg_id") == bad_send)
        assert notice["code"] == "invalid" and notice["room"] == poisoned.pk and "U+0000" in notice["detail"]

        # Both are on the dead-letter topic with their reasons; nothing of them was stored.
        dead = await asyncio.to_thread(dlq.records, 3, 3.0)
        reasons = {
            d.value["record"]["kind"]: d.value["reason"] for d in dead if d.value["record"].get("room") == poisoned.pk
        }
        kinds = [d.value["record"]["kind"] for d in dead if d.value["record"].get("room") == poisoned.pk]
        assert sorted(kinds) == ["message.edit", "message.send"]  # each parked once
        assert "U+0000" in reasons["message.send"]
        bodies = await in_thread(lambda: list(Message.objects.filter(room=poisoned).values_list("body", flat=True)))
        assert sorted(bodies) == ["first", "warm-up"]
        # The room carries on: the next message takes the next seq.
        after = await alice_ws.send_message(poisoned.pk, "after the poison")
        await alice_ws.wait_for(lambda c: any(m["client_msg_id"] == after for m in c.new_messages(poisoned.pk)))
        assert [m["seq"] for m in alice_ws.new_messages(poisoned.pk)] == [2, 3]
    finally:
        await asyncio.to_thread(dlq.close)
        await alice_ws.close()
        await carol_ws.close()
