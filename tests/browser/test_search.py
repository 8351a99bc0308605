"""Message search in the web chat: the sidebar's box, its results, and landing on a hit in its room.

The messages go the real way (Kafka, the persist consumer, then the index consumer), and the tests
wait for the index by asking the search API itself, as the page does, until the hits are there.
`DOCS_SCREENSHOTS=1` refreshes docs/screenshots/search-*.png (docs/search.md shows them).
"""

from __future__ import annotations

import os
import shutil
from urllib.parse import quote

import pytest
from playwright.sync_api import expect

from chat_messages.models import Message
from rooms.models import Room
from rooms.services import participant_remove
from tests.browser.conftest import room_url, screenshot, send_live, wait_until
from tests.conftest import ROOT

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

DOCS_SCREENSHOTS = ROOT / "docs" / "screenshots"
MEETING = "회의는 내일 3시"
FILLERS_AFTER = 55  # more than a page (CHAT_PAGE_SIZE, 50) after the meeting: not on the room's first page;
# with the 5 before it, 60 messages say "진행 상황": three pages of search hits


def by_seq(page, seq: int):
    return page.locator(f'#messages .message[data-seq="{seq}"]')


def hits(page):
    return page.locator("#search-hits .search-hit")


def search(page, q: str) -> None:
    page.fill("#search-input", q)
    page.press("#search-input", "Enter")


def searchable(page, q: str, count: int, *, room=None) -> None:
    """Wait until the search API (as ``page``'s user) finds ``count`` hits for ``q``: the index caught up."""
    url = f"/api/v1/search/?q={quote(q)}&limit=100" + (f"&room={room.pk}" if room else "")
    wait_until(lambda: len(page.request.get(url).json().get("hits", [])) >= count, what=f"{count} hits for {q!r}")


def keep_screenshot(page, name: str) -> None:
    """A screenshot (a test artifact); also into docs/screenshots/ with DOCS_SCREENSHOTS=1.

    Only on request: the pictures show the time of the run, and every test run would otherwise
    leave the docs changed in the working tree.
    """
    path = screenshot(page, name)
    if os.environ.get("DOCS_SCREENSHOTS"):
        DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, DOCS_SCREENSHOTS / path.name)


@pytest.fixture
def planning(indexing, make_user, make_room):  # indexing (tests/conftest.py): the chat-index consumer runs
    """``alice, bob, planning, meeting``: the meeting message buried under a page and more of later ones,
    the last one Bob's "Lunch at noon?"; Random holds another 회의 (with markup in it) and nothing else."""
    alice, bob = make_user("alice"), make_user("bob")
    planning = make_room(owner=alice, members=[bob], name="Planning")
    random = make_room(owner=alice, members=[bob], name="Random")
    for i in range(1, 6):
        send_live(alice if i % 2 else bob, planning, f"진행 상황 {i}번 공유합니다")
    send_live(bob, planning, MEETING)
    for i in range(6, 6 + FILLERS_AFTER):
        send_live(alice if i % 2 else bob, planning, f"진행 상황 {i}번 공유합니다")
    send_live(bob, planning, "Lunch at noon?")
    send_live(alice, random, '회의록은 <img src=x onerror="window.pwned=1"> 공유 드라이브에')
    # One room's messages are stored in the order sent: the last one there, all are.
    wait_until(lambda: Message.objects.filter(room=planning, body="Lunch at noon?").exists(), what="Planning stored")
    wait_until(lambda: Message.objects.filter(room=random, body__startswith="회의록").exists(), what="Random stored")
    meeting = Message.objects.get(room=planning, body=MEETING)
    return alice, bob, planning, random, meeting


def test_a_search_from_the_room_list_lands_on_the_message_in_its_room(browsers, planning):
    alice, bob, planning, random, meeting = planning
    newest = Room.objects.get(pk=planning.pk).last_seq
    a = browsers.open_as(alice)
    searchable(a, "회의", 2)

    search(a, "회의")
    expect(hits(a)).to_have_count(2)
    expect(a.locator("#search-status")).to_have_text("2 results for “회의”")
    expect(a.locator("#room-list")).to_be_hidden()  # the results take its place
    hit = hits(a).filter(has_text="내일 3시")
    expect(hit.locator(".search-hit-room")).to_have_text("Planning")
    expect(hit.locator(".search-hit-sender")).to_have_text("bob")
    expect(hit.locator(".search-hit-time")).not_to_be_empty()
    expect(hit.locator(".search-hit-snippet")).to_have_text(MEETING)
    expect(hit.locator("mark")).to_have_text(["회의"])
    # Markup in a message is text in its snippet, never an element.
    other = hits(a).filter(has_text="회의록은")
    expect(other.locator(".search-hit-room")).to_have_text("Random")
    expect(other.locator(".search-hit-snippet")).to_contain_text('<img src=x onerror="window.pwned=1">')
    expect(a.locator("#search-hits img")).to_have_count(0)
    keep_screenshot(a, "search-results")

    hit.locator("a").click()
    a.wait_for_url(f"**/rooms/{planning.pk}/?at={meeting.seq}")
    landed = by_seq(a, meeting.seq)
    expect(landed).to_contain_class("is-focused")
    expect(landed.locator("[data-role=body]")).to_have_text(MEETING)
    expect(landed).to_be_in_viewport()
    # The first sync brings every later message (Alice sent half of them); none scrolls it away.
    expect(by_seq(a, newest)).to_have_count(1)
    expect(landed).to_be_in_viewport()
    expect(a.locator("#jump-latest")).to_be_visible()
    keep_screenshot(a, "search-landed")
    assert a.evaluate("window.pwned") is None

    # Older messages above it, newer below, all in order; then the newest, where live ones arrive.
    seqs = a.locator("#messages .message").evaluate_all("els => els.map(e => Number(e.dataset.seq))")
    assert seqs == sorted(seqs) and seqs[-1] == newest
    a.locator("#timeline").evaluate("t => { t.scrollTop = 0; }")
    expect(a.locator("#history-start")).to_be_visible()
    expect(by_seq(a, 1)).to_have_count(1)
    a.click("#jump-latest")
    expect(by_seq(a, newest)).to_be_in_viewport()
    expect(a.locator("#jump-latest")).to_be_hidden()
    send_live(bob, planning, "회의실은 3층이에요")
    expect(by_seq(a, newest + 1).locator("[data-role=body]")).to_have_text("회의실은 3층이에요")
    expect(by_seq(a, newest + 1)).to_be_in_viewport()


