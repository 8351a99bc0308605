"""The drawer's REST API: /api/v1/drawer/ as a mobile client uses it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chat_messages.services import message_apply_delete
from drawer.models import SavedMessage
from rooms.models import Participant

pytestmark = pytest.mark.django_db

URL = "/api/v1/drawer/"


def entry_url(entry_id: int) -> str:
    return f"{URL}{entry_id}/"


def test_save_list_edit_and_unsave(api_client, alice, bob, room, make_message):
    client = api_client(alice)
    message = make_message(room, bob, "ship it on monday")

    saved = client.post(URL, {"message": message.pk, "note": "release", "tags": ["Work"]}, format="json")
    assert saved.status_code == 201, saved.json()
    entry = saved.json()
    assert entry["body"] == "ship it on monday"
    assert (entry["sender_name"], entry["room_name"], entry["note"], entry["tags"]) == (
        "bob",
        "team",
        "release",
        ["work"],
    )
    assert entry["jump"] == {"room": room.pk, "seq": message.seq}

    listed = client.get(URL).json()
    assert [e["id"] for e in listed["results"]] == [entry["id"]]
    assert listed["next_cursor"] is None
    assert client.get(entry_url(entry["id"])).json() == entry

    edited = client.patch(entry_url(entry["id"]), {"note": "release day"}, format="json")
    assert edited.status_code == 200
    assert (edited.json()["note"], edited.json()["tags"]) == ("release day", ["work"])

    removed = client.delete(entry_url(entry["id"]))
    assert removed.status_code == 204
    assert client.get(URL).json()["results"] == []
    assert client.get(entry_url(entry["id"])).status_code == 404


def test_save_by_room_and_seq(api_client, alice, room, make_message):
    message = make_message(room, alice, "by seq")

    answer = api_client(alice).post(URL, {"room": room.pk, "seq": message.seq}, format="json")

    assert answer.status_code == 201
    assert answer.json()["message"] == message.pk


def test_saving_twice_answers_200_with_the_same_entry(api_client, alice, room, make_message):
    client = api_client(alice)
    message = make_message(room, alice)
    first = client.post(URL, {"message": message.pk, "note": "first"}, format="json")

    second = client.post(URL, {"room": room.pk, "seq": message.seq, "note": "second"}, format="json")

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["note"] == "first"
    assert len(client.get(URL).json()["results"]) == 1


def test_the_saved_body_survives_edit_and_delete(api_client, alice, bob, room, make_message):
    client = api_client(alice)
    message = make_message(room, bob, "original words")
    entry_id = client.post(URL, {"message": message.pk}, format="json").json()["id"]

    message.body = "edited words"
    message.save(update_fields=["body"])
    after_edit = client.get(entry_url(entry_id)).json()
    assert (after_edit["body"], after_edit["current_body"], after_edit["edited_since_saved"]) == (
        "original words",
        "edited words",
        True,
    )

    message_apply_delete(env={"room": room.pk, "seq": message.seq, "sender": bob.pk})
    after_delete = client.get(entry_url(entry_id)).json()
    assert (after_delete["body"], after_delete["jump"], after_delete["current_body"]) == ("original words", None, None)


def test_filters_and_pages_over_rest(api_client, alice, make_room, make_message):
    client = api_client(alice)
    kitchen, garden = make_room(owner=alice, name="kitchen"), make_room(owner=alice, name="garden")
    made = []
    for i in range(5):
        room = kitchen if i % 2 == 0 else garden
        answer = client.post(
            URL,
            {"message": make_message(room, alice, f"note {i}").pk, "tags": ["even"] if i % 2 == 0 else []},
            format="json",
        )
        made.append(answer.json()["id"])
    day = datetime(2026, 5, 1, 15, 0, tzinfo=UTC)
    SavedMessage.objects.filter(pk=made[0]).update(saved_at=day - timedelta(days=1))
    SavedMessage.objects.filter(pk=made[1]).update(saved_at=day)

    def listed(**params) -> list[int]:
        answer = client.get(URL, params)
        assert answer.status_code == 200, answer.json()
        return [e["id"] for e in answer.json()["results"]]

    assert listed(room=kitchen.pk) == [made[4], made[2], made[0]]
    assert listed(tag="EVEN") == [made[4], made[2], made[0]]
    assert listed(q="note 3") == [made[3]]
    # A date alone as `until` includes that whole day.
    assert listed(until="2026-05-01") == [made[1], made[0]]
    assert listed(since="2026-05-01", until="2026-05-01") == [made[1]]
    assert listed(since="2026-05-01T15:00:00Z", until="2026-05-01T15:00:01Z") == [made[1]]

    seen, cursor = [], None
    while True:
        answer = client.get(URL, {"limit": 2, **({"cursor": cursor} if cursor else {})}).json()
        seen.append([e["id"] for e in answer["results"]])
        cursor = answer["next_cursor"]
        if cursor is None:
            break
    assert seen == [[made[4], made[3]], [made[2], made[1]], [made[0]]]


def test_repeated_tag_parameters_need_every_tag(api_client, alice, room, make_message):
    client = api_client(alice)
    both = client.post(URL, {"message": make_message(room, alice).pk, "tags": ["a", "b"]}, format="json").json()
    client.post(URL, {"message": make_message(room, alice).pk, "tags": ["a"]}, format="json")

    answer = client.get(f"{URL}?tag=a&tag=b").json()

    assert [e["id"] for e in answer["results"]] == [both["id"]]


def test_filter_choices(api_client, alice, room, make_message):
    client = api_client(alice)
    client.post(URL, {"message": make_message(room, alice).pk, "tags": ["x"]}, format="json")

    answer = client.get(f"{URL}filters/").json()

    assert answer == {"rooms": [{"room": room.pk, "room_name": "team", "count": 1}], "tags": [{"tag": "x", "count": 1}]}


@pytest.mark.parametrize(
    ("params", "field"),
    [({"limit": 0}, "limit"), ({"limit": 101}, "limit"), ({"since": "yesterday"}, "since"), ({"room": "x"}, "room")],
)
def test_bad_list_parameters_are_invalid(api_client, alice, params, field):
    answer = api_client(alice).get(URL, params)

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid"
    assert field in answer.json()["error"]["detail"]


def test_a_forged_cursor_is_invalid(api_client, alice):
    answer = api_client(alice).get(URL, {"cursor": "not-a-cursor"})

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    "body",
    [{}, {"room": 1}, {"seq": 1}, {"message": 1, "room": 1, "seq": 1}, {"message": "one"}, {"message": 1, "tags": "x"}],
)
def test_a_save_must_name_one_message(api_client, alice, body):
    answer = api_client(alice).post(URL, body, format="json")

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid"


def test_a_too_long_note_is_too_large(api_client, alice, room, make_message):
    answer = api_client(alice).post(URL, {"message": make_message(room, alice).pk, "note": "n" * 5000}, format="json")

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "too_large"


def test_an_empty_patch_is_invalid(api_client, alice, room, make_message):
    client = api_client(alice)
    entry_id = client.post(URL, {"message": make_message(room, alice).pk}, format="json").json()["id"]

    answer = client.patch(entry_url(entry_id), {}, format="json")

    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "invalid"


def test_saving_from_a_room_i_am_not_in_is_refused_without_the_body(api_client, make_user, alice, room, make_message):
    client = api_client(make_user("mallory"))
    message = make_message(room, alice, "top secret plans")

    by_id = client.post(URL, {"message": message.pk}, format="json")
    by_seq = client.post(URL, {"room": room.pk, "seq": message.seq}, format="json")
    missing = client.post(URL, {"message": message.pk + 10_000}, format="json")
    missing_room = client.post(URL, {"room": room.pk + 10_000, "seq": 1}, format="json")

    for answer in (by_id, by_seq, missing, missing_room):
        assert answer.status_code == 403
        assert answer.json() == by_id.json()
    assert by_id.json()["error"]["code"] == "not_member"
    assert "secret" not in by_id.content.decode()
    assert not SavedMessage.objects.exists()


def test_after_leaving_the_room_the_entry_stays_but_no_longer_links(api_client, alice, bob, room, make_message):
    client = api_client(bob)
    message = make_message(room, alice, "remember this")
    entry_id = client.post(URL, {"message": message.pk}, format="json").json()["id"]

    Participant.objects.filter(room=room, user=bob).delete()

    entry = client.get(entry_url(entry_id)).json()
    assert (entry["body"], entry["room_name"], entry["jump"], entry["current_body"]) == (
        "remember this",
        "team",
        None,
        None,
    )
    again = client.post(URL, {"message": make_message(room, alice, "said later").pk}, format="json")
    assert again.status_code == 403


def test_nobody_can_read_or_change_another_users_entry_by_id(api_client, alice, bob, room, make_message):
    owner = api_client(alice)
    entry = owner.post(
        URL, {"message": make_message(room, alice, "alice only").pk, "note": "mine"}, format="json"
    ).json()
    snoop = api_client(bob)
    missing_id = entry["id"] + 10_000

    answers = {
        "get": snoop.get(entry_url(entry["id"])),
        "patch": snoop.patch(entry_url(entry["id"]), {"note": "pwned", "tags": ["x"]}, format="json"),
        "delete": snoop.delete(entry_url(entry["id"])),
    }
    missing = {
        "get": snoop.get(entry_url(missing_id)),
        "patch": snoop.patch(entry_url(missing_id), {"note": "pwned"}, format="json"),
        "delete": snoop.delete(entry_url(missing_id)),
    }

    for method, answer in answers.items():
        # Exactly the answer for an id that does not exist: nothing tells that the entry is there.
        assert answer.status_code == 404, method
        assert (
            answer.json()
            == missing[method].json()
            == {"error": {"code": "not_found", "detail": "No such entry in your drawer."}}
        )
    assert snoop.get(URL).json()["results"] == []
    assert snoop.get(URL, {"room": room.pk}).json()["results"] == []
    assert owner.get(entry_url(entry["id"])).json() == entry


def test_the_drawer_needs_a_signed_in_user(client):
    answer = client.get(URL)

    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthenticated"


def test_session_auth_works_for_the_web_page(client, alice, room, make_message):
    client.force_login(alice)
    message = make_message(room, alice)

    answer = client.post(URL, {"message": message.pk}, content_type="application/json")

    assert answer.status_code == 201


def test_the_schema_documents_the_drawer(client):
    schema = client.get("/api/schema/", {"format": "json"}).json()

    paths = schema["paths"]
    assert set(paths[URL]) >= {"get", "post"}
    assert set(paths["/api/v1/drawer/{entry_id}/"]) >= {"get", "patch", "delete"}
    assert {"200", "201", "403"} <= set(paths[URL]["post"]["responses"])
