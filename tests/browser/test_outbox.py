"""The web chat's outbox: what is typed stays pending until stored, survives a reload, goes once.

A message leaves the outbox (localStorage) only when its own message.new arrives; after every
reconnection the page syncs and sends what is still pending again with the same client_msg_id;
a refusal that cannot change marks it failed, never sent again, until the person deletes it.
"""

from __future__ import annotations

import json
import re
from contextlib import contextmanager
from types import SimpleNamespace

import pytest
from playwright.sync_api import expect

from chat_messages.models import Message
from rooms.services import room_open_direct
from streams.realtime.hub import room_group, send_event_on_commit
from tests.browser.conftest import Browsers, room_url, screenshot, wait_until
from tests.browser.test_chat import message_bodies, send, seqs
from tests.conftest import free_port

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

RECONNECT_TIMEOUT_MS = 30_000  # the page's reconnection backoff tops out at 10 s
CHAT_SOCKET = re.compile(r"/ws/chat/")


class SocketSwitch:
    """Lets the context's chat sockets through to the server, or refuses them at once.

    Playwright's offline mode does not cut an open WebSocket and would also stop the page itself
    from loading; this keeps HTTP working (the page reloads) while no socket can be opened.
    """

    def __init__(self, context) -> None:
        self.refusing = False
        context.route_web_socket(CHAT_SOCKET, self._route)

    def _route(self, ws) -> None:
        if self.refusing:
            ws.close(code=1011, reason="test: the chat server cannot be reached")
        else:
            ws.connect_to_server()


@contextmanager
def own_web_server(chromium, server, **env: str):
    """Pages of a second web process on the session's stack, with its own settings (``env``).

    The session's server runs with the rate limits off; tests of the client's answer to a limit
    start one with them on.
    """
    port = free_port()
    name = f"web:{port}"
    server.start(name, port=port, **env)
    opened = Browsers(chromium, SimpleNamespace(http=f"http://127.0.0.1:{port}"))
    try:
        yield opened
    finally:
        opened.close()
        server.stop(name)
    assert opened.errors == [], "the pages raised script errors"


def outbox(page, user) -> dict:
    """The page's outbox as stored in localStorage: {room id: [item, ...]}."""
    return json.loads(page.evaluate(f"localStorage.getItem('chat.outbox.v1.{user.pk}') || '{{}}'"))


def pending(page):
    return page.locator("#pending .message")


def open_room_behind_switch(browsers: Browsers, user, room) -> tuple:
    """``(page, switch)``: a page of ``user``'s on ``room``, its chat sockets going through ``switch``."""
    page = browsers.open_as(user)
    switch = SocketSwitch(page.context)
    page.goto(room_url(room))
    return page, switch


def cut_off(page, switch: SocketSwitch, *, network: bool = True) -> None:
    """Go offline: no new socket opens, the open one closes.

    With ``network``, the browser's network goes too (the page's "offline" handler closes the socket);
    without, only the sockets are cut and the page is told by the socket's close.
    """
    switch.refusing = True
    if network:
        page.context.set_offline(True)
    page.evaluate("() => window.Chat.socket.ws && window.Chat.socket.ws.close()")  # (or the event was late)
    expect(page.locator("#offline-banner")).to_be_visible()


def test_going_offline_shows_at_once_even_when_the_socket_cannot_finish_closing(browsers, alice_and_bob):
    """A browser reports a closed socket only once the server answered its close, which over a
    network that went can take a minute; the page gives the socket up at once instead."""
    alice, _, room = alice_and_bob
    page = browsers.open_as(alice)
    # The socket opens (a fake server) and its close is never answered, as over a dead link.
    page.context.route_web_socket(CHAT_SOCKET, lambda ws: ws.on_close(lambda code, reason: None))
    page.goto(room_url(room))
    page.wait_for_function("() => window.Chat.socket.isOpen")
    expect(page.locator("#offline-banner")).to_be_hidden()

    page.context.set_offline(True)

    expect(page.locator("#offline-banner")).to_be_visible(timeout=3_000)
    send(page, "typed once the network went")
    expect(pending(page).locator("[data-role=status]")).to_have_text("Waiting for connection…")


