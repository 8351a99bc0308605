"""REST authentication (apart from streams/web/api.py: DRF imports it while loading its own views)."""

from __future__ import annotations

from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

TOKEN_MAX_CHARS = 64  # DRF's keys are 40 hexadecimal characters


class ChatTokenAuthentication(TokenAuthentication):
    """DRF's token authentication, refusing a key that cannot be one before asking the database.

    A NUL in ``Authorization: Token ...`` made PostgreSQL's driver raise ValueError (a 500)
    instead of answering 401 "invalid token".
    """

    def authenticate_credentials(self, key):
        if not (len(key) <= TOKEN_MAX_CHARS and key.isascii() and key.isalnum()):
            raise exceptions.AuthenticationFailed("Invalid token.")
        return super().authenticate_credentials(key)
