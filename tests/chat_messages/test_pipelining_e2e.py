"""One socket's sends pipelined (issue 23): many in flight at once, answered and stored in order."""

from __future__ import annotations

import asyncio
import json
import signal
import uuid

import pytest
import websockets

from chat_messages.models import Message
from tests.conftest import free_port
from tests.support import ChatClient, in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FLOOD = 400  # sends from one socket, alternating between two rooms


def _stored(room_id: int) -> list[str]:
    """The room's text messages' client_msg_ids in the order stored (by seq)."""
    return [
        str(k)
        for k in Message.objects.filter(room_id=room_id, kind="text")
        .order_by("seq")
        .values_list("client_msg_id", flat=True)
    ]


def _answers(client: ChatClient) -> list[dict]:
    return [f for f in client.frames if "req" in f]


async def test_a_flood_to_two_rooms_is_answered_in_order_and_stored_once_in_each_rooms_order(
    server, make_user, make_room
):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    rooms = await in_thread(lambda: [make_room(owner=alice, members=[bob], name=f"r{i}").pk for i in range(2)])
    sender = await ChatClient.connect(server.ws, alice)
    sent: dict[int, list[str]] = {r: [] for r in rooms}
    order = []
    for i in range(FLOOD):  # written without waiting for any answer
        room = rooms[i % 2]
        msg_id = await sender.send_message(room, f"flood {i}")
        sent[room].append(msg_id)
        order.append(msg_id)

    await sender.wait_for(lambda c: len(_answers(c)) >= FLOOD, timeout=60)
    answers = _answers(sender)
    # Every frame answered once, accepted, in the order the frames were sent, each naming its own.
    assert [a["req"] for a in answers] == order
    assert {a["type"] for a in answers} == {"message.accepted"}
    assert all(a["client_msg_id"] == a["req"] for a in answers)
    for room in rooms:
        await sender.wait_for(lambda c, room=room: len(c.new_messages(room)) >= FLOOD // 2, timeout=60)
        assert await in_thread(_stored, room) == sent[room]
    await sender.close()


async def test_edits_errors_and_reads_between_sends_keep_their_place(server, make_user, make_room):
    alice, bob, carol = await in_thread(lambda: [make_user() for _ in range(3)])
    room = (await in_thread(make_room, owner=alice, members=[bob])).pk
    elsewhere = (await in_thread(make_room, owner=carol)).pk  # alice is not a member
    sender = await ChatClient.connect(server.ws, alice)
    watcher = await ChatClient.connect(server.ws, bob)
    first = await sender.send_message(room, "first")
    await watcher.wait_for(lambda c: len(c.new_messages(room)) == 1)
    first_seq = watcher.new_messages(room)[0]["seq"]

    before = [await sender.send_message(room, f"before {i}") for i in range(20)]
    frames = [
        {"type": "message.send", "room": room, "client_msg_id": str(uuid.uuid4()), "body": "  ", "req": "blank"},
        {
            "type": "message.send",
            "room": elsewhere,
            "client_msg_id": str(uuid.uuid4()),
            "body": "hi",
            "req": "stranger",
        },
        {"type": "message.send", "room": room, "client_msg_id": str(uuid.uuid4()), "body": "x" * 5000, "req": "huge"},
        {"type": "typing", "room": room, "req": "typing"},
        {"type": "message.edit", "room": room, "seq": first_seq, "body": "first, edited", "req": "edit"},
        {"type": "room.read", "room": room, "seq": first_seq, "req": "read"},
    ]
    for f in frames:
        await sender.send(**f)
    after = [await sender.send_message(room, f"after {i}") for i in range(20)]

    expected = [*before, "blank", "stranger", "huge", "edit", *after]
    await sender.wait_for(lambda c: len(_answers(c)) >= 1 + len(expected), timeout=60)
    answers = _answers(sender)[1:]  # after the first message's
    assert [a["req"] for a in answers] == expected
    by_req = {a["req"]: a for a in answers}
    assert [by_req[r]["code"] for r in ("blank", "stranger", "huge")] == ["invalid", "not_member", "too_large"]
    assert by_req["edit"]["type"] == "message.edit.accepted"
    assert all(by_req[r]["type"] == "message.accepted" for r in before + after)

    # The room's members see it in the order it was sent: the messages before, the edit, those after.
    await watcher.wait_for(lambda c: len(c.new_messages(room)) == 41 and c.of_type("message.updated"), timeout=60)
    stream = [
        f["message"]["client_msg_id"] if f["type"] == "message.new" else "edit"
        for f in watcher.frames
        if f["type"] in ("message.new", "message.updated")
    ]
    assert stream == [first, *before, "edit", *after]
    assert await in_thread(_stored, room) == [first, *before, *after]
    await sender.close()
    await watcher.close()


async def _sending(ws, frames: list[str], counter: list[int]) -> None:
    for text in frames:
        await ws.send(text)
        counter[0] += 1


async def test_past_the_in_flight_bound_the_server_stops_reading_the_socket(server, make_user, make_room):
    """With the broker unreachable, sends stay in flight for the delivery timeout: the socket gets
    at most CHAT_SOCKET_MAX_IN_FLIGHT answers per timeout, and the server reads no further."""
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = (await in_thread(make_room, owner=alice, members=[bob])).pk
    port, dead = free_port(), free_port()
    server.start(
        "web:bounded", port=port, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{dead}", KAFKA_PRODUCE_TIMEOUT_S="3",
        CHAT_SOCKET_MAX_IN_FLIGHT="8",
    )  # fmt: skip
    try:
        key = await in_thread(token_for, alice)
        ws = await websockets.connect(
            f"ws://127.0.0.1:{port}/ws/chat/", additional_headers={"Authorization": f"Token {key}"}
        )
        client = ChatClient(ws, "alice")
        # 80 MB of sends: more than the kernel's socket buffers between the two hold (32 + 4 MB here).
        body = "y" * 4000
        frames = [
            json.dumps(
                {"type": "message.send", "room": room, "client_msg_id": str(uuid.uuid4()), "body": body, "req": i}
            )
            for i in range(20_000)
        ]
        written = [0]
        sending = asyncio.get_running_loop().create_task(_sending(ws, frames, written))
        # The eight are answered by their own deadlines (counted from when each was read, which a
        # busy machine spreads out); the ninth was read only once the first was answered, so it
        # comes a whole delivery timeout (3 s) after it.
        await client.wait_for(lambda c: len(_answers(c)) >= 8, timeout=30)
        await asyncio.sleep(1.0)
        answers = _answers(client)
        assert [a["req"] for a in answers] == list(range(8))
        assert {a["code"] for a in answers} == {"unavailable"}
        assert f"127.0.0.1:{dead}" in answers[0]["detail"]
        assert not sending.done(), "the server kept reading past the bound"
        assert written[0] < len(frames)
        sending.cancel()
        ws.transport.abort()
    finally:
        server.stop("web:bounded")


async def test_a_stopping_server_answers_the_sends_in_flight_before_its_4503(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    room = (await in_thread(make_room, owner=alice, members=[bob])).pk
    port, dead = free_port(), free_port()
    server.start(
        "web:stopping-sends", port=port, KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{dead}", KAFKA_PRODUCE_TIMEOUT_S="2"
    )
    client = await ChatClient.connect(f"ws://127.0.0.1:{port}/ws/chat/", alice)
    sent = [await client.send_message(room, f"m{i}") for i in range(5)]
    await client.send(type="sync", rooms={}, req="sync")  # answered once the five are: all read
    await asyncio.sleep(0.5)
    server.processes["web:stopping-sends"].send_signal(signal.SIGTERM)
    await asyncio.wait_for(client.reader, 30)
    assert client.ws.close_code == 4503
    answers = _answers(client)
    assert [a["req"] for a in answers[:5]] == sent
    assert {a["code"] for a in answers[:5]} == {"unavailable"}
    assert await asyncio.to_thread(server.processes["web:stopping-sends"].wait, 20) == 0
    server.processes.pop("web:stopping-sends")


async def test_kill_9_mid_flood_then_resending_the_pending_stores_each_once_in_order(own_server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user() for _ in range(2)])
    rooms = await in_thread(lambda: [make_room(owner=alice, members=[bob], name=f"k{i}").pk for i in range(2)])
    sender = await ChatClient.connect(own_server.ws, alice)
    total = 2000
    sent: dict[int, list[str]] = {r: [] for r in rooms}
    for i in range(total):
        room = rooms[i % 2]
        sent[room].append(await sender.send_message(room, f"kill {i}"))
    await sender.wait_for(lambda c: len(c.of_type("message.accepted")) >= 100, timeout=60)
    own_server.stop("web", sig=signal.SIGKILL)
    await asyncio.wait_for(sender.reader, 10)
    heard = {m["client_msg_id"] for r in rooms for m in sender.new_messages(r)}
    assert len(heard) < total, "the flood was over before the kill; nothing was left pending"

    own_server.start("web")
    again = await ChatClient.connect(own_server.ws, alice)
    await again.send(type="sync", rooms={str(r): 0 for r in rooms}, req="sync")
    await again.wait_for(lambda c: c.of_type("sync.done"), timeout=30)
    heard |= {m["client_msg_id"] for r in rooms for m in again.new_messages(r)}
    # Re-send every message not seen stored, with its own id, room by room in the order written.
    pending = [(i, rooms[i % 2], sent[rooms[i % 2]][i // 2]) for i in range(total)]
    pending = [p for p in pending if p[2] not in heard]
    for i, room, msg_id in pending:
        await again.send_message(room, f"kill {i}", client_msg_id=msg_id)
    await again.wait_for(
        lambda c: (
            {m["client_msg_id"] for r in rooms for m in c.new_messages(r)} | heard
            >= {k for r in rooms for k in sent[r]}
        ),
        timeout=120,
    )
    for room in rooms:
        assert await in_thread(_stored, room) == sent[room]
    await again.close()
