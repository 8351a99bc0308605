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
        user, token = super().authenticate_credentials(key)
        # A suspended account (accounts' User.is_suspended, docs/moderation.md): its token is
        # deleted when suspended; this refuses any issued around that moment.
        is_suspended = getattr(user, "is_suspended", None)
        if is_suspended is not None and is_suspended():
            raise exceptions.AuthenticationFailed("Your account is suspended.")
        return user, token
