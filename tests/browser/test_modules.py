"""The web client's ES modules, one by one, in a real Chromium.

Each test opens a small stub page on the running server's origin (served by Playwright's
page.route from here, so the server has no test-only URL) and imports the real modules from the
server's /static/js/chat/ URLs: the outbox's store, the room list's order and badges, and the
pure helpers (room title, times, reconnection plans, sync positions).
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.e2e]

MODULES = "/static/js/chat/"
STUB = "/__module-stub__/"
# The room list's elements, as templates/chat/_layout.html and _room_row.html name their parts.
STUB_HTML = """<!doctype html>
<html><head><title>Chat</title></head><body>
<ul id="room-list"></ul>
<p id="room-list-empty">No rooms yet</p>
<template id="room-row-template"><li class="room-row" data-room=""><a data-role="link">
  <span data-role="avatar"></span><span data-role="name"></span><time data-role="time"></time>
  <span data-role="preview"></span><span data-role="muted" hidden></span><span data-role="mentions" hidden></span>
  <span data-role="badge" hidden></span></a></li></template>
</body></html>"""


@pytest.fixture
def stub(chromium, server):
    """A page on the server's origin holding STUB_HTML, in UTC and en-US (times read the same everywhere)."""
    context = chromium.new_context(base_url=server.http, locale="en-US", timezone_id="UTC")
    errors: list[str] = []

    def serve(route) -> None:
        route.fulfill(status=200, content_type="text/html; charset=utf-8", body=STUB_HTML)

    context.route(f"{server.http}{STUB}", serve)
    page = context.new_page()
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(STUB)
    yield page
    context.close()
    assert errors == [], "the stub page raised script errors"


def run(page, module: str, body: str, arg=None):
    """Evaluate ``body`` (statements with `m` = the imported module, and `arg`) in the page; its return value."""
    script = f"async (arg) => {{ const m = await import({MODULES + module!r}); {body} }}"
    return page.evaluate(script, arg)


def test_the_modules_are_served_as_javascript(stub, server):
    for name in ("main-chat.js", "main-drawer.js", "room/index.js", "outbox.js"):
        response = stub.request.get(MODULES + name)
        assert response.status == 200, name
        # A module script with another MIME type is refused by the browser.
        assert response.headers["content-type"].split(";")[0] in {"text/javascript", "application/javascript"}, name


def test_the_outbox_keeps_pending_and_failed_messages_across_a_reload(stub):
    made = run(
        stub,
        "outbox.js",
        """
        const outbox = m.createOutbox({ userId: 7 });
        let told = 0;
        outbox.onChange(() => { told += 1; });
        const a = outbox.add(3, "first", 10);
        const b = outbox.add(3, "second", 10);
        const c = outbox.add(5, "elsewhere", 2);
        outbox.fail(b.client_msg_id, "too_large", "Too long.");
        const settled = outbox.settle(c.client_msg_id);
        const again = outbox.settle(c.client_msg_id);
        await Promise.resolve();
        return { a: a.client_msg_id, b: b.client_msg_id, settled, again, told, key: outbox.key };
        """,
    )
    assert made["settled"] is True and made["again"] is False
    assert made["told"] == 1, "listeners hear once per task, however many changes it made"
    assert made["key"] == "chat.outbox.v1.7"

    stub.reload()
    state = run(
        stub,
        "outbox.js",
        """
        const outbox = m.createOutbox({ userId: 7 });
        return {
          items: outbox.items(3).map((i) => [i.client_msg_id, i.body, i.state, i.code || null, i.after_seq]),
          pending: outbox.pending(3).map((i) => i.body),
          rooms: outbox.rooms(),
          other: m.createOutbox({ userId: 8 }).rooms(),
        };
        """,
    )
    assert state["items"] == [
        [made["a"], "first", "pending", None, 10],
        [made["b"], "second", "failed", "too_large", 10],
    ]
    assert state["pending"] == ["first"]
    assert state["rooms"] == [3], "room 5's only message was settled; a failed one is not pending"
    assert state["other"] == [], "each user has an outbox of their own"

    revived = run(
        stub,
        "outbox.js",
        """
        const outbox = m.createOutbox({ userId: 7 });
        const item = outbox.revive(arg);
        outbox.settle(outbox.pending(3)[0].client_msg_id);
        return { state: item.state, left: outbox.pending(3).map((i) => i.body) };
        """,
        made["b"],
    )
    assert revived == {"state": "pending", "left": ["second"]}

    # Everything settled: the key goes, nothing is left to re-send after another reload.
    run(stub, "outbox.js", "const o = m.createOutbox({ userId: 7 }); o.settle(arg);", made["b"])
    stub.reload()
    assert stub.evaluate("localStorage.getItem('chat.outbox.v1.7')") is None


