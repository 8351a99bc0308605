"""Attachments in the web chat: the Attach button, a drop and a paste upload at once into the tray
above the composer, go with the next message, and show live to the other member as image
previews (a lightbox at full size) and file cards; refusals show the server's words in the tray;
a message typed offline keeps its files across a reload; only members reach the files.
"""

from __future__ import annotations

import base64
import json
import os
import re
import struct
import zlib

import pytest
from playwright.sync_api import expect

from attachments.models import Attachment
from chat_messages.models import Message
from rooms.services import participant_remove
from tests.browser.conftest import room_url, screenshot, wait_until
from tests.browser.test_chat import message_bodies, send
from tests.browser.test_outbox import cut_off, open_room_behind_switch, outbox, own_web_server, pending

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

FILE_URL = re.compile(r"^/api/v1/attachments/\d+/file/$")
THUMBNAIL_URL = re.compile(r"^/api/v1/attachments/\d+/thumbnail/$")
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def png(width: int, height: int, *, noise: bool = False) -> bytes:
    """A real PNG (RGB): a gradient, or random pixels that do not compress (a big file)."""

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    rows = []
    for y in range(height):
        if noise:
            row = os.urandom(width * 3)
        else:
            row = bytes(v for x in range(width) for v in (x * 255 // width, y * 255 // height, 170))
        rows.append(b"\x00" + row)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"".join(rows)))
        + chunk(b"IEND", b"")
    )


def payload(name: str, mime: str, data: bytes) -> dict:
    """A file as Playwright hands it to a file input."""
    return {"name": name, "mimeType": mime, "buffer": data}


def tray(page):
    return page.locator("#attach-tray .attach-item")


def last_message(page):
    return page.locator("#messages .message").last


def attach_with_button(page, files: list[dict]) -> None:
    """Click Attach and choose ``files`` in the file picker it opens."""
    with page.expect_file_chooser() as chooser:
        page.click("#composer-attach")
    assert chooser.value.is_multiple()
    chooser.value.set_files(files)


# Builds a File in the page from base64 (the bytes cross as text).
MAKE_FILE = """
  const bytes = Uint8Array.from(atob(file.b64), (c) => c.charCodeAt(0));
  const dt = new DataTransfer();
  dt.items.add(new File([bytes], file.name, { type: file.type }));
"""


def in_page_file(name: str, mime: str, data: bytes) -> dict:
    return {"name": name, "type": mime, "b64": base64.b64encode(data).decode()}


def drop_file(page, name: str, mime: str, data: bytes) -> bool:
    """Drag a file over the conversation and drop it (synthetic drag events with a DataTransfer);
    whether the shade showed while dragging."""
    return page.evaluate(
        "(file) => {"
        + MAKE_FILE
        + """
          const target = document.getElementById("timeline");
          const fire = (type) => target.dispatchEvent(new DragEvent(type, { bubbles: true, cancelable: true, dataTransfer: dt }));
          fire("dragenter");
          fire("dragover");
          const shaded = document.getElementById("conversation").classList.contains("is-dropping");
          fire("drop");
          return shaded && !document.getElementById("conversation").classList.contains("is-dropping");
        }""",
        in_page_file(name, mime, data),
    )


def paste_file(page, name: str, mime: str, data: bytes) -> bool:
    """Paste a file into the composer (a synthetic paste event whose clipboard holds it); whether
    the page kept the browser from pasting it as text."""
    return page.evaluate(
        "(file) => {"
        + MAKE_FILE
        + """
          const event = new ClipboardEvent("paste", { bubbles: true, cancelable: true, clipboardData: dt });
          document.getElementById("composer-input").dispatchEvent(event);
          return event.defaultPrevented;
        }""",
        in_page_file(name, mime, data),
    )


