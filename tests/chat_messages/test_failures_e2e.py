"""The pipeline under failure: a consumer killed mid-stream, Kafka unreachable."""

from __future__ import annotations

import asyncio
import json
import signal
import urllib.request

import pytest
from django.db.models import Count, Max, Min

from chat_messages.models import Message
from tests.conftest import free_port
from tests.support import ChatClient, in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

TOTAL = 2000


def _room_stats(room_ids):
    return {
        row["room_id"]: row
        for row in Message.objects.filter(room_id__in=room_ids)
        .values("room_id")
        .annotate(n=Count("id"), lo=Min("seq"), hi=Max("seq"), keys=Count("client_msg_id", distinct=True))
    }


async def _whole(server, client: ChatClient, user, room_id: int) -> list[int]:
    """What a client does after a gap: `sync` from its last contiguous seq, paging over REST on `sync.gap`."""
    heard = client.new_messages(room_id)
    live = [m["seq"] for m in heard]
    # Nobody hears a message twice, except its sender: a replay after the crash cannot tell a batch
    # announced just before the kill from a re-send, and re-announces a stored message to its sender's
    # own sockets (docs/protocol.md: clients drop a seq they already have).
    others = [m["seq"] for m in heard if m["sender"]["id"] != user.pk]
    assert len(others) == len(set(others)), f"{client.name} heard someone else's message twice"
    seen = set(live)
    contiguous = 0
    while contiguous + 1 in seen:
        contiguous += 1
    before = len(client.of_type("sync.done"))
    await client.send(type="sync", rooms={str(room_id): contiguous})
    await client.wait_for(lambda c: len(c.of_type("sync.done")) > before)
    seen |= {m["seq"] for m in client.new_messages(room_id)}
    if any(g["room"] == room_id for g in client.of_type("sync.gap")):
        key = await in_thread(token_for, user)
        after = contiguous
        while True:
            page = await asyncio.to_thread(
                _get_json, f"{server.http}/api/v1/rooms/{room_id}/messages/?after={after}&limit=200", key
            )
            seen |= {m["seq"] for m in page["messages"]}
            if not page["has_newer"]:
                break
            after = page["messages"][-1]["seq"]
    return sorted(seen)


def _get_json(url: str, token: str) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