def test_the_outbox_lives_in_memory_when_storage_is_blocked(stub):
    result = run(
        stub,
        "outbox.js",
        """
        const blocked = () => { throw new DOMException("blocked", "SecurityError"); };
        const outbox = m.createOutbox({ userId: 7, storage: blocked });
        outbox.add(1, "kept here", 0);
        return { persistent: outbox.persistent, pending: outbox.pending(1).map((i) => i.body) };
        """,
    )
    assert result == {"persistent": False, "pending": ["kept here"]}


def test_the_room_title_is_the_group_name_or_the_other_person(stub):
    titles = run(
        stub,
        "format.js",
        """
        return [
          m.roomTitle({ kind: "group", name: "general" }),
          m.roomTitle({ kind: "direct", name: "", other_user: { id: 2, username: "bob" } }),
          m.roomTitle({ kind: "direct", name: "", other_user: null }),
        ];
        """,
    )
    assert titles == ["general", "bob", "deleted user"]


def test_times_read_short_today_and_with_the_day_otherwise(stub):
    times = run(
        stub,
        "format.js",
        """
        const now = new Date("2026-11-25T15:00:00Z");
        return [
          m.formatTime("2026-11-25T14:05:00Z", true, now),
          m.formatTime("2026-11-24T14:05:00Z", false, now),
          m.formatTime("2026-11-24T14:05:00Z", true, now),
          m.formatTime("", true, now),
          m.formatTime("not a time", true, now),
        ].map((text) => text.replace(/\\u202f/g, " "));  // ICU puts a narrow space before "PM"
        """,
    )
    assert times == ["2:05 PM", "Nov 24", "Nov 24, 2:05 PM", "", ""]


def test_text_helpers(stub):
    result = run(
        stub,
        "format.js",
        """
        const body = document.createElement("p");
        m.renderText(body, 'see https://example.com/a_(b). <b>not bold</b> javascript:alert(1)');
        return {
          html: body.innerHTML,
          badges: [m.badgeText(0), m.badgeText(99), m.badgeText(100)],
          unread: [m.unreadCount({ last_seq: 9, last_read_seq: 4 }), m.unreadCount({ last_seq: 3, last_read_seq: 5 })],
          typing: [m.typingText([]), m.typingText(["ann"]), m.typingText(["ann", "bob"]), m.typingText(["a", "b", "c"])],
          hues: [m.avatarHue(1) === m.avatarHue(1), m.avatarHue(1) !== m.avatarHue(2)],
        };
        """,
    )
    assert result["html"] == (
        'see <a href="https://example.com/a_(b)" rel="noopener noreferrer nofollow" target="_blank">'
        "https://example.com/a_(b)</a>. &lt;b&gt;not bold&lt;/b&gt; javascript:alert(1)"
    )
    assert result["badges"] == ["0", "99", "99+"]
    assert result["unread"] == [5, 0]
    assert result["typing"] == ["", "ann is typing…", "ann and bob are typing…", "Several people are typing…"]
    assert result["hues"] == [True, True]


