"""Username rules: stored normalised, one writing system, no look-alike of another name or a reserved one."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.test import Client

from accounts import usernames
from tests.accounts.conftest import csrf_from

pytestmark = pytest.mark.django_db

PASSWORD = "tulip-orbit-73"
SIGNUP = "/api/v1/accounts/"
ADMIN_USERS = "/admin/accounts/user/"


def sign_up(api_client, username: str):
    return api_client().post(SIGNUP, {"username": username, "password": PASSWORD}, format="json")


def error(response) -> tuple[int, str, str]:
    body = response.json()["error"]
    return response.status_code, body["code"], body["detail"]


# -- names from everywhere keep working -----------------------------------------------------------
@pytest.mark.parametrize(
    "username",
    [
        "김민수",
        "さくら",
        "李雷",
        "josé",
        "Zoë",
        "佐藤さくら",
        "王小明",
        "Дмитрий",
        "Ελένη",
        "محمد",
        "john_doe.1",
        "Tanaka田中",
        "민수kim",
        "ユーザー",
    ],
)
def test_names_in_any_one_writing_system_can_sign_up_and_log_in(api_client, username):
    created = sign_up(api_client, username)
    token = api_client().post("/api/v1/auth/token/", {"username": username, "password": PASSWORD}, format="json")

    assert created.status_code == 201, created.json()
    assert created.json()["username"] == username
    assert token.status_code == 200


def test_similar_but_different_names_of_one_script_are_distinct_people(api_client):
    names = ["김민수", "김민준", "さくら", "さくま", "josé", "jose", "Zoë", "Zoe", "ali", "alison", "allison"]

    answers = [sign_up(api_client, name).status_code for name in names]

    assert answers == [201] * len(names)


def test_the_name_is_stored_in_nfkc(api_client):
    created = sign_up(api_client, "ｊｏｓｅ\u0301")  # full-width letters, e + combining acute

    assert created.status_code == 201
    assert created.json()["username"] == "josé"
    assert get_user_model().objects.filter(username="josé").exists()


# -- look-alikes ----------------------------------------------------------------------------------
def test_a_name_mixing_alphabets_is_invalid_and_says_why(api_client, make_user):
    make_user("alice")

    status, code, detail = error(sign_up(api_client, "\u0430lice"))  # Cyrillic а

    assert (status, code) == (400, "invalid")
    assert "one alphabet" in detail and "Cyrillic and Latin" in detail
    assert get_user_model().objects.count() == 1


@pytest.mark.parametrize("username", ["alice١", "pаypal", "ΑΒCD"])
def test_other_mixes_of_scripts_are_invalid(api_client, username):
    assert error(sign_up(api_client, username))[:2] == (400, "invalid")


@pytest.mark.parametrize(
    ("username", "detail"),
    [
        ("Alice", usernames.TAKEN),
        ("ALICE", usernames.TAKEN),
        ("a1ice", usernames.SIMILAR),  # digit one for l
        ("AIice", usernames.SIMILAR),  # capital I for l
        ("ａｌｉｃｅ", usernames.TAKEN),  # full-width: NFKC makes it alice
    ],
)
def test_a_name_that_looks_like_an_existing_one_is_taken(api_client, make_user, username, detail):
    make_user("alice")

    assert error(sign_up(api_client, username)) == (409, "conflict", detail)
    assert get_user_model().objects.count() == 1


def test_look_alikes_in_other_scripts_are_caught_too(api_client, make_user):
    make_user("rnary")
    make_user("Ελένη")

    assert error(sign_up(api_client, "mary"))[:2] == (409, "conflict")  # rn looks like m
    assert error(sign_up(api_client, "ΕΛΈΝΗ"))[:2] == (409, "conflict")


@pytest.mark.parametrize(
    "username",
    ["admin", "Admin", "ADMIN", "adm1n", "ad_min", "Administrator", "root", "r00t", "moderator", "mod", "support",
     "staff", "system", "security", "help", "info", "deleted", "deleted_user", "Deleted.User", "everyone", "here",
     "channel", "all", "aII", "null", "undefined", "anonymous", "api", "static", "me"],
)  # fmt: skip
def test_reserved_names_and_their_look_alikes_are_taken(api_client, username):
    assert error(sign_up(api_client, username)) == (409, "conflict", usernames.TAKEN)
    assert not get_user_model().objects.exists()


@pytest.mark.parametrize("username", ["ali", "ALI", "Ali", "modern", "helper", "rootbeer", "alligator", "mehmet"])
def test_names_that_merely_contain_or_resemble_a_reserved_word_are_fine(api_client, username):
    assert sign_up(api_client, username).status_code == 201


def test_the_database_refuses_a_look_alike_that_skips_the_check(make_user):
    """Two sign-ups racing past the check: the unique key column keeps only one."""
    make_user("alice")

    with pytest.raises(IntegrityError), transaction.atomic():
        get_user_model().objects.create_user(username="a1ice", password=PASSWORD)


def test_a_rename_moves_the_key(make_user):
    bob = make_user("bob")
    bob.username = "robert"
    bob.save(update_fields=["username"])

    assert get_user_model().objects.get(pk=bob.pk).username_skeleton == usernames.username_key("robert")
    assert make_user("bob").username == "bob"  # the old name is free again


# -- the sign-up page -----------------------------------------------------------------------------
def signup_page(username: str):
    browser = Client(enforce_csrf_checks=True)
    token = csrf_from(browser.get("/signup/"))
    data = {"csrfmiddlewaretoken": token, "username": username, "password1": PASSWORD, "password2": PASSWORD}
    return browser.post("/signup/", data)


def test_the_signup_page_refuses_look_alikes_with_a_message_for_the_user(make_user):
    make_user("alice")

    mixed, similar, reserved = signup_page("\u0430lice"), signup_page("a1ice"), signup_page("Admin")

    assert mixed.status_code == 200 and "Cyrillic and Latin" in mixed.content.decode()
    assert similar.status_code == 200 and "too easy to mistake for an existing one" in similar.content.decode()
    assert reserved.status_code == 200 and "That username is taken." in reserved.content.decode()
    assert get_user_model().objects.count() == 1
    assert signup_page("김민수").status_code == 302


# -- the admin ------------------------------------------------------------------------------------
def test_the_admin_add_form_applies_the_same_rules(admin_client, make_user):
    make_user("alice")

    def add(username: str):
        return admin_client.post(
            f"{ADMIN_USERS}add/",
            {"username": username, "usable_password": "true", "password1": PASSWORD, "password2": PASSWORD},
        )

    mixed, similar, reserved, fine = add("\u0430lice"), add("a1ice"), add("root"), add("さくら")

    assert "Cyrillic and Latin" in mixed.content.decode()
    assert "too easy to mistake" in similar.content.decode()
    assert "That username is taken." in reserved.content.decode()
    assert fine.status_code == 302
    assert sorted(get_user_model().objects.values_list("username", flat=True)) == ["admin", "alice", "さくら"]


def change_form(user, **changes) -> dict:
    data = {
        "username": user.username,
        "first_name": "",
        "last_name": "",
        "email": "",
        "is_active": "on",
        "date_joined_0": user.date_joined.strftime("%Y-%m-%d"),
        "date_joined_1": user.date_joined.strftime("%H:%M:%S"),
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def test_the_admin_change_form_refuses_a_rename_to_a_look_alike(admin_client, make_user):
    make_user("alice")
    bob = make_user("bob")

    refused = admin_client.post(f"{ADMIN_USERS}{bob.pk}/change/", change_form(bob, username="a1ice"))
    renamed = admin_client.post(f"{ADMIN_USERS}{bob.pk}/change/", change_form(bob, username="Bobby"))

    assert refused.status_code == 200 and "too easy to mistake" in refused.content.decode()
    assert renamed.status_code == 302
    assert get_user_model().objects.get(pk=bob.pk).username == "Bobby"


def test_an_old_look_alike_can_still_be_edited_in_the_admin(admin_client, make_user):
    """Accepted before the rules (it holds no key): deactivating it must not ask for a rename."""
    make_user("alice")
    impostor = make_user("ali")
    get_user_model().objects.filter(pk=impostor.pk).update(username="\u0430lice", username_skeleton=None)
    impostor.refresh_from_db()

    response = admin_client.post(f"{ADMIN_USERS}{impostor.pk}/change/", change_form(impostor, is_active=None))

    assert response.status_code == 302
    assert not get_user_model().objects.get(pk=impostor.pk).is_active


# -- filling the key for existing accounts (the migration) ----------------------------------------
def test_filling_keys_keeps_the_oldest_of_look_alikes_and_never_fails(make_user):
    users = get_user_model().objects
    names = ["alice", "bob", "\u0430lice", "Bob", "a1ice", "김민수"]
    made = [make_user(f"tmp{i}") for i in range(len(names))]
    for user, name in zip(made, names, strict=True):  # as they were before the key existed
        users.filter(pk=user.pk).update(username=name, username_skeleton=None)

    clashes = usernames.skeletons_fill(users.model, batch=2)

    assert clashes == [("\u0430lice", "alice"), ("Bob", "bob"), ("a1ice", "alice")]
    keys = dict(users.values_list("username", "username_skeleton"))
    assert keys["alice"] == "alice" and keys["bob"] == "bob" and keys["김민수"]
    assert keys["\u0430lice"] is None and keys["Bob"] is None and keys["a1ice"] is None
    assert usernames.skeletons_fill(users.model) == clashes  # running it again changes nothing


def test_the_shipped_tables_say_their_unicode_versions():
    versions = usernames.unicode_versions()

    assert versions["confusables"] and versions["scripts"] and versions["normalization"]
    assert usernames.skeleton("\u0430") == "a"  # Cyrillic а's prototype is Latin a
    assert usernames.scripts_of("가") == {"Hang"}
