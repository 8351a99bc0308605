"""Push notifications: devices over REST, who gets a push for what, and the hand-off from persist."""

from __future__ import annotations

import base64
import json
import logging
import time
import uuid

import pytest
import redis
from django.conf import settings

from accounts import services
from accounts.models import Device
from accounts.push import DeviceGone, Notification, PushSender
from chat_messages.services import PUSH_TASK, messages_store, send_envelope
from rooms.services import participant_mute, room_open_direct
from streams.realtime.limits import SocketRegistry

pytestmark = pytest.mark.django_db


class Recorder(PushSender):
    """A sender as an FCM or APNs one would be, that keeps what it was asked to send."""

    sent: list = []
    gone: set = set()

    def send(self, device, notification):
        if device.token in self.gone:
            raise DeviceGone(device.token)
        self.sent.append((device.token, notification))


@pytest.fixture
def recorder(settings):
    settings.PUSH_SENDER = "tests.accounts.test_push.Recorder"
    Recorder.sent, Recorder.gone = [], set()
    return Recorder


def candidate(room, seq, sender, body, *, mentions=(), direct=False) -> dict:
    return {
        "room": room.pk, "seq": seq, "sender": sender.pk, "sender_name": sender.username, "body": body,
        "mentions": list(mentions), "direct": direct, "room_name": room.name,
    }  # fmt: skip


def online(user) -> None:
    """A socket of ``user`` in the registry, as a server holding one keeps it."""
    client = redis.Redis.from_url(settings.REDIS_URL)
    client.zadd(SocketRegistry._key(user.pk), {f"test-{uuid.uuid4().hex}": int(time.time() * 1000) + 60_000})


def test_devices_are_registered_listed_moved_and_removed_over_rest(make_user, api):
    alice, bob = make_user(), make_user()
    body = {"platform": "fcm", "token": "tok-1", "name": "Pixel"}

    created = api(alice).post("/api/v1/devices/", body, format="json")
    again = api(alice).post("/api/v1/devices/", body, format="json")
    assert (created.status_code, again.status_code) == (201, 200)
    assert created.json()["id"] == again.json()["id"] and "token" not in created.json()
    assert [d["name"] for d in api(alice).get("/api/v1/devices/").json()] == ["Pixel"]

    # The same phone, now logged in as Bob: the token is his.
    assert api(bob).post("/api/v1/devices/", body, format="json").status_code == 200
    assert api(alice).get("/api/v1/devices/").json() == []
    device = created.json()["id"]
    assert api(alice).delete(f"/api/v1/devices/{device}/").json()["error"]["code"] == "not_found"
    assert api(bob).delete(f"/api/v1/devices/{device}/").status_code == 204

    bad = api(alice).post("/api/v1/devices/", {"platform": "pager", "token": "x"}, format="json")
    assert (bad.status_code, bad.json()["error"]["code"]) == (400, "invalid")


def test_mentions_and_direct_messages_are_pushed_to_offline_members_with_a_device_only(make_user, make_room):
    alice, bob, carol, dave, erin = (make_user(n) for n in ("alice", "bob", "carol", "dave", "erin"))
    room = make_room(owner=alice, members=[bob, carol, dave, erin], name="plans")
    for user in (bob, carol, dave):
        services.device_register(user=user, platform="apns", token=f"t-{user.username}")
    participant_mute(user_id=carol.pk, room_id=room.pk, muted=True)
    online(dave)
    direct, _ = room_open_direct(user=alice, other=bob)

    pushes = services.push_recipients(
        messages=[
            candidate(
                room, 1, alice, "@bob @carol @dave @erin @alice lunch?", mentions=[bob.pk, carol.pk, dave.pk, erin.pk]
            ),
            candidate(direct, 1, alice, "just you", direct=True),
        ]
    )

    # Carol muted the room, Dave is online, Erin has no device, Alice sent it.
    assert pushes == [
        (bob.pk, Notification(title="alice in plans", body="@bob @carol @dave @erin @alice lunch?", room=room.pk, seq=1, kind="mention")),
        (bob.pk, Notification(title="alice", body="just you", room=direct.pk, seq=1, kind="direct")),
    ]  # fmt: skip


def test_a_push_goes_to_every_device_and_a_gone_one_is_forgotten(make_user, recorder, caplog):
    bob = make_user()
    services.device_register(user=bob, platform="fcm", token="phone")
    services.device_register(user=bob, platform="web", token="old-browser")
    recorder.gone = {"old-browser"}
    note = Notification(title="alice", body="hi", room=1, seq=1, kind="direct")

    assert services.push_send(user_id=bob.pk, notification=note) == 1
    assert recorder.sent == [("phone", note)]
    assert list(Device.objects.values_list("token", flat=True)) == ["phone"]


def test_the_default_sender_writes_the_notification_to_the_log(make_user, caplog):
    bob = make_user()
    services.device_register(user=bob, platform="fcm", token="phone")
    with caplog.at_level(logging.INFO, logger="accounts.push"):
        services.push_send(user_id=bob.pk, notification=Notification("alice", "hello", 3, 9, "direct"))
    assert "alice: hello (room 3, seq 9)" in caplog.text


@pytest.mark.django_db(transaction=True)
def test_persist_queues_one_push_task_per_batch_with_mentions_or_direct_messages(make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob], name="plans")
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    queued = lambda: [json.loads(m) for m in broker.lrange("celery", 0, -1)]  # noqa: E731
    broker.delete("celery")

    def store(*bodies):
        messages_store(sends=[
            send_envelope(room_id=room.pk, sender_id=alice.pk, client_msg_id=uuid.uuid4(), body=b) for b in bodies
        ])  # fmt: skip

    store("no mention", "nor here")
    assert queued() == []
    store("@bob look", "and nothing")
    (task,) = queued()
    assert task["headers"]["task"] == PUSH_TASK
    args, kwargs, _ = json.loads(base64.b64decode(task["body"]))
    assert [(m["seq"], m["mentions"], m["direct"]) for m in kwargs["messages"]] == [(3, [bob.pk], False)]
    broker.delete("celery")


def test_a_deactivated_account_gets_no_push_and_loses_its_devices(make_user, make_room):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = make_room(owner=alice, members=[bob, carol], name="plans")
    for user in (bob, carol):
        services.device_register(user=user, platform="fcm", token=f"t-{user.username}")
    type(carol).objects.filter(pk=carol.pk).update(is_active=False)  # deactivated by other means

    services.account_deactivate(user=bob)

    assert not Device.objects.filter(user=bob).exists()
    mention = candidate(room, 1, alice, "@bob @carol", mentions=[bob.pk, carol.pk])
    assert services.push_recipients(messages=[mention]) == []