async def test_kill_9_of_the_persist_consumer_loses_and_doubles_nothing(own_server, make_user, make_room):
    users = await in_thread(lambda: [make_user() for _ in range(4)])
    rooms = await in_thread(lambda: [make_room(owner=users[0], members=users[1:], name=f"r{i}") for i in range(2)])
    senders = [await ChatClient.connect(own_server.ws, users[0]), await ChatClient.connect(own_server.ws, users[1])]
    watchers = [await ChatClient.connect(own_server.ws, u) for u in users[2:]]

    async def blast(client: ChatClient, room_id: int, count: int) -> None:
        for i in range(count):
            await client.send_message(room_id, f"{client.name} {i}")
            if i % 50 == 0:
                await asyncio.sleep(0)

    sending = asyncio.gather(blast(senders[0], rooms[0].pk, TOTAL // 2), blast(senders[1], rooms[1].pk, TOTAL // 2))
    # Kill the consumer once it is storing, while most messages are still in flight.
    await asyncio.wait_for(_until(lambda: Message.objects.count() >= 200), 60)
    own_server.stop("persist", sig=signal.SIGKILL)
    await sending
    for sender in senders:
        await sender.wait_for(lambda c: len(c.of_type("message.accepted")) == TOTAL // 2, timeout=60)
    own_server.start("persist")
    await asyncio.wait_for(_until(lambda: Message.objects.count() >= TOTAL), 120)
    # A marker per room after the blast: a replayed duplicate would be stored and announced before it.
    markers = [await s.send_message(r.pk, "marker") for s, r in zip(senders, rooms, strict=True)]
    for watcher in watchers:
        await watcher.wait_for(
            lambda c: all(
                k in [m["client_msg_id"] for m in c.new_messages(r.pk)] for k, r in zip(markers, rooms, strict=True)
            ),
            timeout=60,
        )

    last = TOTAL // 2 + 1  # the blast, then the marker
    stats = await in_thread(_room_stats, [r.pk for r in rooms])
    for room in rooms:
        row = stats[room.pk]
        assert (row["n"], row["keys"], row["lo"], row["hi"]) == (last, last, 1, last)
    for client, user in zip(senders + watchers, users, strict=True):
        for room in rooms:
            assert await _whole(own_server, client, user, room.pk) == list(range(1, last + 1))
    for client in senders + watchers:
        await client.close()


async def _until(predicate, interval: float = 0.1) -> None:
    while not await in_thread(predicate):
        await asyncio.sleep(interval)


async def test_kafka_down_answers_unavailable_and_the_same_id_can_be_retried(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    dead_port = free_port()
    isolated = free_port()
    server.start(
        "web:nokafka", port=isolated, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{dead_port}", KAFKA_PRODUCE_TIMEOUT_S="2"
    )
    try:
        cut_off = await ChatClient.connect(f"ws://127.0.0.1:{isolated}/ws/chat/", alice)
        msg_id = await cut_off.send_message(room.pk, "are you there?")
        await cut_off.wait_for(lambda c: c.of_type("error"), timeout=30)
        error = cut_off.of_type("error")[0]
        assert error["code"] == "unavailable"
        assert f"127.0.0.1:{dead_port}" in error["detail"]
        assert error["client_msg_id"] == msg_id
        await cut_off.close()
    finally:
        server.stop("web:nokafka")
    assert not await in_thread(Message.objects.filter(room=room).exists)

    client = await ChatClient.connect(server.ws, alice)
    await client.send_message(room.pk, "are you there?", client_msg_id=msg_id)
    await client.wait_for(lambda c: [m["client_msg_id"] for m in c.new_messages(room.pk)] == [msg_id])
    assert await in_thread(Message.objects.filter(room=room).count) == 1
    await client.close()


async def test_messages_sent_while_the_consumer_is_down_arrive_after_it_restarts(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    client = await ChatClient.connect(server.ws, bob)
    server.stop("persist")
    sender = await ChatClient.connect(server.ws, alice)
    ids = [await sender.send_message(room.pk, f"queued {i}") for i in range(5)]
    await sender.wait_for(lambda c: len(c.of_type("message.accepted")) == 5)
    assert client.new_messages(room.pk) == []
    server.start("persist")
    await client.wait_for(lambda c: len(c.new_messages(room.pk)) == 5, timeout=60)
    assert [m["client_msg_id"] for m in client.new_messages(room.pk)] == ids
    await sender.close()
    await client.close()


async def test_a_user_over_the_send_rate_gets_rate_limited_and_keeps_the_socket(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    port = free_port()
    server.start("web:limited", port=port, RATE_LIMITS="on", CHAT_SEND_BURST="3", CHAT_SEND_RATE="0.2")
    try:
        client = await ChatClient.connect(f"ws://127.0.0.1:{port}/ws/chat/", alice)
        ids = [await client.send_message(room.pk, f"m{i}") for i in range(5)]
        await client.wait_for(lambda c: len(c.of_type("message.accepted")) + len(c.of_type("error")) == 5)
        assert [f["client_msg_id"] for f in client.of_type("message.accepted")] == ids[:3]
        assert [(f["code"], f["client_msg_id"]) for f in client.of_type("error")] == [
            ("rate_limited", ids[3]),
            ("rate_limited", ids[4]),
        ]
        await client.wait_for(lambda c: len(c.new_messages(room.pk)) == 3)
        assert not client.ws.close_code
        await client.close()
    finally:
        server.stop("web:limited")
    assert await in_thread(Message.objects.filter(room=room).count) == 3


async def test_two_persist_consumers_share_the_rooms_and_one_stops_cleanly_on_sigterm(server, make_user, make_room):
    users = await in_thread(lambda: [make_user() for _ in range(2)])
    rooms = await in_thread(lambda: [make_room(owner=users[0], members=users[1:], name=f"p{i}") for i in range(6)])
    second = server.start("persist:2")
    log_path = server.log_dir / "persist-2.log"
    # The group rebalanced onto two members once the second copy logs its share.
    await asyncio.wait_for(_until(lambda: "partitions assigned: chat.messages[" in log_path.read_text()), 60)
    sender = await ChatClient.connect(server.ws, users[0])
    for i in range(60):
        await sender.send_message(rooms[i % 6].pk, f"m{i}")
    await asyncio.wait_for(_until(lambda: Message.objects.filter(room__in=rooms).count() >= 60), 60)

    server.stop("persist:2")  # SIGTERM: finish the batch, commit, leave the group
    assert second.returncode == 0
    log = log_path.read_text()
    assert "partitions assigned: chat.messages[" in log  # the second copy really took a share
    for i in range(60, 90):
        await sender.send_message(rooms[i % 6].pk, f"m{i}")
    await asyncio.wait_for(_until(lambda: Message.objects.filter(room__in=rooms).count() >= 90), 60)
    # A marker per room: a duplicate stored by either copy would take its seq before the marker's.
    markers = {await sender.send_message(room.pk, "marker") for room in rooms}
    await sender.wait_for(lambda c: markers <= {f["message"]["client_msg_id"] for f in c.of_type("message.new")})

    stats = await in_thread(_room_stats, [r.pk for r in rooms])
    assert sorted((row["n"], row["keys"], row["lo"], row["hi"]) for row in stats.values()) == [(16, 16, 1, 16)] * 6
    await sender.close()


async def test_a_lost_redis_subscription_restarts_the_sockets_so_nothing_is_missed(server, make_user, make_room):
    import redis
    from django.conf import settings

    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = await in_thread(make_room, owner=alice, members=[bob])
    client = await ChatClient.connect(server.ws, bob)
    await client.send(type="room.enter", room=room.pk)
    await client.wait_for(lambda c: c.of_type("room.entered"))

    # Events published while a subscription is down are gone: the server must say so.
    killed = redis.Redis.from_url(settings.REDIS_URL).client_kill_filter(_type="pubsub")
    assert killed >= 1
    await asyncio.wait_for(client.reader, 20)
    assert client.ws.close_code == 4012  # "reconnect and sync"

    again = await ChatClient.connect(server.ws, bob)
    sender = await ChatClient.connect(server.ws, alice)
    sent = await sender.send_message(room.pk, "after the blip")
    await again.wait_for(lambda c: [m["client_msg_id"] for m in c.new_messages(room.pk)] == [sent])
    for c in (again, sender):
        await c.close()
