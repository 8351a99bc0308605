"""Fixtures of the cross-cutting API tests: a user and a REST client that does not raise."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient


@pytest.fixture
def me(make_user):
    return make_user()


@pytest.fixture
def rest(me):
    """A token client of ``me`` that answers a server error as a response, as a real client sees it."""
    client = APIClient(raise_request_exception=False)
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=me)[0].key}")
    return client