def test_the_room_list_puts_the_newest_conversation_on_top(stub):
    result = run(
        stub,
        "rooms.js",
        """
        const rooms = [
          { id: 1, kind: "group", name: "one", last_seq: 5, last_read_seq: 5, last_message: null },
          { id: 2, kind: "direct", name: "", other_user: { id: 9, username: "zoe" }, last_seq: 2, last_read_seq: 2 },
          { id: 3, kind: "group", name: "three", last_seq: 7, last_read_seq: 7 },
        ];
        const list = m.createRoomList({
          element: document.getElementById("room-list"),
          template: document.getElementById("room-row-template"),
          empty: document.getElementById("room-list-empty"),
          rooms,
          current: 1,
          api: async () => { throw new Error("no REST here"); },
          baseTitle: "Chat",
        });
        list.init();
        const order = list.order();  // the server's order, as given
        const sender = (id) => ({ id, username: "x" });
        const at = "2026-11-25T14:05:00Z";
        list.onMessage({ room: 3, seq: 8, body: "new in three", sender: sender(9), created_at: at }, 4);
        const afterNew = list.order();
        list.onMessage({ room: 2, seq: 3, body: "from zoe", sender: sender(9), created_at: at }, 4);
        list.onMessage({ room: 2, seq: 4, body: "again", sender: sender(9), created_at: at }, 4);
        const afterTwo = list.order();
        // A sync replays an older message: nothing moves.
        list.onMessage({ room: 3, seq: 6, body: "old", sender: sender(9), created_at: at }, 4);
        const afterReplay = list.order();
        const row = (id) => list.row(id);
        const badge = (id) => { const b = row(id).querySelector("[data-role=badge]"); return b.hidden ? null : b.textContent; };
        const snapshot = {
          order, afterNew, afterTwo, afterReplay,
          badges: [badge(1), badge(2), badge(3)],
          names: [1, 2, 3].map((id) => row(id).querySelector("[data-role=name]").textContent),
          preview: row(2).querySelector("[data-role=preview]").textContent,
          current: row(1).classList.contains("is-current"),
          title: document.title,
          empty: document.getElementById("room-list-empty").hidden,
        };
        // The user's own message is read; reading a room clears its badge.
        list.onMessage({ room: 1, seq: 6, body: "mine", sender: sender(4), created_at: at }, 4);
        list.setRead(2, 4);
        snapshot.later = { order: list.order(), badges: [badge(1), badge(2), badge(3)], title: document.title };
        list.remove(1); list.remove(2); list.remove(3);
        snapshot.emptyAtLast = document.getElementById("room-list-empty").hidden;
        return snapshot;
        """,
    )
    assert result["order"] == [1, 2, 3]
    assert result["afterNew"] == [3, 1, 2]
    assert result["afterTwo"] == [2, 3, 1]
    assert result["afterReplay"] == [2, 3, 1]
    assert result["badges"] == [None, "2", "1"]
    assert result["names"] == ["one", "zoe", "three"]
    assert result["preview"] == "again"
    assert result["current"] is True
    assert result["title"] == "(3) Chat"
    assert result["empty"] is True
    assert result["later"] == {"order": [1, 2, 3], "badges": [None, None, "1"], "title": "(1) Chat"}
    assert result["emptyAtLast"] is False


def test_reconnection_plans_follow_the_close_codes(stub):
    plans = run(
        stub,
        "socket.js",
        """
        const half = () => 0.5;
        return {
          unauthenticated: m.reconnectPlan(4401, { attempts: 3, random: half }),
          suspended: m.reconnectPlan(4403, { attempts: 0, random: half }),
          tooMany: m.reconnectPlan(4429, { attempts: 2, random: half }),
          goingAway: m.reconnectPlan(4503, { attempts: 5, random: half }),
          lost: m.reconnectPlan(4012, { attempts: 0, random: half }),
          later: m.reconnectPlan(1006, { attempts: 10, restarting: true, random: half }),
        };
        """,
    )
    assert plans["unauthenticated"]["stop"] is True
    assert plans["suspended"]["stop"] is True and "suspended" in plans["suspended"]["text"]
    assert plans["tooMany"]["delay"] >= 30_000 and plans["tooMany"]["attempts"] == 2
    assert 500 <= plans["goingAway"]["delay"] <= 3000
    assert plans["goingAway"]["attempts"] == 0 and plans["goingAway"]["restarting"] is True
    assert plans["lost"] == {"delay": 375, "text": "You are offline. Reconnecting…", "attempts": 1, "restarting": False}
    assert plans["later"]["delay"] == 7500, "the backoff stops growing at 10 s"
    assert plans["later"]["text"] == "Server restarting… Reconnecting."


