"""A signed URL names its user: it stops with that user's account, as their sessions and tokens do."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.services import account_deactivate

from .conftest import jpeg, store, upload

pytestmark = pytest.mark.django_db


def test_a_signed_url_stops_working_once_its_user_is_deactivated(api, make_user, make_room):
    # Deactivation (a ban) "stops the account at once": tokens, sessions and sockets go. A link
    # made for that user must stop too, not live on for CHAT_ATTACHMENT_URL_TTL_S.
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    sent = upload(api(alice), room.pk, "p.jpg", jpeg()).json()
    store(room, alice, attachments=[sent["id"]])
    link = api(bob).get(f"/api/v1/attachments/{sent['id']}/").json()["signed_url"]
    anonymous = APIClient()
    assert anonymous.get(link).status_code == 200

    account_deactivate(user=bob)

    assert anonymous.get(link).status_code == 404
    # Alice's own links are not affected.
    assert anonymous.get(api(alice).get(f"/api/v1/attachments/{sent['id']}/").json()["signed_url"]).status_code == 200
