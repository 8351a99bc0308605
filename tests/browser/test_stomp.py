"""The seed's browser client, unchanged: sockjs-client 1.6.1 and stompjs 2.3.3 in Chromium, chatting
with a JSON-protocol client in the same room over each SockJS transport.

The two libraries are the published npm packages, fetched from the registry once into a cache
under .devstack (the test skips, saying why, when the registry is unreachable and nothing is cached).
"""

from __future__ import annotations

import io
import json
import tarfile
import urllib.request
import uuid

import pytest
from websockets.sync.client import connect as ws_connect

from chat_messages.models import Message
from tests.browser.conftest import wait_until
from tests.conftest import ROOT
from tests.support import token_for

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

CACHE = ROOT / ".devstack" / "npm-cache"
PACKAGES = {  # file served to the page: (package, version, path in the tarball)
    "sockjs.js": ("sockjs-client", "1.6.1", "package/dist/sockjs.js"),
    "stomp.js": ("stompjs", "2.3.3", "package/lib/stomp.js"),
}
PAGE = """<!doctype html><meta charset="utf-8"><title>seed client</title>
<script src="/stomp-seed/sockjs.js"></script><script src="/stomp-seed/stomp.js"></script>
<script>
  window.received = [];
  const sock = new SockJS("/stomp/chat", null, {transports: [TRANSPORT]});
  const client = Stomp.over(sock);
  client.debug = null;
  client.connect({}, () => {
    client.subscribe("/sub/chat/room/ROOM", (m) => window.received.push(JSON.parse(m.body)));
    window.transport = sock.transport;
    window.connected = true;
  }, (error) => { (window.stompErrors = window.stompErrors || []).push(String(error)); });
  window.sendChat = (text) => client.send("/pub/chat/message", {},
    JSON.stringify({roomId: "ROOM", writer: "WRITER", message: text}));
</script>"""


def library(name: str) -> bytes:
    """A library's dist file, from the cache or else the npm registry."""
    package, version, member = PACKAGES[name]
    cached = CACHE / f"{package}-{version}" / name
    if not cached.exists():
        url = f"https://registry.npmjs.org/{package}/-/{package}-{version}.tgz"
        try:
            with urllib.request.urlopen(url, timeout=30) as response:
                data = response.read()
        except OSError as exc:
            pytest.skip(f"STOMP BROWSER TEST SKIPPED: {url} is unreachable ({exc}) and nothing is cached")
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            content = tar.extractfile(member).read()
        cached.parent.mkdir(parents=True, exist_ok=True)
        cached.write_bytes(content)
    return cached.read_bytes()


def _serve(content: bytes):
    return lambda route: route.fulfill(body=content, content_type="text/javascript")


@pytest.mark.parametrize("transport", ["websocket", "xhr-streaming", "xhr-polling"])
def test_the_seeds_browser_client_and_a_json_client_chat_both_ways(browsers, alice_and_bob, server, transport):
    scripts = {name: library(name) for name in PACKAGES}
    alice, bob, room = alice_and_bob
    page = browsers.open_as(alice, bypass_csp=True)
    html = PAGE.replace("TRANSPORT", json.dumps(transport)).replace("ROOM", str(room.pk))
    html = html.replace("WRITER", alice.username)
    for name, content in scripts.items():
        page.route(f"{server.http}/stomp-seed/{name}", _serve(content))
    # The page must be a document this server sent (a fulfilled one would count as a public page,
    # which Chromium may not let reach a local address): its 404 page, then our content written
    # into that document. CSP is bypassed for the page's inline script.
    page.goto("/stomp-seed/")
    page.set_content(html)
    page.wait_for_function("window.connected === true || window.stompErrors !== undefined", timeout=20_000)
    assert page.evaluate("window.stompErrors") is None
    assert page.evaluate("window.transport") == transport

    heard_by_bob: list[dict] = []
    with ws_connect(server.ws, additional_headers={"Authorization": f"Token {token_for(bob)}"}) as bob_ws:

        def bob_hears(count: int) -> None:
            while len(heard_by_bob) < count:
                frame = json.loads(bob_ws.recv(timeout=20))
                if frame["type"] == "message.new" and frame["message"]["room"] == room.pk:
                    heard_by_bob.append(frame["message"])

        expected = []
        for i in range(3):
            page.evaluate("text => window.sendChat(text)", f"from the seed {i}")
            expected.append((alice.username, f"from the seed {i}"))
            bob_hears(len(expected))
            page.wait_for_function("n => window.received.length >= n", arg=len(expected))
            bob_ws.send(json.dumps({"type": "message.send", "room": room.pk, "client_msg_id": str(uuid.uuid4()),
                                    "body": f"from json {i}"}))  # fmt: skip
            expected.append((bob.username, f"from json {i}"))
            bob_hears(len(expected))
            page.wait_for_function("n => window.received.length >= n", arg=len(expected))
        page.wait_for_timeout(500)  # a duplicate would arrive within this

    received = page.evaluate("window.received")
    assert [(m["writer"], m["message"]) for m in received] == expected
    assert [m["roomId"] for m in received] == [str(room.pk)] * len(expected)
    assert [(m["sender"]["username"], m["body"]) for m in heard_by_bob] == expected
    stored = wait_until(
        lambda: [(m.sender.username, m.body) for m in Message.objects.filter(room=room).order_by("seq")] or None
    )
    assert stored == expected
