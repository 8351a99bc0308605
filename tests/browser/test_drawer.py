"""The drawer in a real browser: saving from a room, paging, filtering, notes, jumping back, removing."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from drawer.models import SavedMessage
from drawer.services import drawer_entry_save
from tests.browser.conftest import screenshot, store_history

pytestmark = [pytest.mark.browser, pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def filter_by(page, **fields) -> None:
    for name, value in fields.items():
        if name in ("room", "tag"):
            page.select_option(f"#filter-{name}", value)
        else:
            page.fill(f"#filter-{name}", value)
    page.click(".filter-actions button[type=submit]")
    page.wait_for_load_state()


def test_saving_a_message_and_browsing_the_drawer(browsers, make_user, make_room):
    alice, bob = make_user("alice"), make_user("bob")
    launch = make_room(owner=alice, members=[bob], name="Launch planning")
    random = make_room(owner=alice, members=[bob], name="Random")
    facts = store_history(launch, [alice], [f"Checklist item {i} is done." for i in range(1, 36)])
    store_history(random, [alice], ["Heads up: the office closes early on Friday.", "Cake in the kitchen!"])
    for message in facts:  # saved earlier: the drawer has more than one page
        drawer_entry_save(user=bob, message_id=message.pk)
    b = browsers.open_as(bob)

    b.goto(f"/rooms/{random.pk}/")
    message = b.locator("#messages .message").filter(has_text="the office closes early")
    save = message.locator("[data-role=save]")
    save.click()
    expect(save).to_have_text("Saved")

    b.goto("/drawer/")
    entries = b.locator(".drawer-entry")
    expect(entries).to_have_count(30)
    expect(entries.first.locator(".drawer-body")).to_have_text("Heads up: the office closes early on Friday.")
    expect(entries.first.locator(".drawer-room")).to_have_text("Random")
    b.click("[data-action=more]")
    expect(entries).to_have_count(36)
    expect(b.locator("[data-action=more]")).to_have_count(0)

    office = entries.first
    office.locator("[data-action=edit]").click()
    office.locator("textarea[name=note]").fill("Tell the team before Thursday")
    office.locator("input[name=tags]").fill("office, Friday")
    office.locator("button[type=submit]").click()
    expect(office.locator("[data-role=note]")).to_have_text("Tell the team before Thursday")
    expect(office.locator(".tag")).to_have_text(["office", "friday"])
    screenshot(b, "drawer")

    filter_by(b, q="office")
    expect(entries).to_have_count(1)
    filter_by(b, q="", room=str(launch.pk))
    expect(entries).to_have_count(30)
    expect(entries.first.locator(".drawer-room")).to_have_text("Launch planning")
    filter_by(b, room="", tag="friday")
    expect(entries).to_have_count(1)
    expect(entries.first.locator("[data-role=note]")).to_have_text("Tell the team before Thursday")  # kept
    filter_by(b, tag="", q="nothing like this")
    expect(entries).to_have_count(0)
    expect(b.locator(".drawer-empty")).to_have_text("No saved messages match these filters.")

    b.goto("/drawer/?q=office")
    b.click("text=Open in room")
    b.wait_for_url(f"**/rooms/{random.pk}/?at=1")
    expect(b.locator(".message.is-focused [data-role=body]")).to_have_text(
        "Heads up: the office closes early on Friday."
    )
    expect(b.locator(".message.is-focused [data-role=save]")).to_have_text("Saved")

    b.goto("/drawer/?q=office")
    entries.first.locator("[data-action=remove]").click()
    expect(entries).to_have_count(0)
    assert SavedMessage.objects.filter(user=bob).count() == 35
    b.goto("/drawer/?q=office")
    expect(b.locator(".drawer-empty")).to_be_visible()
