"""The accounts REST API: sign-up, tokens, the caller's account, finding people."""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token

from accounts.models import AccountDeletion
from chat_messages.models import Message
from rooms.models import Participant

pytestmark = pytest.mark.django_db


def error_code(response) -> str:
    return response.json()["error"]["code"]


# -- sign-up ----------------------------------------------------------------------------------------
def test_signing_up_creates_an_account_that_can_get_a_token(api_client):
    client = api_client()

    created = client.post("/api/v1/accounts/", {"username": "alice", "password": "tulip-orbit-73"}, format="json")
    token = client.post("/api/v1/auth/token/", {"username": "alice", "password": "tulip-orbit-73"}, format="json")

    assert created.status_code == 201
    user = get_user_model().objects.get(username="alice")
    assert created.json() == {"id": user.pk, "username": "alice"}
    assert token.status_code == 200
    assert token.json() == {"token": Token.objects.get(user=user).key}


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"username": "Alice", "password": "tulip-orbit-73"}, 409, "conflict"),  # taken, in any case
        ({"username": "bob", "password": "123"}, 400, "invalid"),  # too short and numeric
        ({"username": "bob", "password": "password"}, 400, "invalid"),  # too common
        ({"username": "bob smith", "password": "tulip-orbit-73"}, 400, "invalid"),
        ({"username": "bob"}, 400, "invalid"),
    ],
)
def test_bad_sign_ups_are_refused_with_their_code(api_client, make_user, body, status, code):
    make_user("alice")

    response = api_client().post("/api/v1/accounts/", body, format="json")

    assert (response.status_code, error_code(response)) == (status, code)
    assert response.json()["error"]["detail"]
    assert get_user_model().objects.count() == 1


def test_sign_ups_are_rate_limited_per_address(settings, api_client):
    settings.RATE_LIMITS_ENABLED = True
    client = api_client()
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}"
    rate = int(settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["signup"].split("/")[0])

    # Refused sign-ups count too: they cost a password check each.
    answers = [client.post("/api/v1/accounts/", {}, format="json", REMOTE_ADDR=address) for _ in range(rate + 1)]

    assert {a.status_code for a in answers[:rate]} == {400}
    assert (answers[-1].status_code, error_code(answers[-1])) == (429, "rate_limited")


# -- tokens -----------------------------------------------------------------------------------------
def test_wrong_credentials_get_no_token(api_client, make_user):
    make_user("alice", password="tulip-orbit-73")
    inactive = make_user("bob", password="tulip-orbit-73")
    inactive.is_active = False
    inactive.save()
    client = api_client()

    wrong = client.post("/api/v1/auth/token/", {"username": "alice", "password": "nope"}, format="json")
    unknown = client.post("/api/v1/auth/token/", {"username": "nobody", "password": "nope"}, format="json")
    stopped = client.post("/api/v1/auth/token/", {"username": "bob", "password": "tulip-orbit-73"}, format="json")

    for response in (wrong, unknown, stopped):
        assert (response.status_code, error_code(response)) == (400, "invalid")
    assert not Token.objects.exists()


def test_a_token_authenticates_rest_calls_until_it_is_revoked(api_client, make_user):
    alice = make_user("alice")
    client = api_client(alice)

    before = client.get("/api/v1/accounts/me/")
    revoked = client.delete("/api/v1/auth/token/")
    after = client.get("/api/v1/accounts/me/")

    assert before.status_code == 200
    assert before.json()["username"] == "alice"
    assert revoked.status_code == 204
    assert (after.status_code, error_code(after)) == (401, "unauthenticated")
    assert not Token.objects.filter(user=alice).exists()


def test_revoking_closes_the_sockets_opened_with_that_token(
    api_client, make_user, listen, django_capture_on_commit_callbacks
):
    from streams.realtime.hub import token_group

    alice = make_user("alice")
    client = api_client(alice)
    key = Token.objects.get(user=alice).key
    listener = listen(token_group(key))

    with django_capture_on_commit_callbacks(execute=True):
        client.delete("/api/v1/auth/token/")

    assert listener.events() == [(token_group(key), None, {"op": "close", "code": 4401})]


def test_anonymous_callers_get_unauthenticated(api_client):
    client = api_client()

    for response in (
        client.get("/api/v1/accounts/me/"),
        client.delete("/api/v1/auth/token/"),
        client.get("/api/v1/users/?q=a"),
    ):
        assert (response.status_code, error_code(response)) == (401, "unauthenticated")


# -- the caller's account ---------------------------------------------------------------------------
def test_me_shows_the_callers_account(api_client, make_user):
    alice = make_user("alice")

    response = api_client(alice).get("/api/v1/accounts/me/")

    assert response.json() == {"id": alice.pk, "username": "alice", "date_joined": response.json()["date_joined"]}


