"""Web login and logout hooks: remember each session, and close its sockets at logout."""

from __future__ import annotations

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore
from django.dispatch import receiver

from . import services


def _database_session_key(request) -> str | None:
    session = getattr(request, "session", None) if request is not None else None
    # Only database-backed sessions can be deleted by key when the account goes.
    if isinstance(session, DatabaseSessionStore) and session.session_key:
        return session.session_key
    return None


@receiver(user_logged_in, dispatch_uid="accounts.session_record")
def record_session(sender, request, user, **kwargs):
    key = _database_session_key(request)
    if key:
        services.session_record(user=user, session_key=key)


@receiver(user_logged_out, dispatch_uid="accounts.session_end")
def end_session(sender, request, user, **kwargs):
    # Sent before the session is flushed, so its key still names the sockets opened with it.
    session = getattr(request, "session", None)
    if session is not None and session.session_key:
        services.session_end(session_key=session.session_key)
