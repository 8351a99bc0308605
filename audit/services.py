"""Writing the audit log: :func:`audit_record`, called by the services and admin actions it records.

A low layer that every app may import (it knows only Django and the user model's setting).
"""

from __future__ import annotations

import ipaddress
import re

from .models import AuditEntry

# "message.deleted_by_moderator": lower-case words, at least two, joined by dots.
ACTION = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+")

_TARGET_ID_MAX = AuditEntry._meta.get_field("target_id").max_length
_USERNAME_MAX = AuditEntry._meta.get_field("actor_username").max_length


def audit_record(
    *,
    action: str,
    actor=None,
    target_type: str = "",
    target_id: str | int | None = None,
    before: dict | None = None,
    after: dict | None = None,
    detail: str = "",
    ip: str | None = None,
) -> AuditEntry:
    """Record one action in the caller's transaction (rolled back with it) and return the entry.

    ``actor`` is the user who acted (None, or an anonymous user, for the system); their username
    is copied so the entry keeps it after the account is deleted. ``before`` and ``after`` are
    JSON-able dicts (dates and UUIDs allowed) of the values the action changed. ``ip`` that is not
    an address (a mangled X-Forwarded-For) is kept in ``detail`` instead of failing the action.
    A malformed ``action`` raises ValueError: it is the name filters and alerts match on.
    """
    if not isinstance(action, str) or not ACTION.fullmatch(action):
        raise ValueError(f"audit action {action!r} is not dotted lower-case words ('room.member_removed')")
    if actor is not None and getattr(actor, "pk", None) is None:
        actor = None  # AnonymousUser: nobody signed in
    address = _address(ip)
    if ip and address is None:
        detail = f"{detail} (client address as given: {str(ip)[:100]!r})".lstrip()
    return AuditEntry.objects.create(
        actor=actor,
        actor_username=actor.get_username()[:_USERNAME_MAX] if actor is not None else "",
        action=action,
        target_type=target_type,
        target_id="" if target_id is None else str(target_id)[:_TARGET_ID_MAX],
        before=before,
        after=after,
        detail=detail,
        ip=address,
    )


def _address(ip: str | None) -> str | None:
    """``ip`` as PostgreSQL's inet stores it, or None when it is not one address."""
    if not ip:
        return None
    try:
        return str(ipaddress.ip_address(str(ip).strip()))
    except ValueError:
        return None


def audit_values(obj, *, fields: list[str] | tuple[str, ...] | None = None, exclude: tuple[str, ...] = ()) -> dict:
    """The model instance's concrete field values as ``before`` / ``after`` take them.

    A foreign key is given by its id (``user_id``). ``fields`` picks some (by name), ``exclude``
    leaves some out: a password hash or a token's key must never reach the log.
    """
    values = {}
    for field in obj._meta.concrete_fields:
        if field.name in exclude or (fields is not None and field.name not in fields):
            continue
        values[field.attname] = field.value_from_object(obj)
    return values