def upload_over_rest(page, room, name: str, mime: str, data: bytes):
    """The upload endpoint answering ``page``'s session (cookie and CSRF token, as the page sends them)."""
    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    return page.request.post(
        f"/api/v1/rooms/{room.pk}/attachments/",
        multipart={"file": payload(name, mime, data)},
        headers={"X-CSRFToken": token, "Referer": page.url},
    )


def image_loaded(locator, width: int | None = None) -> None:
    """Wait until the <img> ``locator`` has loaded (``width``: at that natural width)."""
    check = "img => img.complete && img.naturalWidth > 0" if width is None else f"img => img.naturalWidth === {width}"
    locator.page.wait_for_function(f"([img]) => ({check})(img)", arg=[locator.element_handle()])


# What a lightbox that is open but not shown looks like from inside the page (for the failure's message).
LIGHTBOX_STATE = """() => {
  const d = document.getElementById("lightbox");
  const r = d.getBoundingClientRect();
  const chain = [];
  for (let e = d; e; e = e.parentElement) chain.push(`${e.tagName.toLowerCase()}#${e.id} ${getComputedStyle(e).display}`);
  return { open: d.open, modal: d.matches(":modal"), box: [r.width, r.height], visibility: getComputedStyle(d).visibility,
           chain, page: document.visibilityState, focused: document.activeElement && document.activeElement.outerHTML.slice(0, 80),
           history: [history.length, history.state] };
}"""


def expect_lightbox_shown(page) -> None:
    """The lightbox shows; if it does not, the failure says what state the dialog is in."""
    try:
        expect(page.locator("#lightbox")).to_be_visible()
    except AssertionError as error:
        raise AssertionError(f"{error}\nlightbox state: {page.evaluate(LIGHTBOX_STATE)}") from None