def test_a_search_in_a_room_is_of_that_room_pages_on_and_jumps_in_place(browsers, planning):
    alice, bob, planning, random, meeting = planning
    b = browsers.open_room_as(bob, planning)
    searchable(b, "회의", 2)
    searchable(b, "lunch", 1)

    # On a room page the search is of that room unless "All rooms" is chosen.
    expect(b.locator("input[name=search-scope][value=room]")).to_be_checked()
    search(b, "회의")
    expect(hits(b)).to_have_count(1)
    expect(hits(b).locator(".search-hit-room")).to_have_text("Planning")
    b.check("input[name=search-scope][value=all]")
    expect(hits(b)).to_have_count(2)
    b.check("input[name=search-scope][value=room]")
    expect(hits(b)).to_have_count(1)

    # More than a page of hits: "More results" follows the cursor.
    search(b, "진행 상황")
    expect(hits(b)).to_have_count(20)
    expect(b.locator("#search-status")).to_have_text("20 results for “진행 상황”, more available")
    for shown in (40, 60):
        b.click("#search-more")
        expect(hits(b)).to_have_count(shown)
    expect(b.locator("#search-more")).to_be_hidden()
    expect(b.locator("#search-status")).to_have_text(f"{5 + FILLERS_AFTER} results for “진행 상황”")

    # A hit on the page already: the page stays, the timeline goes to it.
    b.evaluate("window.stayed = true")
    search(b, "lunch")
    expect(hits(b)).to_have_count(1)
    expect(hits(b).locator("mark")).to_have_text(["Lunch"])
    lunch = Message.objects.get(room=planning, body="Lunch at noon?")
    b.locator("#timeline").evaluate("t => { t.scrollTop = 0; }")
    hits(b).locator("a").click()
    expect(by_seq(b, lunch.seq)).to_contain_class("is-focused")
    expect(by_seq(b, lunch.seq)).to_be_in_viewport()
    assert b.evaluate("window.stayed") is True
    assert b.url.endswith(room_url(planning))

    # Typing searches too (debounced); nothing found says so; Escape gives the room list back.
    b.fill("#search-input", "")
    b.locator("#search-input").press_sequentially("없는말")
    expect(b.locator("#search-status")).to_have_text("No messages match “없는말”")
    expect(hits(b)).to_have_count(0)
    b.press("#search-input", "Escape")
    expect(b.locator("#search-results")).to_be_hidden()
    expect(b.locator("#room-list")).to_be_visible()
    expect(b.locator("#search-input")).to_have_value("")

    # Removed from the room, Bob's search of it is refused: the server's words show.
    participant_remove(actor_id=alice.pk, room_id=planning.pk, user_id=bob.pk)
    expect(b.locator("#room-notice")).to_be_visible()
    search(b, "회의")
    expect(b.locator("#search-error")).to_be_visible()
    expect(b.locator("#search-error")).to_have_attribute("data-code", "not_member")
    expect(b.locator("#search-error")).to_contain_text("Search failed:")
    expect(b.locator("#search-status")).to_have_text("Search failed")


def test_on_a_phone_the_rooms_search_takes_the_conversations_place_until_a_hit_or_escape(browsers, planning):
    alice, bob, planning, random, meeting = planning
    b = browsers.open_as(bob, width=390, height=760)
    b.goto(room_url(planning))
    searchable(b, "회의", 2)
    expect(b.locator(".sidebar")).to_be_hidden()

    b.click("#search-open")
    expect(b.locator("#search-input")).to_be_focused()
    expect(b.locator("#conversation")).to_be_hidden()
    b.keyboard.type("회의")
    b.keyboard.press("Enter")
    expect(hits(b)).to_have_count(1)
    b.keyboard.press("Escape")
    expect(b.locator("#conversation")).to_be_visible()
    expect(b.locator(".sidebar")).to_be_hidden()

    # The arrows go from the box to the results; Enter on one opens the room at it.
    b.click("#search-open")
    b.keyboard.type("회의")
    b.keyboard.press("Enter")
    expect(hits(b)).to_have_count(1)
    b.keyboard.press("ArrowDown")
    expect(hits(b).locator("a")).to_be_focused()
    b.keyboard.press("Enter")
    b.wait_for_url(f"**/rooms/{planning.pk}/?at={meeting.seq}")
    expect(by_seq(b, meeting.seq)).to_be_in_viewport()
    expect(b.locator(".sidebar")).to_be_hidden()