def test_delivery_helpers(stub):
    result = run(
        stub,
        "delivery.js",
        """
        return {
          from: [
            m.syncFrom([], 12),
            m.syncFrom([{ after_seq: 8 }, { after_seq: 10 }], 12),
            m.syncFrom([{ after_seq: 8 }], undefined),
            m.syncFrom([], undefined),
          ],
          wait: [m.retryAfterMs({ retry_after: 2 }), m.retryAfterMs({ detail: "Slow down; retry in 1.5 s" }), m.retryAfterMs({})],
          retry: [
            m.canRetry({ state: "failed", code: "unavailable" }),
            m.canRetry({ state: "failed", code: "too_large" }),
            m.canRetry({ state: "pending" }),
          ],
        };
        """,
    )
    assert result == {"from": [12, 8, 8, 0], "wait": [2000, 1500, 0], "retry": [True, False, False]}


# The delivery module over an outbox of user USER and a stand-in socket that keeps what is sent.
STAND_IN_DELIVERY = """
        const { createOutbox } = await import("/static/js/chat/outbox.js");
        const sent = [];
        const socket = { isOpen: true, send(frame) { sent.push(frame); return true; } };
        const outbox = createOutbox({ userId: USER });
        const delivery = m.createDelivery({ socket, outbox, me: { id: USER } });
"""


def run_delivery(page, user: int, body: str):
    """``run`` ``body`` in delivery.js after STAND_IN_DELIVERY, its outbox being user ``user``'s."""
    return run(page, "delivery.js", STAND_IN_DELIVERY.replace("USER", str(user)) + body)


def test_delivery_sends_after_the_sync_and_settles_on_the_stored_message(stub):
    """The outbox's delivery over a stand-in socket: the order of sync and sends, refusals, settling."""
    result = run_delivery(
        stub,
        11,
        """
        const frames = () => sent.splice(0).map((f) => [f.type, f.body || f.rooms, f.client_msg_id === f.req]);

        const a = delivery.send(4, "hello", 20);
        const beforeSync = frames();  // the room is not synced on this connection yet
        delivery.roomSynced(4);
        const afterSync = frames();
        delivery.onError({ type: "error", code: "unavailable", client_msg_id: a.client_msg_id });
        const b = delivery.send(4, "too big", 20);
        delivery.onError({ type: "error", code: "too_large", client_msg_id: b.client_msg_id, detail: "Too large." });
        const refused = { a: outbox.get(a.client_msg_id).state, b: delivery.status(outbox.get(b.client_msg_id)) };
        delivery.stored({ room: 4, seq: 21, client_msg_id: a.client_msg_id, sender: { id: 11 } });
        const settled = outbox.get(a.client_msg_id);
        frames();

        delivery.onClose();
        const c = delivery.send(4, "while away", 21);
        const whileClosed = frames();
        delivery.onOpen();  // the outbox's rooms are synced first, from before their pending items
        const onOpen = frames();
        delivery.onSyncDone({ type: "sync.done", req: "outbox-sync" });
        const afterOpen = frames();
        delivery.onClose();  // no timers left behind
        return { beforeSync, afterSync, refused, settled, whileClosed, onOpen, afterOpen, pending: outbox.pending(4).map((i) => i.body) };
        """,
    )
    assert result["beforeSync"] == []
    assert result["afterSync"] == [["message.send", "hello", True]]
    assert result["refused"] == {"a": "pending", "b": "Not sent: Too large."}
    assert result["settled"] is None
    assert result["whileClosed"] == []
    assert result["onOpen"] == [["sync", {"4": 21}, False]]
    assert result["afterOpen"] == [["message.send", "while away", True]], "a failed message is never re-sent by itself"
    assert result["pending"] == ["while away"]


def test_delivery_keeps_one_message_per_room_on_its_way_until_the_broker_accepts_it(stub):
    """A later message must not overtake one refused for now (it goes again): one at a time."""
    result = run_delivery(
        stub,
        12,
        """
        const bodies = () => sent.splice(0).map((f) => f.body);
        delivery.roomSynced(5);
        const [a, b] = [delivery.send(5, "first", 0), delivery.send(5, "second", 0)];
        const atOnce = bodies();
        delivery.onError({ type: "error", code: "rate_limited", client_msg_id: a.client_msg_id, detail: "retry in 0.1 s." });
        const afterRefusal = bodies();
        await new Promise((resolve) => setTimeout(resolve, 1100));  // the first back-off: 0.5-1 s
        const again = bodies();
        delivery.accepted({ room: 5, client_msg_id: a.client_msg_id });
        const afterAccepted = bodies();
        delivery.onClose();
        return { atOnce, afterRefusal, again, afterAccepted, b: b.body };
        """,
    )
    assert result["atOnce"] == ["first"]
    assert result["afterRefusal"] == []  # "second" waits behind the refused "first"
    assert result["again"] == ["first"]
    assert result["afterAccepted"] == ["second"]


