"""Sending attachments end to end: REST upload, then message.send over a real WebSocket through
Kafka and the persistence consumer to every member's socket; and the REST send."""

from __future__ import annotations

import uuid

import pytest

from attachments.models import Attachment
from chat_messages.models import Message
from tests.support import ChatClient, in_thread

from .conftest import jpeg, upload

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def test_a_message_with_attachments_reaches_every_member_with_them(server, make_user, make_room, api):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    photo = (await in_thread(lambda: upload(api(alice), room.pk, "sunset.jpg", jpeg()))).json()
    sender = await ChatClient.connect(server.ws, alice)
    watcher = await ChatClient.connect(server.ws, bob)

    cmid = str(uuid.uuid4())
    await sender.send(type="message.send", room=room.pk, client_msg_id=cmid, req="r1", attachments=[photo["id"]])
    await watcher.wait_for(lambda c: any(m["client_msg_id"] == cmid for m in c.new_messages(room.pk)))

    message = next(m for m in watcher.new_messages(room.pk) if m["client_msg_id"] == cmid)
    assert message["body"] == ""
    assert message["attachments"] == [
        {
            "id": photo["id"], "kind": "image", "name": "sunset.jpg", "content_type": "image/jpeg",
            "size": photo["size"], "width": 64, "height": 48, "url": photo["url"],
            "thumbnail_url": photo["thumbnail_url"],
        }
    ]  # fmt: skip
    await sender.wait_for(lambda c: any(f.get("client_msg_id") == cmid for f in c.of_type("message.accepted")))
    linked = await in_thread(lambda: Attachment.objects.get(pk=photo["id"]).message_id)
    assert linked == await in_thread(lambda: Message.objects.get(room=room, client_msg_id=cmid).pk)
    # bob, a member, may fetch it now that it is sent.
    assert (await in_thread(lambda: api(bob).get(photo["url"]))).status_code == 200
    await sender.close()
    await watcher.close()


async def test_someone_elses_or_a_sent_attachment_is_refused_before_kafka(server, make_user, make_room, api):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    hers = (await in_thread(lambda: upload(api(alice), room.pk, "hers.jpg", jpeg()))).json()
    bob_client = await ChatClient.connect(server.ws, bob)

    await bob_client.send(type="message.send", room=room.pk, client_msg_id=str(uuid.uuid4()), body="mine",
                          req="steal", attachments=[hers["id"]])  # fmt: skip
    await bob_client.send(type="message.send", room=room.pk, client_msg_id=str(uuid.uuid4()), body="",
                          req="empty")  # fmt: skip
    await bob_client.send(type="message.send", room=room.pk, client_msg_id=str(uuid.uuid4()), body="x",
                          req="shape", attachments=["1"])  # fmt: skip
    await bob_client.wait_for(lambda c: len(c.of_type("error")) == 3)

    errors = {f["req"]: f for f in bob_client.of_type("error")}
    assert errors["steal"]["code"] == "invalid"
    assert f"Attachment {hers['id']}" in errors["steal"]["detail"]
    assert errors["empty"]["code"] == "invalid"  # no text and no attachment
    assert errors["shape"]["code"] == "invalid"
    assert not bob_client.of_type("message.accepted")
    assert await in_thread(lambda: Message.objects.filter(room=room).exclude(kind="system").count()) == 0
    await bob_client.close()


@pytest.mark.kafka
def test_rest_send_takes_attachments_and_names_a_bad_one(make_user, make_room, api):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    hers = upload(api(alice), room.pk, "hers.jpg", jpeg()).json()

    refused = api(bob).post(
        f"/api/v1/rooms/{room.pk}/messages/",
        {"client_msg_id": str(uuid.uuid4()), "attachments": [hers["id"]]},
        format="json",
    )
    too_many = api(alice).post(
        f"/api/v1/rooms/{room.pk}/messages/",
        {"client_msg_id": str(uuid.uuid4()), "attachments": list(range(1, 12))},
        format="json",
    )
    accepted = api(alice).post(
        f"/api/v1/rooms/{room.pk}/messages/",
        {"client_msg_id": str(uuid.uuid4()), "attachments": [hers["id"]]},
        format="json",
    )

    assert (refused.status_code, refused.json()["error"]["code"]) == (400, "invalid")
    assert f"Attachment {hers['id']}" in refused.json()["error"]["detail"]
    assert (too_many.status_code, too_many.json()["error"]["code"]) == (400, "invalid")
    assert accepted.status_code == 202


async def test_resending_a_stored_message_with_attachments_brings_it_back_not_an_error(
    server, make_user, make_room, api
):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    photo = (await in_thread(lambda: upload(api(alice), room.pk, "p.jpg", jpeg()))).json()
    sender = await ChatClient.connect(server.ws, alice)
    cmid = str(uuid.uuid4())
    frame = {"type": "message.send", "room": room.pk, "client_msg_id": cmid, "attachments": [photo["id"]]}
    await sender.send(**frame, req="first")
    await sender.wait_for(lambda c: any(m["client_msg_id"] == cmid for m in c.new_messages(room.pk)))
    await sender.close()

    # A client that never saw it stored sends it again, the same key (docs/protocol.md).
    again = await ChatClient.connect(server.ws, alice)
    await again.send(**frame, req="again")
    await again.wait_for(lambda c: any(m["client_msg_id"] == cmid for m in c.new_messages(room.pk)))

    assert not again.of_type("error")
    (message,) = [m for m in again.new_messages(room.pk) if m["client_msg_id"] == cmid]
    assert [a["id"] for a in message["attachments"]] == [photo["id"]]
    assert await in_thread(lambda: Message.objects.filter(room=room, client_msg_id=cmid).count()) == 1
    # Another message may still not take it.
    await again.send(**{**frame, "client_msg_id": str(uuid.uuid4())}, req="other")
    await again.wait_for(lambda c: c.of_type("error"))
    assert again.of_type("error")[0]["code"] == "invalid" and again.of_type("error")[0]["req"] == "other"
    await again.close()


@pytest.mark.kafka
def test_rest_resend_of_a_stored_message_with_attachments_is_accepted(make_user, make_room, api):
    from .conftest import store

    alice = make_user()
    room = make_room(owner=alice)
    photo = upload(api(alice), room.pk, "p.jpg", jpeg()).json()
    envelope = store(room, alice, attachments=[photo["id"]])

    again = {"client_msg_id": envelope["client_msg_id"], "attachments": [photo["id"]]}
    other = {"client_msg_id": str(uuid.uuid4()), "attachments": [photo["id"]]}
    assert api(alice).post(f"/api/v1/rooms/{room.pk}/messages/", again, format="json").status_code == 202
    assert api(alice).post(f"/api/v1/rooms/{room.pk}/messages/", other, format="json").status_code == 400
