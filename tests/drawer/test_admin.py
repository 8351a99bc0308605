"""The drawer in the Django admin: moderators browse, search and remove entries."""

from __future__ import annotations

import pytest

from drawer.models import SavedMessage
from drawer.services import drawer_entry_save

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/drawer/savedmessage/"


@pytest.fixture
def entries(make_user, make_room, make_message):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob], name="team")
    first, _ = drawer_entry_save(user=alice, message_id=make_message(room, bob, "invoice 42 is paid").pk, note="money")
    second, _ = drawer_entry_save(user=bob, message_id=make_message(room, alice, "lunch at noon").pk)
    return first, second


def test_changelist_searches_and_filters(admin_client, entries):
    first, second = entries

    everything = admin_client.get(CHANGELIST)
    by_body = admin_client.get(CHANGELIST, {"q": "invoice"})
    by_owner = admin_client.get(CHANGELIST, {"q": "bob"})
    by_year = admin_client.get(CHANGELIST, {"saved_at__year": first.saved_at.year})

    assert everything.status_code == 200
    assert "invoice 42 is paid" in everything.content.decode()
    assert list(by_body.context["cl"].result_list) == [first]
    # "bob" is the second entry's owner and the first one's sender.
    assert set(by_owner.context["cl"].result_list) == {first, second}
    assert set(by_year.context["cl"].result_list) == {first, second}


def test_an_entry_is_shown_read_only(admin_client, entries):
    first, _ = entries

    page = admin_client.get(f"{CHANGELIST}{first.pk}/change/")

    assert page.status_code == 200
    assert "invoice 42 is paid" in page.content.decode()
    assert admin_client.get(f"{CHANGELIST}add/").status_code == 403


def test_removing_entries_from_the_admin(admin_client, entries):
    first, second = entries

    one = admin_client.post(f"{CHANGELIST}{first.pk}/delete/", {"post": "yes"})
    assert one.status_code == 302
    assert not SavedMessage.objects.filter(pk=first.pk).exists()

    bulk = admin_client.post(CHANGELIST, {"action": "delete_selected", "_selected_action": [second.pk], "post": "yes"})
    assert bulk.status_code == 302
    assert not SavedMessage.objects.exists()
