"""A web server that stops says so: every socket is closed with 4503 ("reconnect"), none is cut."""

from __future__ import annotations

import asyncio
import json
import signal

import pytest
import websockets

from tests.conftest import free_port
from tests.support import in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


async def _close_code(ws) -> int:
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), 15)
    return closed.value.rcvd.code if closed.value.rcvd else 1006


async def test_a_stopping_server_closes_every_socket_with_4503(server, make_user, make_room):
    port = free_port()
    server.start("web:stopping", port=port)
    users = await in_thread(lambda: [make_user() for _ in range(3)])
    await in_thread(make_room, owner=users[0], members=users[1:])
    keys = [await in_thread(token_for, u) for u in users]
    url = f"ws://127.0.0.1:{port}/ws/chat/"
    sockets = [await websockets.connect(url, additional_headers={"Authorization": f"Token {k}"}) for k in keys]
    for ws in sockets:  # accepted and serving (the others' presence.updated may come before the answer)
        await ws.send(json.dumps({"type": "sync", "rooms": {}, "req": "up"}))
        while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "sync.done":
            pass

    server.processes["web:stopping"].send_signal(signal.SIGTERM)
    codes = await asyncio.gather(*(_close_code(ws) for ws in sockets))
    assert codes == [4503, 4503, 4503]
    assert await asyncio.to_thread(server.processes["web:stopping"].wait, 20) == 0
    server.processes.pop("web:stopping")


async def test_a_frame_over_the_limit_closes_with_1009_before_it_is_buffered(server, make_user):
    user = await in_thread(make_user)
    key = await in_thread(token_for, user)
    ws = await websockets.connect(server.ws, additional_headers={"Authorization": f"Token {key}"}, max_size=None)
    # Between the consumer's 64 KB and the server's 128 KB: an error frame, the socket stays.
    await ws.send(json.dumps({"type": "typing", "room": 1, "pad": "x" * 70_000}))
    assert json.loads(await asyncio.wait_for(ws.recv(), 10))["code"] == "invalid"
    await ws.send("x" * 300_000)
    assert await _close_code(ws) == 1009  # "message too big", not a cut connection