def test_the_drawer_module_follows_the_other_tabs_changes(stub):
    result = run(
        stub,
        "drawer.js",
        """
        document.body.insertAdjacentHTML("beforeend", `
          <p id="drawer-notice" hidden><a href="">Show them</a></p>
          <ol id="drawer-entries">
            <li class="drawer-entry" data-entry="5">
              <div data-role="note-view" hidden><p data-role="note"></p></div><ul data-role="tags"></ul>
              <form data-role="edit-form" hidden><textarea name="note"></textarea><input name="tags"></form>
            </li>
          </ol>`);
        const handlers = {};
        const socket = { on(type, handler) { handlers[type] = handler; } };
        const list = document.getElementById("drawer-entries");
        m.setupDrawer({ list, api: async () => null, socket, toast: () => {} });
        handlers["drawer.changed"]({ action: "updated", entry: { id: 5, note: "read later", tags: ["a", "b c"] } });
        const item = list.querySelector(".drawer-entry");
        const updated = {
          note: item.querySelector("[data-role=note]").textContent,
          tags: Array.from(item.querySelectorAll(".tag"), (t) => t.textContent),
          field: item.querySelector("input[name=tags]").value,
        };
        handlers["drawer.changed"]({ action: "saved", entry: { id: 6 } });
        const notice = !document.getElementById("drawer-notice").hidden;
        handlers["drawer.changed"]({ action: "removed", id: 5 });
        return { updated, notice, left: list.textContent.trim(), tags: m.parseTags(" a, ,b c ,") };
        """,
    )
    assert result["updated"] == {"note": "read later", "tags": ["a", "b c"], "field": "a, b c"}
    assert result["notice"] is True
    assert result["left"] == "Nothing left here."
    assert result["tags"] == ["a", "b c"]


@pytest.mark.django_db(transaction=True)
def test_the_pages_preload_exactly_the_modules_they_import(browsers, make_user):
    """A preload list that drifts from the imports loads a module late, or one nobody uses."""
    alice = make_user("alice")
    page = browsers.open_as(alice)
    for target in ("/", "/drawer/"):
        page.goto(target)
        page.wait_for_function("() => window.Chat && window.Chat.socket.isOpen")
        listed = page.evaluate(
            """() => Array.from(document.querySelectorAll("link[rel=modulepreload], script[type=module]"),
                                (e) => new URL(e.href || e.src).pathname)"""
        )
        loaded = page.evaluate(
            """() => performance.getEntriesByType("resource").map((e) => new URL(e.name).pathname)
                       .filter((path) => path.startsWith("/static/js/"))"""
        )
        assert sorted(listed) == sorted(set(loaded)), target