def test_an_image_sent_with_the_attach_button_shows_live_and_opens_in_the_lightbox(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    a = browsers.open_room_as(alice, room)
    b = browsers.open_room_as(bob, room)
    b.wait_for_function("() => window.Chat && window.Chat.socket.isOpen")

    # Slow uploads (Chromium's network emulation) to see the progress bars.
    cdp = a.context.new_cdp_session(a)
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 150_000},
    )
    attach_with_button(
        a,
        [payload("sunset.png", "image/png", png(640, 400)), payload("big.png", "image/png", png(300, 300, noise=True))],
    )
    expect(tray(a)).to_have_count(2)
    expect(tray(a).nth(0).locator(".attach-name")).to_have_text("sunset.png")
    expect(tray(a).nth(0).locator(".attach-thumb img")).to_have_attribute("src", re.compile(r"^blob:"))
    expect(tray(a).nth(0).locator(".attach-remove")).to_have_attribute("aria-label", "Remove sunset.png")
    a.wait_for_function(
        "() => Array.from(document.querySelectorAll('#attach-tray progress')).some((p) => !p.hidden && p.value > 0 && p.value < 100)"
    )
    screenshot(a, "attachments-uploading")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
    )
    expect(a.locator("#attach-tray .attach-item[data-state=done]")).to_have_count(2, timeout=60_000)
    expect(tray(a).locator("progress")).to_have_count(2)
    expect(a.locator("#attach-tray progress:visible")).to_have_count(0)

    # The second one is not wanted after all.
    tray(a).nth(1).locator(".attach-remove").click()
    expect(tray(a)).to_have_count(1)
    attach_with_button(a, [payload("chart.png", "image/png", png(300, 500))])
    expect(a.locator("#attach-tray .attach-item[data-state=done]")).to_have_count(2)
    send(a, "Look at these")
    expect(a.locator("#attach-tray")).to_be_hidden()

    # Bob sees the thumbnails live, drawn at their final size before they load.
    message = last_message(b)
    expect(message.locator("[data-role=body]")).to_have_text("Look at these")
    previews = message.locator(".attachment-image img")
    expect(previews).to_have_count(2)
    expect(previews.nth(0)).to_have_attribute("alt", "sunset.png")
    assert THUMBNAIL_URL.match(previews.nth(0).get_attribute("src"))
    assert (previews.nth(0).get_attribute("width"), previews.nth(0).get_attribute("height")) == ("240", "150")
    assert (previews.nth(1).get_attribute("width"), previews.nth(1).get_attribute("height")) == ("144", "240")
    image_loaded(previews.nth(0))
    image_loaded(previews.nth(1))
    expect(last_message(a).locator(".attachment-image img")).to_have_count(2)
    expect(pending(a)).to_have_count(0)
    stored = Message.objects.get(room=room, body="Look at these")

    # The lightbox: the full image, the arrows to the message's other image, Esc back to the preview.
    lightbox = b.locator("#lightbox")
    big = lightbox.locator("[data-role=image]")
    message.locator(".attachment-image").nth(0).click()
    expect_lightbox_shown(b)
    assert FILE_URL.match(big.get_attribute("src"))
    image_loaded(big, 640)
    expect(lightbox.locator("[data-role=name]")).to_have_text("sunset.png")
    expect(lightbox.locator("[data-role=count]")).to_have_text("1 / 2")
    expect(lightbox.locator("[data-role=close]")).to_be_focused()
    b.keyboard.press("ArrowRight")
    expect(lightbox.locator("[data-role=name]")).to_have_text("chart.png")
    expect(lightbox.locator("[data-role=count]")).to_have_text("2 / 2")
    image_loaded(big, 300)
    expect(big).to_have_attribute("alt", "chart.png")
    screenshot(b, "attachments-lightbox")
    b.keyboard.press("ArrowLeft")
    expect(lightbox.locator("[data-role=name]")).to_have_text("sunset.png")
    b.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()
    expect(message.locator(".attachment-image").nth(0)).to_be_focused()

    # From the keyboard, and closed by the browser's Back (the page stays the room).
    message.locator(".attachment-image").nth(1).press("Enter")
    expect(lightbox.locator("[data-role=name]")).to_have_text("chart.png")
    b.go_back()
    expect(lightbox).to_be_hidden()
    assert b.url.endswith(room_url(room))
    # A click on the picture closes it too, and leaves no history entry behind.
    message.locator(".attachment-image").nth(0).click()
    expect_lightbox_shown(b)
    big.click()
    expect(lightbox).to_be_hidden()
    b.wait_for_timeout(300)
    assert b.url.endswith(room_url(room))

    # Deleted: the message shows no attachments any more, on both pages, live and after a reload.
    a.wait_for_function("() => window.Chat.socket.isOpen")
    a.evaluate("([room, seq]) => window.Chat.socket.send({type: 'message.delete', room, seq})", [room.pk, stored.seq])
    for page in (a, b):
        expect(last_message(page).locator("[data-role=body]")).to_have_text("This message was deleted.")
        expect(last_message(page).locator(".message-attachments")).to_be_hidden()
        expect(last_message(page).locator(".attachment-image")).to_have_count(0)
    b.reload()
    expect(last_message(b).locator("[data-role=body]")).to_have_text("This message was deleted.")
    expect(last_message(b).locator(".attachment-image")).to_have_count(0)