def test_deleting_me_keeps_messages_as_deleted_user_by_default(api_client, make_user, make_room, add_messages):
    alice, bob = make_user("alice"), make_user("bob")
    room = make_room(owner=alice, members=[bob])
    add_messages(room, alice, 2, body="hi")
    client = api_client(alice)

    response = client.delete("/api/v1/accounts/me/")

    assert response.status_code == 204
    assert not get_user_model().objects.filter(pk=alice.pk).exists()
    assert list(Message.objects.filter(room=room).values_list("sender", "body")) == [(None, "hi 1"), (None, "hi 2")]
    assert Participant.objects.get(room=room).user == bob
    assert client.get("/api/v1/accounts/me/").status_code == 401


def test_deleting_me_with_erase_messages_erases_their_bodies(api_client, make_user, make_room, add_messages):
    alice = make_user("alice")
    room = make_room(owner=alice, members=[make_user()])
    add_messages(room, alice, 2, body="hi")

    response = api_client(alice).delete("/api/v1/accounts/me/", {"erase_messages": True}, format="json")

    assert response.status_code == 204
    assert list(Message.objects.filter(room=room).values_list("sender", "body")) == [(None, ""), (None, "")]
    assert AccountDeletion.objects.get(user_id=alice.pk).erase_messages


def test_deleting_a_large_account_answers_at_once_and_leaves_it_unusable(
    settings, api_client, make_user, make_room, add_messages
):
    settings.ACCOUNT_PURGE_INLINE_MAX = 3
    alice = make_user("alice", password="tulip-orbit-73")
    add_messages(make_room(owner=alice, members=[make_user()]), alice, 4)
    client = api_client(alice)

    response = client.delete("/api/v1/accounts/me/", {"erase_messages": False}, format="json")
    login = api_client().post("/api/v1/auth/token/", {"username": "alice", "password": "tulip-orbit-73"}, format="json")

    assert response.status_code == 204
    assert AccountDeletion.objects.get(user_id=alice.pk).status == AccountDeletion.Status.PENDING
    assert client.get("/api/v1/accounts/me/").status_code == 401
    assert (login.status_code, error_code(login)) == (400, "invalid")


def test_deleting_me_with_a_bad_body_is_invalid_and_deletes_nothing(api_client, make_user):
    alice = make_user("alice")

    response = api_client(alice).delete("/api/v1/accounts/me/", {"erase_messages": "perhaps"}, format="json")

    assert (response.status_code, error_code(response)) == (400, "invalid")
    assert get_user_model().objects.filter(pk=alice.pk).exists()


# -- finding people ---------------------------------------------------------------------------------
def test_user_search_finds_active_people_by_part_of_their_name_best_matches_first(api_client, make_user):
    me = make_user("ann")
    for name in ("bob", "annabel", "joanna", "anna", "hannah"):
        make_user(name)
    gone = make_user("annie")
    gone.is_active = False
    gone.save()
    client = api_client(me)

    found = client.get("/api/v1/users/", {"q": "ANN"}).json()
    nothing = client.get("/api/v1/users/", {"q": ""}).json()

    assert [u["username"] for u in found] == ["anna", "annabel", "hannah", "joanna"]
    assert set(found[0]) == {"id", "username"}
    assert nothing == []


def test_user_search_answers_at_most_20(api_client, make_user):
    me = make_user("me")
    get_user_model().objects.bulk_create(get_user_model()(username=f"sam{i:02}") for i in range(30))

    found = api_client(me).get("/api/v1/users/", {"q": "sam"}).json()

    assert [u["username"] for u in found] == [f"sam{i:02}" for i in range(20)]


def test_a_user_search_longer_than_a_username_is_invalid(api_client, make_user):
    response = api_client(make_user()).get("/api/v1/users/", {"q": "a" * 151})

    assert (response.status_code, error_code(response)) == (400, "invalid")
    assert "q" in response.json()["error"]["detail"]


def test_the_schema_documents_the_account_endpoints(api_client, make_user):
    schema = api_client(make_user()).get("/api/schema/", {"format": "json"}).json()

    assert {"/api/v1/accounts/", "/api/v1/accounts/me/", "/api/v1/auth/token/", "/api/v1/users/"} <= set(
        schema["paths"]
    )
    token = schema["paths"]["/api/v1/auth/token/"]
    assert {"200", "400"} <= set(token["post"]["responses"])
    assert "204" in token["delete"]["responses"]
    assert "204" in schema["paths"]["/api/v1/accounts/me/"]["delete"]["responses"]
