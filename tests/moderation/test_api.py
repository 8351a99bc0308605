"""REST of moderation: reporting a message, and a user's own warnings."""

from __future__ import annotations

import pytest

from moderation.models import Report
from moderation.services import warning_issue

pytestmark = pytest.mark.django_db


def report_url(message) -> str:
    return f"/api/v1/rooms/{message.room_id}/messages/{message.seq}/report/"


def test_a_member_reports_a_message_once_however_often_they_send_it(make_user, make_room, api, post):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    message = post(room, alice, "buy cheap watches")
    first = api(bob).post(report_url(message), {"reason": "spam", "note": " again "}, format="json")
    assert first.status_code == 201, first.content
    body = first.json()
    assert (body["room"], body["seq"], body["reason"], body["note"], body["status"]) == (
        room.pk, message.seq, "spam", "again", "open",
    )  # fmt: skip
    again = api(bob).post(report_url(message), {"reason": "abuse"}, format="json")
    assert again.status_code == 200
    assert again.json()["id"] == body["id"] and again.json()["reason"] == "spam"
    assert Report.objects.filter(message=message).count() == 1


def test_a_non_member_or_an_unknown_message_gets_the_usual_errors(make_user, make_room, api, post):
    alice, bob, stranger = make_user(), make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    message = post(room, alice)
    response = api(stranger).post(report_url(message), {"reason": "spam"}, format="json")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_member"
    response = api(bob).post(f"/api/v1/rooms/{room.pk}/messages/999/report/", {"reason": "spam"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not Report.objects.exists()


def test_a_report_needs_a_known_reason_and_not_ones_own_message(make_user, make_room, api, post):
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    message = post(room, alice)
    response = api(bob).post(report_url(message), {"reason": "boring"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid")
    response = api(alice).post(report_url(message), {"reason": "spam"}, format="json")
    assert (response.status_code, response.json()["error"]["code"]) == (400, "invalid")
    assert api(None).post(report_url(message), {"reason": "spam"}, format="json").status_code == 401


def test_reports_are_throttled_like_other_writes(make_user, make_room, api, post, settings):
    from django.core.cache import cache

    settings.RATE_LIMITS_ENABLED = True
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "DEFAULT_THROTTLE_RATES": {
        **settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"], "write": "2/min"}}  # fmt: skip
    cache.clear()
    alice, bob = make_user(), make_user()
    room = make_room(owner=alice, members=[bob])
    messages = [post(room, alice, f"m{i}") for i in range(3)]
    codes = [api(bob).post(report_url(m), {"reason": "spam"}, format="json").status_code for m in messages]
    assert codes == [201, 201, 429]


def test_a_user_lists_and_dismisses_their_own_warnings(make_user, api, moderator):
    alice, bob = make_user(), make_user()
    warning = warning_issue(user=alice, text="Mind your language.", actor=moderator)
    listed = api(alice).get("/api/v1/account/warnings/").json()["warnings"]
    assert [(w["id"], w["text"], w["dismissed"]) for w in listed] == [(warning.pk, "Mind your language.", False)]
    assert api(bob).get("/api/v1/account/warnings/").json()["warnings"] == []
    url = f"/api/v1/account/warnings/{warning.pk}/"
    assert api(bob).patch(url, {"dismissed": True}, format="json").status_code == 404
    assert api(alice).patch(url, {"dismissed": False}, format="json").status_code == 400
    dismissed = api(alice).patch(url, {"dismissed": True}, format="json")
    assert dismissed.status_code == 200 and dismissed.json()["dismissed"] is True
    assert api(alice).get("/api/v1/account/warnings/").json()["warnings"][0]["dismissed"] is True