def test_a_dropped_file_and_a_pasted_image_upload_and_go_with_or_without_text(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    a = browsers.open_room_as(alice, room)
    b = browsers.open_room_as(bob, room)
    b.wait_for_function("() => window.Chat && window.Chat.socket.isOpen")

    assert drop_file(a, "minutes.pdf", "application/pdf", PDF), "the shade shows while a file is dragged over"
    expect(a.locator("#attach-tray .attach-item[data-state=done]")).to_have_count(1)
    expect(tray(a).locator(".attach-name")).to_have_text("minutes.pdf")
    a.press("#composer-input", "Enter")  # no text: the file alone
    card = last_message(b).locator(".attachment-file")
    expect(card).to_have_count(1)
    expect(card.locator(".attachment-file-name")).to_have_text("minutes.pdf")
    expect(card.locator(".attachment-file-size")).to_have_text(f"{len(PDF)} B")
    expect(card.locator(".attachment-file-icon")).to_have_text("PDF")
    expect(card).to_have_attribute("download", "minutes.pdf")
    expect(last_message(b).locator("[data-role=body]")).to_be_hidden()
    href = card.get_attribute("href")
    assert FILE_URL.match(href)
    response = b.request.get(href)
    assert response.status == 200 and response.body() == PDF
    stored = Message.objects.get(room=room, sender=alice)
    assert stored.body == ""
    # The room list names the file where the text would be, live and as the server keeps it.
    preview = b.locator(f'.room-row[data-room="{room.pk}"] [data-role=preview]')
    expect(preview).to_have_text("📎 minutes.pdf")
    b.reload()
    expect(preview).to_have_text("📎 minutes.pdf")

    # Sent while the image is still uploading (a slow network): it goes once the upload is done.
    image = png(320, 200, noise=True)
    cdp = a.context.new_cdp_session(a)
    slow = {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 60_000}
    cdp.send("Network.emulateNetworkConditions", slow)
    assert paste_file(a, "image.png", "image/png", image), "a pasted file is not pasted as text"
    expect(a.locator("#attach-tray .attach-item[data-state=uploading]")).to_have_count(1)
    send(a, "and the whiteboard")
    expect(a.locator("#toast")).to_have_text("Sending once the files have uploaded…")
    expect(a.locator("#composer-input")).to_have_value("and the whiteboard")  # not gone before it goes
    cdp.send("Network.emulateNetworkConditions", {**slow, "uploadThroughput": -1})
    expect(a.locator("#composer-input")).to_have_value("", timeout=30_000)
    message = last_message(b)
    expect(message.locator("[data-role=body]")).to_have_text("and the whiteboard")
    preview = message.locator(".attachment-image img")
    expect(preview).to_have_count(1)
    image_loaded(preview)
    expect(message_bodies(a)).to_have_text(["", "and the whiteboard"])
    expect(a.locator("#messages .attachment-file")).to_have_count(1)
    expect(a.locator("#messages .attachment-image")).to_have_count(1)
    screenshot(b, "attachments-conversation")

    # Text pasted with no file stays the browser's: the page does not take it.
    pasted_text = a.evaluate(
        """() => {
          const dt = new DataTransfer();
          dt.setData("text/plain", "just words");
          const event = new ClipboardEvent("paste", { bubbles: true, cancelable: true, clipboardData: dt });
          document.getElementById("composer-input").dispatchEvent(event);
          return event.defaultPrevented;
        }"""
    )
    assert pasted_text is False
    expect(a.locator("#attach-tray")).to_be_hidden()


def test_only_members_reach_a_file(browsers, make_user, alice_and_bob):
    alice, bob, room = alice_and_bob
    carol = make_user("carol")
    a = browsers.open_room_as(alice, room)
    attach_with_button(a, [payload("plan.pdf", "application/pdf", PDF), payload("map.png", "image/png", png(200, 120))])
    expect(a.locator("#attach-tray .attach-item[data-state=done]")).to_have_count(2)
    send(a, "for members only")
    message = last_message(a)
    expect(message.locator(".attachment-file")).to_have_count(1)
    urls = [
        message.locator(".attachment-file").get_attribute("href"),
        message.locator(".attachment-image").get_attribute("data-url"),
        message.locator(".attachment-image img").get_attribute("src"),
    ]
    assert FILE_URL.match(urls[0]) and FILE_URL.match(urls[1]) and THUMBNAIL_URL.match(urls[2])

    b = browsers.open_as(bob)
    c = browsers.open_as(carol)
    for url in urls:
        assert b.request.get(url).status == 200, url
        assert c.request.get(url).status == 404, url  # not a member: as if it did not exist
    assert b.request.get(urls[0]).body() == PDF

    participant_remove(actor_id=alice.pk, room_id=room.pk, user_id=bob.pk)
    for url in urls:
        assert b.request.get(url).status == 404, url  # removed: no longer
        assert a.request.get(url).status == 200, url


def test_refused_files_show_the_servers_words_in_the_tray_and_stay_out_of_the_message(chromium, server, alice_and_bob):
    alice, bob, room = alice_and_bob
    with own_web_server(chromium, server, CHAT_ATTACHMENT_MAX_BYTES="60000") as browsers:
        a = browsers.open_room_as(alice, room)
        too_big = png(200, 200, noise=True)  # about 120 KB of pixels that do not compress
        disguised = ("holiday.png", "image/png", PDF)  # says PNG, is a PDF
        answers = {
            name: upload_over_rest(a, room, name, "image/png", data)
            for name, data in (("huge.png", too_big), (disguised[0], disguised[2]))
        }
        assert answers["huge.png"].status == 413 and answers["holiday.png"].status == 415
        words = {name: answer.json()["error"]["detail"] for name, answer in answers.items()}

        attach_with_button(
            a,
            [
                payload("huge.png", "image/png", too_big),
                payload(*disguised),
                payload("ok.png", "image/png", png(50, 50)),
            ],
        )
        failed = a.locator("#attach-tray .attach-item.is-failed")
        expect(failed).to_have_count(2)
        expect(failed.nth(0).locator(".attach-status")).to_have_text(str(words["huge.png"]))
        expect(failed.nth(1).locator(".attach-status")).to_have_text(str(words["holiday.png"]))
        expect(failed.nth(0).locator(".attach-status")).to_have_attribute("role", "alert")
        expect(a.locator("#attach-tray .attach-item[data-state=done]")).to_have_count(1)
        screenshot(a, "attachments-refused")

        send(a, "only the good one")
        expect(message_bodies(a)).to_have_text(["only the good one"])
        expect(last_message(a).locator(".attachment-image img")).to_have_attribute("alt", "ok.png")
        expect(last_message(a).locator(".attachment-image")).to_have_count(1)
        expect(failed).to_have_count(2)  # still there to be read, until removed
        failed.nth(0).locator(".attach-remove").click()
        failed.nth(0).locator(".attach-remove").click()
        expect(a.locator("#attach-tray")).to_be_hidden()
        expect(a.locator("#composer-input")).to_be_focused()


def test_a_message_with_files_typed_offline_keeps_them_across_a_reload_and_is_stored_once(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    a, switch = open_room_behind_switch(browsers, alice, room)
    attach_with_button(a, [payload("offline.png", "image/png", png(120, 90))])
    expect(a.locator("#attach-tray .attach-item[data-state=done]")).to_have_count(1)
    cut_off(a, switch)
    a.context.set_offline(False)  # HTTP back (the files are up already), the chat socket still cut
    send(a, "sent while the socket was down")
    expect(pending(a).locator(".attachment-image img")).to_have_attribute("alt", "offline.png")
    (item,) = outbox(a, alice)[str(room.pk)]
    assert [attachment["name"] for attachment in item["attachments"]] == ["offline.png"]
    ids = [attachment["id"] for attachment in item["attachments"]]

    a.reload()
    expect(pending(a).locator("[data-role=status]")).to_have_text("Waiting for connection…")
    expect(pending(a).locator(".attachment-image img")).to_have_attribute("alt", "offline.png")
    sent = []
    a.on("websocket", lambda ws: ws.on("framesent", lambda text: sent.append(text)))
    switch.refusing = False
    expect(message_bodies(a)).to_have_text(["sent while the socket was down"], timeout=30_000)
    expect(pending(a)).to_have_count(0)
    expect(last_message(a).locator(".attachment-image img")).to_have_attribute("alt", "offline.png")
    sends = [text for text in sent if '"message.send"' in str(text)]
    assert sends and all(
        item["client_msg_id"] in str(text) and f'"attachments":[{ids[0]}]' in str(text) for text in sends
    )
    wait_until(lambda: Message.objects.filter(room=room).count() == 1, what="stored once")
    assert str(Message.objects.get(room=room).client_msg_id) == item["client_msg_id"]

    b = browsers.open_room_as(bob, room)
    expect(last_message(b).locator(".attachment-image img")).to_have_attribute("alt", "offline.png")


def test_the_drawer_keeps_a_saved_messages_attachments_after_leaving_the_room(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    a = browsers.open_room_as(alice, room)
    attach_with_button(
        a, [payload("poster.png", "image/png", png(400, 600)), payload("agenda.pdf", "application/pdf", PDF)]
    )
    expect(a.locator("#attach-tray .attach-item[data-state=done]")).to_have_count(2)
    a.press("#composer-input", "Enter")  # files only
    expect(last_message(a).locator(".attachment-file")).to_have_count(1)

    b = browsers.open_room_as(bob, room)
    save = last_message(b).locator("[data-role=save]")
    save.click()
    expect(save).to_have_text("Saved")
    participant_remove(actor_id=alice.pk, room_id=room.pk, user_id=bob.pk)

    b.goto("/drawer/")
    entry = b.locator(".drawer-entry").first
    expect(entry.locator(".drawer-body")).to_be_hidden()  # no text, only files
    preview = entry.locator(".attachment-image img")
    expect(preview).to_have_attribute("alt", "poster.png")
    assert (preview.get_attribute("width"), preview.get_attribute("height")) == ("160", "240")
    image_loaded(preview)  # held in his drawer: still his to see, out of the room as he is
    card = entry.locator(".attachment-file")
    expect(card.locator(".attachment-file-name")).to_have_text("agenda.pdf")
    assert b.request.get(card.get_attribute("href")).body() == PDF
    entry.locator(".attachment-image").click()
    lightbox = b.locator("#lightbox")
    expect(lightbox).to_be_visible()
    image_loaded(lightbox.locator("[data-role=image]"), 400)
    expect(lightbox.locator("[data-role=count]")).to_have_text("")
    expect(lightbox.locator("[data-role=next]")).to_be_hidden()
    screenshot(b, "attachments-drawer-lightbox")
    b.keyboard.press("Escape")
    expect(lightbox).to_be_hidden()

    # Removed from the drawer: the files are no longer his.
    url = card.get_attribute("href")
    entry.locator("[data-action=remove]").click()
    expect(b.locator(".drawer-entry")).to_have_count(0)
    assert b.request.get(url).status == 404


class NewsLost:
    """Alice's chat sockets through a relay that, while ``dropping``, loses every message.accepted
    and message.new on the way to the page (the message is stored, the page never hears it); it
    notes the page's message.send frames and the refusals the page gets. With ``refusing``, a
    re-send is answered ``invalid`` over its files in the server's stead (as a server from before
    re-sends of stored keys were let through does, or one whose check ran as persist stored it)."""

    def __init__(self, context) -> None:
        self.dropping = False
        self.refusing = False
        self.sends: list[dict] = []
        self.refusals: list[dict] = []
        context.route_web_socket(re.compile(r"/ws/chat/"), self.route)

    def route(self, ws) -> None:
        server = ws.connect_to_server()

        def to_server(message) -> None:
            frame = json.loads(message) if isinstance(message, str) else {}
            if frame.get("type") == "message.send":
                self.sends.append(frame)
                if self.refusing and len(self.sends) > 1:
                    refusal = {"type": "error", "req": frame.get("req"), "client_msg_id": frame["client_msg_id"],
                               "code": "invalid", "detail": f"Attachment {frame['attachments'][0]} is attached to another message already."}  # fmt: skip
                    self.refusals.append(refusal)
                    ws.send(json.dumps(refusal))
                    return
            server.send(message)

        def to_page(message) -> None:
            frame = json.loads(message) if isinstance(message, str) else {}
            if frame.get("type") == "error" and frame.get("client_msg_id"):
                self.refusals.append(frame)  # (none expected from the server)
            if self.dropping and frame.get("type") in ("message.accepted", "message.new"):
                return
            ws.send(message)

        ws.on_message(to_server)
        server.on_message(to_page)


def wait_with(page, condition, *, what: str, timeout: float = 20.0):
    """Like ``wait_until``, polling while Playwright runs (the relay's handlers run in this thread)."""
    for _ in range(int(timeout * 10)):
        value = condition()
        if value:
            return value
        page.wait_for_timeout(100)
    raise AssertionError(f"{what}: not met after {timeout} s")


def send_with_its_news_lost(page, lost: NewsLost, room, body: str) -> Message:
    """Send ``body`` with an image from ``page`` while its news is lost; the stored message."""
    attach_with_button(page, [payload("lost.png", "image/png", png(60, 60))])
    expect(page.locator("#attach-tray .attach-item[data-state=done]")).to_have_count(1)
    lost.dropping = True
    send(page, body)
    wait_with(page, lambda: Message.objects.filter(room=room, body=body).exists(), what="stored")
    expect(pending(page)).to_have_attribute("data-state", "pending")
    return Message.objects.get(room=room, body=body)


def test_a_stored_message_with_files_whose_news_was_lost_settles_after_its_resend(browsers, alice_and_bob):
    """The page never hears its message stored; 20 s later it sends it again, the same client_msg_id
    with the same files, which the server takes (they are attached to that very message) and
    answers with the stored message.new: the page shows it sent, stored once."""
    alice, _, room = alice_and_bob
    a = browsers.open_as(alice)
    lost = NewsLost(a.context)
    a.goto(room_url(room))
    stored = send_with_its_news_lost(a, lost, room, "stored, but nobody told the page")
    lost.dropping = False  # the re-send's answer gets through

    expect(pending(a)).to_have_count(0, timeout=40_000)
    expect(message_bodies(a)).to_have_text(["stored, but nobody told the page"])
    expect(last_message(a).locator(".attachment-image img")).to_have_attribute("alt", "lost.png")
    assert lost.refusals == []
    # Sent twice, as one message: its key and its files both times.
    assert [(f["client_msg_id"], f["attachments"]) for f in lost.sends] == [
        (str(stored.client_msg_id), list(Attachment.objects.filter(message_id=stored.pk).values_list("pk", flat=True)))
    ] * 2
    assert Message.objects.filter(room=room).count() == 1
    assert outbox(a, alice) == {}


def test_a_stored_message_settles_through_a_sync_when_its_resend_is_refused_over_its_files(browsers, alice_and_bob):
    """The same lost news, but the re-send is refused ``invalid`` over its files (a server from before
    re-sends of stored keys were let through, or a check that ran as persist stored the message):
    the page asks for a sync from before it, whose message.new settles it, failed or not, rather
    than leaving 'Not sent' beside the stored message."""
    alice, _, room = alice_and_bob
    a = browsers.open_as(alice)
    lost = NewsLost(a.context)
    a.goto(room_url(room))
    stored = send_with_its_news_lost(a, lost, room, "stored, then refused")
    lost.refusing = True
    lost.dropping = False  # what the sync brings gets through

    wait_with(a, lambda: lost.refusals, what="the re-send refused", timeout=40)
    expect(pending(a)).to_have_count(0)
    expect(message_bodies(a)).to_have_text(["stored, then refused"])
    expect(last_message(a).locator(".attachment-image img")).to_have_attribute("alt", "lost.png")
    assert [f["client_msg_id"] for f in lost.sends] == [str(stored.client_msg_id)] * 2
    assert outbox(a, alice) == {}
    assert Message.objects.filter(room=room).count() == 1
