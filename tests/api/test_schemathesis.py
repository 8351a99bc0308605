"""Property-based run of schemathesis against the live OpenAPI schema of a running server.

For every operation of /api/schema/, schemathesis generates valid and invalid requests and sends
them, with a real token, to the `server` fixture (daphne + persist consumer on the test
database). Every response must be a non-5xx answer with a status and body the schema documents;
an operation that needs credentials must refuse the same request without them (the
``ignored_auth`` check, plus an explicit sweep of every operation below).

Generated ids rarely name anything, so most cases are pointed at real data first: a room with
two members and stored messages, the members' ids, a drawer entry. Deterministic: Hypothesis is
derandomised, and each operation's examples are bounded.
"""

from __future__ import annotations

import itertools
import re
import uuid

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.checks import (
    positive_data_acceptance,
)

from tests.api.support import operations, schema_document

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]

EXAMPLES_PER_OPERATION = 12
_names = itertools.count(1)


class World:
    """The data generated requests are pointed at; rebuilt when a request destroyed part of it."""

    def __init__(self) -> None:
        self.build()

    def build(self) -> None:
        from django.contrib.auth import get_user_model
        from rest_framework.authtoken.models import Token

        from chat_messages.services import messages_store, send_envelope
        from drawer.services import drawer_entry_save
        from rooms.services import room_create_group, room_open_direct

        users = get_user_model().objects
        # No password: hashing one costs a third of a second, and the token is all we use.
        self.owner, self.member, self.other = (
            users.create_user(f"fuzz{next(_names)}", password=None) for _ in range(3)
        )
        self.token = Token.objects.create(user=self.owner).key
        self.room = room_create_group(owner=self.owner, name="fuzzed", member_ids=[self.member.pk])
        self.direct, _ = room_open_direct(user=self.owner, other=self.other)
        sends = [
            send_envelope(room_id=self.room.pk, sender_id=sender.pk, client_msg_id=uuid.uuid4(), body=f"hello fuzz {i}")
            for i, sender in enumerate([self.owner, self.member, self.owner])
        ]
        messages_store(sends=sends)
        self.message_ids = list(self.room.messages.order_by("seq").values_list("pk", flat=True))
        self.entry = drawer_entry_save(user=self.owner, message_id=self.message_ids[1])[0]

    def ensure(self) -> None:
        """Rebuild what an earlier request deleted (the account, the token, the room, a member)."""
        from rest_framework.authtoken.models import Token

        from drawer.models import SavedMessage
        from rooms.models import Participant

        intact = (
            Token.objects.filter(key=self.token, user__is_active=True).exists()
            and Participant.objects.filter(room_id=self.room.pk, user__in=[self.owner, self.member]).count() == 2
            and SavedMessage.objects.filter(pk=self.entry.pk).exists()
        )
        if not intact:
            self.build()

    # Generated integers are mapped onto real ids three times out of four; the rest stay as
    # generated (almost always naming nothing), so both paths are exercised.
    def room_id(self, value: int) -> int:
        return value if value % 4 == 0 else (self.room.pk if value % 4 != 3 else self.direct.pk)

    def user_id(self, value: int) -> int:
        return value if value % 4 == 0 else (self.member.pk, self.other.pk, self.owner.pk)[value % 4 - 1]

    def point(self, case) -> None:
        """Aim the case's integer ids at real data (other values are left to test validation).

        A case made to break the schema is left as generated: re-aiming one of its ids could
        turn the broken value into a valid one, and the server would rightly accept it.
        """
        if case.meta is not None and any(case.meta.is_negative_at(location) for location in ParameterLocation):
            return
        path = case.path_parameters or {}
        body = case.body if isinstance(case.body, dict) else {}
        query = case.query if isinstance(case.query, dict) else {}
        for container, ids in ((path, PATH_IDS), (body, FIELD_IDS), (query, FIELD_IDS)):
            for name, value in list(container.items()):
                if _is_int(value) and name in ids:
                    container[name] = self.aim(ids[name], value)
                elif name == "members" and isinstance(value, list):
                    container[name] = [self.user_id(v) if _is_int(v) else v for v in value]

    def aim(self, kind: str, value: int) -> int:
        """A real id of a ``kind`` (what PATH_IDS and FIELD_IDS name) for the generated ``value``, most of the time."""
        if kind == "room":
            return self.room_id(value)
        if kind == "user":
            return self.user_id(value)
        if value % 4 == 0:
            return value
        if kind == "entry":
            return self.entry.pk
        if kind == "message":
            return self.message_ids[value % 3]
        return value % 3 + 1  # a seq


# The integer ids point() aims, by name: in a path, and in a body or query; and what each names.
PATH_IDS = {"room_id": "room", "user_id": "user", "seq": "seq", "entry_id": "entry"}
FIELD_IDS = {"room": "room", "user": "user", "message": "message", "seq": "seq"}


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# Generated in this process rather than fetched from `server`: operations are parametrised when
# the module is collected, before any fixture runs. A test below checks the server serves it.
SCHEMA_DOCUMENT = schema_document()
schema = schemathesis.openapi.from_dict(SCHEMA_DOCUMENT)


@pytest.fixture
def world(db):
    return World()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case, world, server):
    world.ensure()
    world.point(case)
    # A schema cannot say everything a valid request needs (a password that is not too common,
    # a cursor this server gave, `message` or else `room` and `seq`), so a 400 for a
    # schema-valid request is not a fault; a 5xx or an undocumented answer still is.
    excluded = [positive_data_acceptance]
    case.call_and_validate(
        base_url=server.http, headers={"Authorization": f"Token {world.token}"}, excluded_checks=excluded
    )


def test_the_server_serves_the_schema_the_run_is_generated_from(server):
    served = requests.get(f"{server.http}/api/schema/?format=json", timeout=10)
    assert served.status_code == 200
    assert served.json() == SCHEMA_DOCUMENT


def test_every_operation_that_needs_credentials_refuses_a_request_without_them(server):
    """Walks the schema itself, so an endpoint added later is covered without listing it here."""
    checked = []
    for method, path, operation in operations(SCHEMA_DOCUMENT):
        if {} in operation.get("security", [{}]):
            continue  # anonymous allowed: sign-up, getting a token
        url = server.http + re.sub(r"\{[^}]+\}", "1", path)
        for headers in ({}, {"Authorization": "Token not-a-real-token"}):
            response = requests.request(method, url, json={}, headers=headers, timeout=10)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"]["code"] == "unauthenticated", (method, path, response.text)
        assert "401" in operation["responses"], (method, path)
        checked.append(f"{method.upper()} {path}")
    assert len(checked) >= 25 and "GET /api/v1/search/" in checked