def test_messages_typed_offline_survive_a_reload_and_are_stored_once(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    a, switch = open_room_behind_switch(browsers, alice, room)
    send(a, "before going offline")
    expect(message_bodies(a)).to_have_text(["before going offline"])

    cut_off(a, switch)
    typed = ["first while offline", "second while offline", "third while offline"]
    for body in typed:
        send(a, body)
    expect(pending(a).locator("[data-role=body]")).to_have_text(typed)
    expect(pending(a).locator("[data-role=status]")).to_have_text(["Waiting for connection…"] * 3)
    screenshot(a, "outbox-pending")
    items = outbox(a, alice)[str(room.pk)]
    assert [item["body"] for item in items] == typed
    ids = [item["client_msg_id"] for item in items]

    # Reloaded while sockets still cannot open (the page itself needs HTTP): drawn from the outbox.
    a.context.set_offline(False)
    a.reload()
    expect(pending(a).locator("[data-role=body]")).to_have_text(typed)
    expect(pending(a).locator("[data-role=status]")).to_have_text(["Waiting for connection…"] * 3)
    expect(message_bodies(a)).to_have_text(["before going offline"])
    assert Message.objects.filter(room=room).count() == 1

    switch.refusing = False  # back online: the next reconnection syncs, then sends the three
    expected = ["before going offline", *typed]
    expect(message_bodies(a)).to_have_text(expected, timeout=RECONNECT_TIMEOUT_MS)
    expect(pending(a)).to_have_count(0)
    assert outbox(a, alice) == {}
    rows = Message.objects.filter(room=room, client_msg_id__in=ids)
    assert sorted(str(row.client_msg_id) for row in rows) == sorted(ids)  # one row per client_msg_id
    assert [row.body for row in rows.order_by("seq")] == typed  # in the order typed

    # Nothing doubled later either: a reload and another message show each once, gapless.
    a.reload()
    send(a, "back online")
    expect(message_bodies(a)).to_have_text([*expected, "back online"])
    assert seqs(a) == [1, 2, 3, 4, 5]
    b = browsers.open_room_as(bob, room)
    expect(message_bodies(b)).to_have_text([*expected, "back online"])
    assert Message.objects.filter(room=room).count() == 5


def test_a_refused_message_stays_failed_across_a_reload_and_can_be_deleted(browsers, alice_and_bob):
    alice, _, room = alice_and_bob
    a = browsers.open_room_as(alice, room)

    # A pasted NUL: the server refuses the body (`invalid`); the page does not check it itself.
    a.locator("#composer-input").evaluate("(input, body) => { input.value = body; }", "before\u0000after")
    a.press("#composer-input", "Enter")
    failed = pending(a)
    expect(failed).to_have_attribute("data-state", "failed")
    expect(failed.locator("[data-role=status]")).to_contain_text("Not sent:")
    expect(failed.locator("[data-role=status]")).to_contain_text("U+0000")
    expect(failed.locator("[data-role=discard]")).to_be_visible()
    expect(failed.locator("[data-role=retry]")).to_be_hidden()  # the same body would be refused again
    send(a, "a good one")
    expect(message_bodies(a)).to_have_text(["a good one"])
    screenshot(a, "outbox-failed")
    (item,) = outbox(a, alice)[str(room.pk)]
    assert item["state"] == "failed" and item["code"] == "invalid"

    # After a reload the page syncs and sends what is pending: never the failed one.
    sent = []
    a.on("websocket", lambda ws: ws.on("framesent", lambda payload: sent.append(payload)))
    a.reload()
    expect(failed).to_have_attribute("data-state", "failed")
    expect(failed.locator("[data-role=status]")).to_contain_text("Not sent:")
    send(a, "after the reload")
    expect(message_bodies(a)).to_have_text(["a good one", "after the reload"])
    assert not [frame for frame in sent if item["client_msg_id"] in str(frame)]
    assert not Message.objects.filter(client_msg_id=item["client_msg_id"]).exists()

    failed.locator("[data-role=discard]").click()
    expect(pending(a)).to_have_count(0)
    assert outbox(a, alice) == {}
    a.reload()
    expect(message_bodies(a)).to_have_text(["a good one", "after the reload"])
    expect(pending(a)).to_have_count(0)


def test_a_room_turning_read_only_disables_the_composer_live(browsers, alice_and_bob):
    alice, _, room = alice_and_bob
    a = browsers.open_room_as(alice, room)
    notice = a.locator("#room-read-only")
    expect(notice).to_be_hidden()
    expect(a.locator("#composer-input")).to_be_enabled()
    # The server subscribes a socket before accepting it: once open, it hears the room.
    a.wait_for_function("() => window.Chat && window.Chat.socket.isOpen")

    # The frame the server sends when the other person's account goes (through Redis, as it would).
    send_event_on_commit(room_group(room.pk), "room.updated", room=room.pk, read_only=True)
    expect(notice).to_have_text("This conversation is read-only: the other person's account no longer exists.")
    expect(a.locator("#composer-input")).to_be_disabled()
    expect(a.locator("#composer-send")).to_be_disabled()
    expect(a.locator("#room-title")).to_have_text("general")  # a frame without a name keeps the name
    screenshot(a, "room-read-only")

    send_event_on_commit(room_group(room.pk), "room.updated", room=room.pk, read_only=False)
    expect(notice).to_be_hidden()
    expect(a.locator("#composer-input")).to_be_enabled()
    send(a, "still here")
    expect(message_bodies(a)).to_have_text(["still here"])
    wait_until(lambda: Message.objects.filter(room=room, body="still here").exists(), what="the message is stored")


def test_a_direct_room_whose_other_person_is_gone_is_read_only_and_refuses_what_was_pending(browsers, make_user):
    alice, bob = make_user("alice"), make_user("bob")
    room, _ = room_open_direct(user=alice, other=bob)
    a, switch = open_room_behind_switch(browsers, alice, room)
    expect(a.locator("#room-read-only")).to_be_hidden()
    cut_off(a, switch, network=False)
    send(a, "are you still there?")
    expect(pending(a)).to_have_attribute("data-state", "pending")

    bob.is_active = False  # deactivated while Alice's message waited in her outbox
    bob.save(update_fields=["is_active"])
    switch.refusing = False
    a.reload()
    expect(a.locator("#room-read-only")).to_have_text(
        "This conversation is read-only: the other person's account no longer exists."
    )
    expect(a.locator("#composer-input")).to_be_disabled()
    expect(a.locator("#composer-send")).to_be_disabled()
    # Sent again after the sync, refused (`forbidden`): failed, with a way to delete it.
    expect(pending(a)).to_have_attribute("data-state", "failed")
    expect(pending(a).locator("[data-role=discard]")).to_be_visible()
    screenshot(a, "read-only-direct-room")
    assert not Message.objects.filter(room=room).exists()
    assert outbox(a, alice)[str(room.pk)][0]["code"] == "forbidden"


def test_sends_refused_for_now_go_again_and_are_stored_once_in_the_order_typed(chromium, server, alice_and_bob):
    alice, _, room = alice_and_bob
    with own_web_server(chromium, server, RATE_LIMITS="on", CHAT_SEND_RATE="1", CHAT_SEND_BURST="2") as browsers:
        a = browsers.open_as(alice)
        refusals = []
        a.on(
            "websocket",
            lambda ws: ws.on(
                "framereceived", lambda text: refusals.append(text) if "rate_limited" in str(text) else None
            ),
        )
        a.goto(room_url(room))
        typed = [f"quick message {i}" for i in range(1, 7)]
        for body in typed:
            send(a, body)  # all six at once: the server answers rate_limited to all but two
        expect(message_bodies(a)).to_have_text(typed, timeout=30_000)
        expect(pending(a)).to_have_count(0)
        assert list(Message.objects.filter(room=room).order_by("seq").values_list("body", flat=True)) == typed
        assert seqs(a) == [1, 2, 3, 4, 5, 6]
        assert refusals, "the server was expected to refuse some sends for now"


def test_the_room_list_page_sends_what_a_room_left_pending(browsers, alice_and_bob):
    alice, _, room = alice_and_bob
    a, switch = open_room_behind_switch(browsers, alice, room)
    cut_off(a, switch, network=False)
    send(a, "typed in the room")
    expect(pending(a)).to_have_attribute("data-state", "pending")

    # The tab comes back on the room list: no room open, the outbox still goes out (sync first).
    switch.refusing = False
    a.goto("/")
    row = a.locator(f'.room-row[data-room="{room.pk}"]')
    expect(row.locator("[data-role=preview]")).to_have_text("typed in the room")
    wait_until(lambda: outbox(a, alice) == {}, what="the outbox is empty")
    assert Message.objects.filter(room=room, body="typed in the room").count() == 1
    a.goto(room_url(room))
    expect(message_bodies(a)).to_have_text(["typed in the room"])
    expect(pending(a)).to_have_count(0)
