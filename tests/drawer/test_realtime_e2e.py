"""drawer.changed reaches every open session of the drawer's owner, and nobody else's."""

from __future__ import annotations

import json
from contextlib import contextmanager

import pytest
from rest_framework.authtoken.models import Token
from websockets.sync.client import connect

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/drawer/"


@contextmanager
def open_socket(server, user):
    """A signed-in socket, once the server has subscribed it (a sync round trip proves that)."""
    key = Token.objects.get_or_create(user=user)[0].key
    with connect(server.ws, additional_headers={"Authorization": f"Token {key}"}, open_timeout=10) as socket:
        frames_until(socket, "sync.done", send={"type": "sync", "rooms": {}})
        yield socket


def frames_until(socket, wanted: str, send: dict | None = None, timeout: float = 10) -> list[dict]:
    """Frames received up to and including the first of type ``wanted``."""
    if send is not None:
        socket.send(json.dumps(send))
    frames = []
    while True:
        data = json.loads(socket.recv(timeout=timeout))
        frames.append(data)
        if data["type"] == wanted:
            return frames


def test_my_other_sessions_follow_my_drawer(server, make_user, make_room, make_message, api_client):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob], name="team")
    message = make_message(room, bob, "bring the projector")
    client = api_client(alice)
    with open_socket(server, alice) as phone, open_socket(server, alice) as laptop, open_socket(server, bob) as bobs:
        saved = client.post(URL, {"message": message.pk, "note": "meeting"}, format="json").json()
        for socket in (phone, laptop):
            event = frames_until(socket, "drawer.changed")[-1]
            assert event == {"type": "drawer.changed", "action": "saved", "entry": saved}

        # A repeated save changes nothing, so nothing is announced; the edit comes next.
        client.post(URL, {"message": message.pk}, format="json")
        edited = client.patch(f"{URL}{saved['id']}/", {"tags": ["work"]}, format="json").json()
        event = frames_until(phone, "drawer.changed")[-1]
        assert (event["action"], event["entry"]) == ("updated", edited)

        client.delete(f"{URL}{saved['id']}/")
        event = frames_until(phone, "drawer.changed")[-1]
        assert (event["action"], event["id"]) == ("removed", saved["id"])

        # Bob is in the same room, yet hears nothing about Alice's drawer.
        heard = frames_until(bobs, "sync.done", send={"type": "sync", "rooms": {}})
        assert [f for f in heard if f["type"] == "drawer.changed"] == []
