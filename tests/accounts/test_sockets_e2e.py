"""End to end against a running server: a logout, a revoked token or a deleted account closes sockets."""

from __future__ import annotations

import asyncio
import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request

import pytest
import websockets

from tests.accounts.conftest import csrf_from
from tests.support import in_thread, token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

PASSWORD = "tulip-orbit-73"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # let the test see the 302 itself


class HttpClient:
    """A browser-like HTTP client: cookies kept, redirects not followed."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), _NoRedirect)

    def request(self, method: str, path: str, *, form=None, body=None, headers=None) -> tuple[int, str]:
        data, headers = None, dict(headers or {})
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def submit(self, path: str, data: dict, *, page: str | None = None) -> int:
        """Post a page's form with its CSRF token, as a browser does."""
        _, html = self.request("GET", page or path)
        return self.request("POST", path, form={"csrfmiddlewaretoken": csrf_from(html), **data})[0]

    def cookie(self, name: str) -> str:
        return next(c.value for c in self.jar if c.name == name)


async def ready(ws) -> None:
    """One round trip: the server has finished setting the socket up (its subscriptions too)."""
    await ws.send(json.dumps({"type": "sync", "rooms": {}, "req": "ready"}))
    while json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] != "sync.done":
        pass


async def close_code(ws, timeout: float = 10.0) -> int:
    """Wait for the server to close the socket; its close code."""
    with pytest.raises(websockets.ConnectionClosed) as closed:
        while True:
            await asyncio.wait_for(ws.recv(), timeout)
    return closed.value.rcvd.code


async def test_logging_out_closes_the_sockets_of_that_browser_session(server, make_user):
    await in_thread(make_user, "alice", password=PASSWORD)
    browser, other = HttpClient(server.http), HttpClient(server.http)
    for client in (browser, other):
        assert await asyncio.to_thread(client.submit, "/login/", {"username": "alice", "password": PASSWORD}) == 302
    sockets = [
        await websockets.connect(
            server.ws, additional_headers={"Cookie": f"sessionid={c.cookie('sessionid')}"}, origin=server.http
        )
        for c in (browser, other)
    ]
    for ws in sockets:
        await ready(ws)

    assert await asyncio.to_thread(browser.submit, "/logout/", {}, page="/account/") == 302

    assert await close_code(sockets[0]) == 4401
    await ready(sockets[1])  # the other browser's session is still logged in
    await sockets[1].close()


async def test_a_revoked_token_loses_its_sockets_and_cannot_open_new_ones(server, make_user):
    await in_thread(make_user, "alice", password=PASSWORD)
    app = HttpClient(server.http)
    status, body = await asyncio.to_thread(
        app.request, "POST", "/api/v1/auth/token/", body={"username": "alice", "password": PASSWORD}
    )
    assert status == 200
    auth = {"Authorization": f"Token {json.loads(body)['token']}"}
    ws = await websockets.connect(server.ws, additional_headers=auth)
    await ready(ws)  # the token works on the WebSocket

    status, _ = await asyncio.to_thread(app.request, "DELETE", "/api/v1/auth/token/", headers=auth)

    assert status == 204
    assert await close_code(ws) == 4401
    again = await websockets.connect(server.ws, additional_headers=auth)
    assert await close_code(again) == 4401


async def test_deleting_an_account_closes_its_sockets_and_tells_the_room(server, make_user, make_room):
    alice, bob = await in_thread(lambda: [make_user("alice", password=PASSWORD), make_user("bob")])
    room = await in_thread(make_room, owner=alice, members=[bob])
    tokens = {user.username: await in_thread(token_for, user) for user in (alice, bob)}
    alice_ws, bob_ws = [
        await websockets.connect(server.ws, additional_headers={"Authorization": f"Token {tokens[n]}"})
        for n in ("alice", "bob")
    ]
    for ws in (alice_ws, bob_ws):
        await ready(ws)

    status, _ = await asyncio.to_thread(
        HttpClient(server.http).request,
        "DELETE",
        "/api/v1/accounts/me/",
        body={"erase_messages": True},
        headers={"Authorization": f"Token {tokens['alice']}"},
    )

    assert status == 204
    assert await close_code(alice_ws) == 4401
    heard = []
    while len(heard) < 3:
        frame = json.loads(await asyncio.wait_for(bob_ws.recv(), 10))
        if frame["type"] != "presence.updated":  # alice going offline, whenever her socket closed
            heard.append(frame)
    # With her read position, as when a member leaves (the counters of unread messages follow).
    assert {"type": "participant.removed", "room": room.pk, "user": alice.pk, "last_read_seq": 0} in heard
    assert {"type": "participant.updated", "room": room.pk, "user": bob.pk, "role": "owner"} in heard
    assert {"type": "account.erased", "room": room.pk, "user": alice.pk, "erase_messages": True} in heard
    await bob_ws.close()


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:1", "http://evil.example", "null", None, "HTTPS"],
    ids=["another-port", "another-site", "opaque", "none", "another-scheme"],
)
async def test_a_session_socket_from_a_foreign_origin_is_refused(server, make_user, origin):
    await in_thread(make_user, "alice", password=PASSWORD)
    browser = HttpClient(server.http)
    assert await asyncio.to_thread(browser.submit, "/login/", {"username": "alice", "password": PASSWORD}) == 302
    cookie = {"Cookie": f"sessionid={browser.cookie('sessionid')}"}

    # A page elsewhere (even on another port of this host, or the same host and port over
    # another scheme) cannot ride the user's cookie.
    if origin == "HTTPS":
        origin = server.http.replace("http://", "https://")
    foreign = await websockets.connect(server.ws, additional_headers=cookie, origin=origin)
    assert await close_code(foreign) == 4401
    own = await websockets.connect(server.ws, additional_headers=cookie, origin=server.http)
    await ready(own)
    await own.close()