def test_attachment_helpers_and_drawing(stub):
    """Sizes for people, previews drawn at their final size, file cards, none for a deleted message."""
    result = run(
        stub,
        "room/gallery.js",
        """
        const f = await import("/static/js/chat/format.js");
        const { drawMedia } = await import("/static/js/chat/room/messages.js");
        const image = { id: 1, kind: "image", name: "sunset.png", size: 5000, width: 640, height: 400,
                        url: "/api/v1/attachments/1/file/", thumbnail_url: "/api/v1/attachments/1/thumbnail/" };
        const file = { id: 2, kind: "file", name: "minutes.pdf", size: 1536, width: null, height: null,
                       url: "/api/v1/attachments/2/file/", thumbnail_url: null };
        const element = document.createElement("li");
        element.innerHTML = '<p data-role="body"></p><div data-role="attachments" hidden></div>';
        drawMedia(element, { body: "", deleted: false, attachments: [image, file] });
        const img = element.querySelector(".attachment-image img");
        const card = element.querySelector("a.attachment-file");
        const drawn = {
          src: img.getAttribute("src"), alt: img.alt, size: [img.width, img.height],
          full: element.querySelector(".attachment-image").dataset.url,
          card: [card.getAttribute("href"), card.download, card.textContent],
          bodyHidden: element.querySelector("[data-role=body]").hidden,
          images: m.messageImages(element),
        };
        drawMedia(element, { body: "", deleted: true, attachments: [image, file] });
        drawn.afterDelete = [element.querySelectorAll(".attachment-image, .attachment-file").length,
                             element.querySelector("[data-role=attachments]").hidden,
                             element.querySelector("[data-role=body]").hidden];
        return {
          drawn,
          sizes: [0, 812, 1024, 14540, 3.1 * 1024 * 1024, 250 * 1024 * 1024, -1].map(f.humanSize),
          fits: [f.fitWithin(640, 400, 240), f.fitWithin(300, 500, 240), f.fitWithin(100, 80, 240), f.fitWithin(null, null, 240)],
          labels: [m.fileLabel("a.tar.gz"), m.fileLabel("README"), m.fileLabel("x.toolongext")],
          previews: [f.messagePreview({ body: "hi", attachments: [image] }), f.messagePreview({ body: "", attachments: [image, file] }),
                     f.messagePreview({ body: "" })],
        };
        """,
    )
    drawn = result["drawn"]
    assert drawn["src"] == "/api/v1/attachments/1/thumbnail/" and drawn["alt"] == "sunset.png"
    assert drawn["size"] == [240, 150]
    assert drawn["full"] == "/api/v1/attachments/1/file/"
    assert drawn["card"] == ["/api/v1/attachments/2/file/", "minutes.pdf", "PDFminutes.pdf1.5 KB"]
    assert drawn["bodyHidden"] is True, "a message of files only has no empty text line"
    assert drawn["images"] == [
        {"url": "/api/v1/attachments/1/file/", "name": "sunset.png", "width": 640, "height": 400}
    ]
    assert drawn["afterDelete"] == [0, True, False]
    assert result["sizes"] == ["0 B", "812 B", "1.0 KB", "14.2 KB", "3.1 MB", "250 MB", ""]
    assert result["fits"] == [
        {"width": 240, "height": 150},
        {"width": 144, "height": 240},
        {"width": 100, "height": 80},
        {"width": 240, "height": 240},
    ]
    assert result["labels"] == ["GZ", "FILE", "FILE"]
    assert result["previews"] == ["hi", "📎 sunset.png, minutes.pdf", ""]


def test_the_outbox_keeps_a_messages_attachments_and_delivery_sends_their_ids_each_time(stub):
    first = run_delivery(
        stub,
        13,
        """
        const files = [{ id: 41, kind: "image", name: "a.png" }, { id: 42, kind: "file", name: "b.pdf" }];
        delivery.roomSynced(6);
        const item = delivery.send(6, "", 3, null, files);
        const plain = delivery.send(6, "no files", 3);
        delivery.onClose();
        return { id: item.client_msg_id, frames: sent.splice(0), plain: outbox.get(plain.client_msg_id) };
        """,
    )
    assert first["frames"] == [
        {
            "type": "message.send",
            "room": 6,
            "client_msg_id": first["id"],
            "body": "",
            "req": first["id"],
            "attachments": [41, 42],
        }
    ]
    assert "attachments" not in first["plain"], "a message without files keeps the stored shape it had"

    stub.reload()
    again = run_delivery(
        stub,
        13,
        """
        delivery.onOpen();
        sent.splice(0);
        delivery.roomSynced(6);
        const frames = sent.splice(0);
        const kept = outbox.pending(6)[0].attachments.map((a) => a.name);
        // Refused as its files are attached already (stored meanwhile): a sync from before it is asked,
        // and its message.new settles it although it failed.
        const item = outbox.pending(6)[0];
        delivery.onError({ type: "error", code: "invalid", client_msg_id: item.client_msg_id, detail: "Attachment 41 is attached to another message already." });
        const check = sent.splice(0).filter((f) => f.type === "sync"); // (and the next one goes)
        delivery.stored({ room: 6, seq: 4, client_msg_id: item.client_msg_id, sender: { id: 13 } });
        delivery.onClose();
        return { frames, kept, check, left: outbox.items(6).map((i) => i.body) };
        """,
    )
    assert again["kept"] == ["a.png", "b.pdf"]
    assert [(f["client_msg_id"], f["attachments"]) for f in again["frames"]] == [(first["id"], [41, 42])]
    assert again["check"] == [{"type": "sync", "rooms": {"6": 3}, "req": "outbox-check"}]
    assert again["left"] == ["no files"]
