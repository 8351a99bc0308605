"""The web chat's pages without a browser: who may see them, and the data they carry."""

from __future__ import annotations

import json
import re

import pytest
from django.test import Client

from drawer.services import drawer_entry_save
from rooms.services import read_position_advance
from tests.browser.conftest import store_history

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_for():
    def make(user):
        client = Client()
        client.force_login(user)
        return client

    return make


def chat_config(response) -> dict:
    match = re.search(r'<script id="chat-config" type="application/json">(.*?)</script>', response.content.decode())
    assert match, "the page carries no chat-config"
    return json.loads(match.group(1))


def without_csrf(response) -> str:
    # The CSRF token is masked differently on every render.
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "", response.content.decode())


def test_the_chat_pages_need_a_login(client, make_user, make_room):
    room = make_room()
    for path in ("/", f"/rooms/{room.pk}/", "/drawer/"):
        response = client.get(path)
        assert (response.status_code, response["Location"]) == (302, f"/login/?next={path}")


def test_a_room_one_is_not_in_looks_exactly_like_a_room_that_does_not_exist(client_for, make_user, make_room):
    outsider = make_user()
    room = make_room(name="secret plans")
    client = client_for(outsider)

    existing = client.get(f"/rooms/{room.pk}/")
    missing = client.get(f"/rooms/{room.pk + 1000}/")

    assert existing.status_code == missing.status_code == 404
    assert without_csrf(existing) == without_csrf(missing)
    assert b"secret plans" not in existing.content


def test_the_room_list_shows_each_room_with_its_unread_count_and_last_message(client_for, make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob], name="general")
    store_history(room, [alice], ["one", "two", "three"])
    read_position_advance(user_id=bob.pk, room_id=room.pk, seq=1)

    response = client_for(bob).get("/")

    html = response.content.decode()
    assert response.status_code == 200
    assert f'href="/rooms/{room.pk}/"' in html
    assert re.search(r'data-role="badge" aria-label="2 unread">2</span>', html)
    assert '<span class="room-preview" data-role="preview">three</span>' in html
    [listed] = chat_config(response)["rooms"]
    assert (listed["id"], listed["unread"], listed["last_read_seq"]) == (room.pk, 2, 1)


def test_a_room_page_carries_the_page_around_the_first_unread_and_the_members(client_for, make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob], name="general")
    store_history(room, [alice], [f"message {i}" for i in range(1, 121)])
    read_position_advance(user_id=bob.pk, room_id=room.pk, seq=100)

    config = chat_config(client_for(bob).get(f"/rooms/{room.pk}/"))

    state = config["state"]
    seqs = [m["seq"] for m in state["messages"]]
    assert (state["last_read_seq"], state["last_seq"], state["unread"]) == (100, 120, 20)
    assert seqs == list(range(76, 121))  # older context, then every unread message
    assert {(m["user"]["username"], m["role"], m["last_read_seq"]) for m in config["members"]} == {
        (alice.username, "owner", 120),
        (bob.username, "member", 100),
    }
    assert config["me"] == {"id": bob.pk, "username": bob.username}
    assert config["at"] is None


def test_a_room_page_opens_at_a_given_message_when_it_exists(client_for, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    store_history(room, [alice], [f"message {i}" for i in range(1, 201)])
    client = client_for(alice)

    at = chat_config(client.get(f"/rooms/{room.pk}/?at=10"))
    beyond = chat_config(client.get(f"/rooms/{room.pk}/?at=999"))

    assert at["at"] == 10
    assert 10 in [m["seq"] for m in at["state"]["messages"]]
    assert beyond["at"] is None


def test_html_in_a_body_stays_inside_the_page_data(client_for, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    evil = '</script><script>window.__pwned=1</script><img src=x onerror="window.__pwned=1">'
    store_history(room, [alice], [evil])

    response = client_for(alice).get(f"/rooms/{room.pk}/")

    html = response.content.decode()
    assert "<script>window.__pwned" not in html and "<img src=x" not in html
    assert chat_config(response)["state"]["messages"][0]["body"] == evil


def test_the_drawer_page_lists_only_ones_own_entries_with_blank_filters_ignored(client_for, make_user, make_room):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob], name="general")
    first, second = store_history(room, [alice], ["keep this", "and this"])
    drawer_entry_save(user=bob, message_id=first.pk, note="for bob")
    drawer_entry_save(user=alice, message_id=second.pk, note="for alice")

    # The filter form sends its empty fields too.
    response = client_for(bob).get("/drawer/?q=&room=&tag=&since=&until=")

    html = response.content.decode()
    assert response.status_code == 200
    assert "keep this" in html and "for bob" in html
    assert "for alice" not in html


def test_the_drawer_page_explains_a_bad_filter(client_for, make_user):
    response = client_for(make_user()).get("/drawer/?since=yesterday")

    assert response.status_code == 200
    assert "Some filters are not valid: since:" in response.content.decode()


def test_more_drawer_entries_come_as_a_fragment_with_the_next_link(client_for, make_user, make_room):
    alice = make_user()
    room = make_room(owner=alice)
    for message in store_history(room, [alice], [f"fact {i}" for i in range(1, 36)]):
        drawer_entry_save(user=alice, message_id=message.pk)
    client = client_for(alice)

    first = client.get("/drawer/").content.decode()
    more = re.search(r'href="\?([^"]+)" data-action="more"', first).group(1).replace("&amp;", "&")
    rest = client.get(f"/drawer/?{more}&partial=1").content.decode()

    assert first.count('class="drawer-entry"') == 30
    assert rest.count('class="drawer-entry"') == 5
    assert "<html" not in rest and 'data-action="more"' not in rest
    assert "fact 5<" in rest and "fact 1<" in rest


def test_no_page_shows_template_syntax(client, client_for, make_user, make_room):
    """A Django comment spanning lines is not a comment: it was printed under every chat page."""
    alice = make_user()
    room = make_room(owner=alice)
    pages = [client_for(alice).get(path) for path in ("/", f"/rooms/{room.pk}/", "/drawer/")]
    pages += [client.get(path) for path in ("/login/", "/signup/")]
    for page in pages:
        assert page.status_code == 200, page.request["PATH_INFO"]
        # JSON data may hold "}}"; the markup around it may not hold any template syntax.
        text = re.sub(r"<script[^>]*>.*?</script>", "", page.content.decode(), flags=re.S)
        leak = re.search(r".{0,80}(\{#|#\}|\{%|%\}|\{\{|\}\}).{0,80}", text)
        assert leak is None, (page.request["PATH_INFO"], leak and leak.group(0))
