"""The web chat in a real browser: two people chatting, unread badges and the divider, inert bodies."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from rooms.models import Participant
from rooms.services import read_position_advance, room_open_direct
from tests.browser.conftest import room_url, screenshot, send_live, store_history, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def message_bodies(page):
    return page.locator("#messages .message [data-role=body]")


def seqs(page) -> list[int]:
    return [int(s) for s in page.locator("#messages .message").evaluate_all("els => els.map(e => e.dataset.seq)")]


def send(page, body: str) -> None:
    page.fill("#composer-input", body)
    page.press("#composer-input", "Enter")


def test_two_people_chat_live_and_see_typing_links_and_reads(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    a = browsers.open_room_as(alice, room)
    b = browsers.open_room_as(bob, room)

    send(a, "Hello Bob, the plan is at https://example.com/plan.")
    expect(message_bodies(b)).to_have_text(["Hello Bob, the plan is at https://example.com/plan."])
    link = b.locator("#messages .message [data-role=body] a")
    expect(link).to_have_attribute("href", "https://example.com/plan")
    expect(link).to_have_attribute("rel", "noopener noreferrer nofollow")
    expect(link).to_have_attribute("target", "_blank")
    # Bob has the room open at the bottom, so he has read it: Alice's "1" (unread by one) goes.
    expect(a.locator("#messages .message [data-role=unread]")).to_have_text([""])

    b.locator("#composer-input").press_sequentially("On it")
    expect(a.locator("#typing")).to_have_text("bob is typing…")
    b.press("#composer-input", "Enter")
    expect(message_bodies(a)).to_have_text(["Hello Bob, the plan is at https://example.com/plan.", "On it"])
    expect(a.locator("#typing")).to_have_text("")
    send(a, "Great")

    for page in (a, b):
        expect(message_bodies(page)).to_have_text(
            ["Hello Bob, the plan is at https://example.com/plan.", "On it", "Great"]
        )
        assert seqs(page) == [1, 2, 3]
        expect(page.locator("#pending .message")).to_have_count(0)
    # Own messages are drawn on the sender's side; the other's on the other side.
    expect(a.locator("#messages .message.message-mine")).to_have_count(2)
    expect(b.locator("#messages .message.message-mine")).to_have_count(1)


def test_unread_badges_go_live_and_the_room_opens_at_the_new_messages_divider(browsers, make_user, make_room):
    alice, bob, carol = make_user("alice"), make_user("bob"), make_user("carol")
    room = make_room(owner=alice, members=[bob, carol], name="Launch planning")
    design = make_room(owner=carol, members=[bob], name="Design reviews")
    direct, _ = room_open_direct(user=bob, other=alice)
    store_history(design, [carol, bob], ["New icons are up for review", "Looks good to me"])
    store_history(direct, [alice], ["Lunch at noon?"])
    history = [
        "Morning! Where are we with the launch checklist?",
        "Docs are done, the release notes need one more pass.",
        "I will take the release notes.",
        "Staging is green since last night.",
    ]
    store_history(room, [alice, bob], history * 15)  # 60 messages, Bob has read them all
    read_position_advance(user_id=bob.pk, room_id=room.pk, seq=60)

    b = browsers.open_as(bob)
    row = b.locator(f'.room-row[data-room="{room.pk}"]')
    badge = row.locator("[data-role=badge]")
    expect(badge).to_be_hidden()
    expect(b.locator(f'.room-row[data-room="{direct.pk}"] [data-role=badge]')).to_have_text("1")

    for i in range(1, 26):
        send_live(alice, room, f"Update {i}: checklist item {i} is done.")
    expect(badge).to_have_text("25")
    expect(row.locator("[data-role=preview]")).to_have_text("Update 25: checklist item 25 is done.")
    expect(b.locator(".room-row").first).to_have_attribute("data-room", str(room.pk))  # latest activity first
    expect(b).to_have_title("(26) Rooms · Chat")
    screenshot(b, "room-list")

    row.locator("a").click()
    b.wait_for_url(f"**/rooms/{room.pk}/")
    divider = b.locator("#new-messages")
    expect(divider).to_be_in_viewport()
    assert divider.evaluate("d => d.nextElementSibling.dataset.seq") == "61"
    assert divider.evaluate("d => d.previousElementSibling.dataset.seq") == "60"
    # 25 messages do not fit: the newest is not in view yet, so nothing is read, and the newest
    # still counts two members who have not read it (Bob and Carol).
    newest = b.locator('#messages .message[data-seq="85"]')
    expect(newest.locator("[data-role=unread]")).to_have_text("2")
    screenshot(b, "room-page")
    assert Participant.objects.get(room=room, user=bob).last_read_seq == 60

    b.locator("#timeline").evaluate("t => t.scrollTo(0, t.scrollHeight)")
    expect(newest.locator("[data-role=unread]")).to_have_text("1")  # Carol has not read it
    expect(b.locator(f'.room-row[data-room="{room.pk}"] [data-role=badge]')).to_be_hidden()
    wait_until(
        lambda: Participant.objects.get(room=room, user=bob).last_read_seq == 85, what="Bob's read position reached 85"
    )

    # The room opened on a page around the divider; older history pages in at the top.
    assert seqs(b)[0] > 1
    b.locator("#timeline").evaluate("t => t.scrollTo(0, 0)")
    expect(b.locator("#history-start")).to_be_visible()
    assert seqs(b) == list(range(1, 86))


def test_a_body_with_html_is_shown_as_text_and_runs_nothing(browsers, alice_and_bob):
    alice, bob, room = alice_and_bob
    evil = '<img src=x onerror="window.__pwned=1"> and <a href="javascript:alert(1)">click</a> javascript:alert(2)'
    a = browsers.open_as(alice)
    b = browsers.open_as(bob)
    a.goto(room_url(room))

    send(a, evil)
    preview = b.locator(f'.room-row[data-room="{room.pk}"] [data-role=preview]')
    expect(preview).to_have_text(evil)  # live, on Bob's room list
    expect(message_bodies(a)).to_have_text([evil])
    b.goto(f"/rooms/{room.pk}/")  # and from the page's initial data
    expect(message_bodies(b)).to_have_text([evil])

    for page in (a, b):
        assert page.evaluate("window.__pwned") is None
        expect(page.locator("#messages img")).to_have_count(0)
        expect(page.locator("#messages a")).to_have_count(0)  # only http(s) URLs become links


def test_an_owner_invites_and_removes_people_and_a_member_leaves(browsers, server, make_user, alice_and_bob):
    alice, bob, room = alice_and_bob
    carol = make_user("carol")
    a = browsers.open_as(alice)
    b = browsers.open_as(bob)
    c = browsers.open_as(carol)
    a.goto(f"/rooms/{room.pk}/")
    a.click("#members-toggle")

    a.fill("#invite-username", "carol")
    a.click("#invite-form button[type=submit]")
    expect(a.locator("#invite-status")).to_have_text("carol is now a member.")
    expect(a.locator("#member-list [data-role=name]")).to_have_text(["alice (you)", "bob", "carol"])
    expect(c.locator(f'.room-row[data-room="{room.pk}"] [data-role=name]')).to_have_text("general")  # live
    c.goto(f"/rooms/{room.pk}/")
    send(c, "Thanks for having me")
    expect(message_bodies(a)).to_have_text(["Thanks for having me"])

    a.once("dialog", lambda dialog: dialog.accept())
    a.locator(f'#member-list [data-user="{carol.pk}"] [data-role=remove]').click()
    expect(c.locator("#room-notice")).to_have_text("You are no longer a member of this room.")
    expect(c.locator("#composer-input")).to_be_disabled()
    expect(c.locator(f'.room-row[data-room="{room.pk}"]')).to_have_count(0)
    expect(a.locator("#member-list .member")).to_have_count(2)

    # A plain member can neither invite nor remove, and may leave.
    b.goto(f"/rooms/{room.pk}/")
    b.click("#members-toggle")
    expect(b.locator("#member-list .member")).to_have_count(2)
    expect(b.locator("#invite-form")).to_be_hidden()
    expect(b.locator("#member-list [data-role=remove]:visible")).to_have_count(0)
    b.once("dialog", lambda dialog: dialog.accept())
    b.click("#leave-room")
    b.wait_for_url(server.http + "/")
    expect(b.locator(f'.room-row[data-room="{room.pk}"]')).to_have_count(0)
    expect(a.locator("#member-list [data-role=name]")).to_have_text(["alice (you)"])
    expect(a.locator("#room-meta")).to_have_text("1 member")
