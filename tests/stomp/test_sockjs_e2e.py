"""SockJS 0.3 at /stomp/chat: info, the websocket framing, and xhr polling with xhr_send."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request

import pytest
import websockets

from tests.support import in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CONNECT = "CONNECT\naccept-version:1.1,1.0\nheart-beat:0,0\n\n\x00"


def post(url: str, body: bytes = b"", token: str | None = None) -> tuple[int, str]:
    headers = {"Authorization": f"Token {token}"} if token else {}
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


async def test_info_says_websocket_and_no_cookie_needed(server):
    info = await asyncio.to_thread(get_json, f"{server.http}/stomp/chat/info")
    assert info["websocket"] is True and info["cookie_needed"] is False and isinstance(info["entropy"], int)


async def test_the_websocket_transport_frames_stomp_in_sockjs(server, make_user):
    alice = await in_thread(make_user)
    key = await in_thread(token_for, alice)
    url = f"ws://127.0.0.1:{server.port}/stomp/chat/123/sess-ws/websocket"
    async with websockets.connect(url, additional_headers={"Authorization": f"Token {key}"}) as ws:
        assert await ws.recv() == "o"
        await ws.send(json.dumps([CONNECT]))
        frame = await asyncio.wait_for(ws.recv(), 10)
        assert frame.startswith("a[")
        assert json.loads(frame[1:])[0].startswith("CONNECTED\nversion:1.1\n")
        await ws.send(json.dumps(["DISCONNECT\nreceipt:bye\n\n\x00"]))
        assert json.loads((await asyncio.wait_for(ws.recv(), 10))[1:]) == ["RECEIPT\nreceipt-id:bye\n\n\x00"]
        assert await asyncio.wait_for(ws.recv(), 10) == 'c[3000,"Go away!"]'


async def test_xhr_polling_with_xhr_send(server, make_user):
    alice = await in_thread(make_user)
    key = await in_thread(token_for, alice)
    base = f"{server.http}/stomp/chat/123/sess-xhr"
    assert await asyncio.to_thread(post, f"{server.http}/stomp/chat/1/nobody/xhr_send", b'["x"]') == (
        404, "No such session."
    )  # fmt: skip
    assert await asyncio.to_thread(post, f"{base}/xhr", token=key) == (200, "o\n")
    assert (await asyncio.to_thread(post, f"{base}/xhr_send", b""))[0] == 500
    assert await asyncio.to_thread(post, f"{base}/xhr_send", b"[broken") == (500, "Broken JSON encoding.")
    assert (await asyncio.to_thread(post, f"{base}/xhr_send", json.dumps([CONNECT]).encode()))[0] == 204
    status, body = await asyncio.to_thread(post, f"{base}/xhr")
    assert status == 200 and json.loads(body[1:])[0].startswith("CONNECTED\n")
    # A bad frame: ERROR, then the session's close frame, and it stays closed.
    assert (await asyncio.to_thread(post, f"{base}/xhr_send", json.dumps(["FLY\n\n\x00"]).encode()))[0] == 204
    status, body = await asyncio.to_thread(post, f"{base}/xhr")
    assert json.loads(body[1:])[0].startswith("ERROR\n")
    assert await asyncio.to_thread(post, f"{base}/xhr") == (200, 'c[3000,"Go away!"]\n')


async def test_an_xhr_session_without_credentials_is_refused_at_connect(server):
    base = f"{server.http}/stomp/chat/123/sess-anon"
    assert await asyncio.to_thread(post, f"{base}/xhr") == (200, "o\n")
    await asyncio.to_thread(post, f"{base}/xhr_send", json.dumps([CONNECT]).encode())
    status, body = await asyncio.to_thread(post, f"{base}/xhr")
    assert "code:unauthenticated" in json.loads(body[1:])[0]
