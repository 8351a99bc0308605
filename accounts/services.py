"""Writes about accounts: sign-up, API tokens, web sessions, and account deletion.

Deleting an account works in bulk statements, never row by row, so it costs the same few
queries for an account with ten messages or ten thousand. The messages stay for the other
members with no sender ("deleted user"), or with their bodies erased when the user asks; rooms
the user owned pass to another member or go when nobody else is in them. Accounts with many
messages are deactivated at once and purged in chunks by a Celery task (``account_purge``)
whose progress moderators follow in the admin.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC

from django.conf import settings
from django.contrib.auth import authenticate, get_user_model, password_validation
from django.contrib.sessions.models import Session
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from rest_framework.authtoken.models import Token

from attachments.services import attachments_purge_on_commit, attachments_release
from audit.services import audit_record
from chat_messages.models import Message
from chat_messages.services import messages_detach_sender, quotes_detach_sender
from drawer.services import drawer_snapshots_detach_sender
from rooms.models import Participant
from rooms.services import participants_release_user
from streams.errors import CONFLICT, INVALID, NOT_FOUND, SUSPENDED, ChatError
from streams.pipeline import kafka
from streams.realtime.hub import frame, publish_on_commit, room_group, session_group, token_group, user_group
from streams.realtime.limits import users_online
from streams.realtime.protocol import CLOSE_SUSPENDED, CLOSE_UNAUTHENTICATED, close_control

from . import usernames
from .models import AccountDeletion, Device, UserSession
from .push import DeviceGone, Notification, push_sender

log = logging.getLogger(__name__)

PUSH_BODY_CHARS = 200  # how much of a message a push shows
DEVICES_PER_USER = 20

# The WebSocket close code for "no longer authenticated"; the socket's client logs in again.
CLOSE = close_control(CLOSE_UNAUTHENTICATED)

INLINE_MAX_DEFAULT = 5000
CHUNK_DEFAULT = 2000


# -- sign-up --------------------------------------------------------------------------------------
def user_create(*, username: str, password: str):
    """Create an account; ``invalid`` for a bad username or weak password, ``conflict`` if taken.

    The username rules are accounts/usernames.py's: stored in NFKC, one writing system, and not
    taken in any case, reserved, or mistakable for an existing name ("аlice" beside "alice").
    """
    user_model = get_user_model()
    username = usernames.username_shape_check(username)
    user = user_model(username=username)
    try:
        if not isinstance(password, str):
            raise ValidationError("A password is required.")
        password_validation.validate_password(password, user)
    except ValidationError as exc:
        raise ChatError(INVALID, " ".join(exc.messages)) from None
    username = usernames.username_check(username=username)
    try:
        with transaction.atomic():
            return user_model.objects.create_user(username=username, password=password)
    except IntegrityError:  # a concurrent sign-up took it, or a look-alike, between the check and the insert
        raise ChatError(CONFLICT, usernames.TAKEN) from None


# -- API tokens -----------------------------------------------------------------------------------
def token_issue(*, username: str, password: str) -> Token:
    """The user's API token (created on first use) for valid credentials, else ``invalid``.

    A deactivated account (one being deleted) gets no token.
    """
    user = authenticate(username=username, password=password)
    if user is None:
        raise ChatError(INVALID, "Unable to log in with the given username and password.")
    suspension_check(user=user)
    token, _created = Token.objects.get_or_create(user=user)
    return token


def token_revoke(*, user, actor=None) -> bool:
    """Delete the user's API token and close the sockets opened with it. False if there was none.

    Recorded in the audit log as done by ``actor`` (an admin), or by the user themself.
    """
    with transaction.atomic():
        keys = list(Token.objects.filter(user=user).values_list("key", flat=True))
        Token.objects.filter(key__in=keys).delete()
        if keys:  # the key itself never reaches the log: it was a password
            audit_record(
                action="auth.token_revoked", actor=user if actor is None else actor, target_type="user",
                target_id=user.pk, detail=f"API token of {user.username} revoked; its sockets closed",
            )  # fmt: skip
        publish_on_commit((token_group(key), None, CLOSE) for key in keys)
    return bool(keys)


# -- web sessions ---------------------------------------------------------------------------------
def session_record(*, user, session_key: str) -> None:
    """Remember that ``user`` logged in with this session (called on every web login).

    Also forgets the user's recorded sessions that have ended without a logout (expired or
    cleared), so the table holds about one row per live session.
    """
    live = Session.objects.filter(session_key=OuterRef("session_key"), expire_date__gt=timezone.now())
    UserSession.objects.filter(user=user).exclude(Exists(live)).delete()
    UserSession.objects.update_or_create(session_key=session_key, defaults={"user": user})


def session_end(*, session_key: str) -> None:
    """A web session ended (logout): forget it and close the sockets opened with it."""
    UserSession.objects.filter(session_key=session_key).delete()
    publish_on_commit([(session_group(session_key), None, CLOSE)])


def _sign_out_everywhere(*, user_id: int, close: dict = CLOSE) -> None:
    """Delete the user's token, web sessions and push devices, and close every socket of theirs,
    after commit: a deactivated or deleted account's phone must not keep receiving messages."""
    Token.objects.filter(user_id=user_id).delete()
    Device.objects.filter(user_id=user_id).delete()
    recorded = UserSession.objects.filter(user_id=user_id)
    Session.objects.filter(session_key__in=recorded.values("session_key")).delete()
    recorded.delete()
    publish_on_commit([(user_group(user_id), None, close)])


def account_deactivate(*, user, actor=None) -> None:
    """Stop the account at once: no login, no token, no session, no open socket.

    Recorded in the audit log as done by ``actor`` (None: the system).
    """
    with transaction.atomic():
        was_active = bool(get_user_model().objects.filter(pk=user.pk, is_active=True).update(is_active=False))
        _sign_out_everywhere(user_id=user.pk)
        audit_record(
            action="account.deactivated", actor=actor, target_type="user", target_id=user.pk,
            before={"is_active": was_active}, after={"is_active": False},
            detail=f"{user.username} signed out everywhere: token, sessions and push devices removed, sockets closed",
        )  # fmt: skip
    user.is_active = False


# -- suspension (docs/moderation.md) ------------------------------------------------------------------
def suspension_text(user) -> str:
    """The refusal at every entry: "Your account is suspended until 2026-12-05 08:00 UTC: spam."."""
    until = (
        f"until {user.suspended_until.astimezone(UTC).strftime('%Y-%m-%d %H:%M')} UTC"
        if user.suspended_until is not None
        else "until a moderator lifts it"
    )
    reason = f": {user.suspension_reason}" if user.suspension_reason else "."
    return f"Your account is suspended {until}{reason}"


def suspension_check(*, user) -> None:
    """``suspended`` while a suspension of the user is in force."""
    if user.is_suspended():
        raise ChatError(SUSPENDED, suspension_text(user))


def _suspension_values(user) -> dict:
    return {
        "suspended_at": user.suspended_at,
        "suspended_until": user.suspended_until,
        "reason": user.suspension_reason,
    }


def account_suspend(*, user, until=None, reason: str = "", actor=None) -> None:
    """Suspend the account until ``until`` (None: until lifted): signed out everywhere at once (its
    sockets close with 4403, its sessions, API token and push devices go), and every entry (log-in
    page, token, WebSocket handshake, REST) refuses it until the suspension ends or is lifted.
    Suspending again replaces the end and the reason. Audited."""
    now = timezone.now()
    if until is not None and until <= now:
        raise ChatError(INVALID, "A suspension must end in the future (or be until lifted).")
    with transaction.atomic():
        before = _suspension_values(user) if user.is_suspended(now) else None
        user.suspended_at, user.suspended_until, user.suspension_reason = now, until, reason or ""
        get_user_model().objects.filter(pk=user.pk).update(
            suspended_at=now, suspended_until=until, suspension_reason=reason or ""
        )
        _sign_out_everywhere(user_id=user.pk, close=close_control(CLOSE_SUSPENDED))
        audit_record(
            action="account.suspended", actor=actor, target_type="user", target_id=user.pk,
            before=before, after=_suspension_values(user),
            detail=f"{user.username} suspended: {suspension_text(user)} Signed out everywhere, sockets closed",
        )  # fmt: skip


def account_unsuspend(*, user, actor=None) -> bool:
    """Lift the user's suspension (False if none was in force; an expired one is cleared too). Audited."""
    with transaction.atomic():
        user.refresh_from_db(fields=["suspended_at", "suspended_until", "suspension_reason"])
        if user.suspended_at is None:
            return False
        active = user.is_suspended()
        before = _suspension_values(user)
        get_user_model().objects.filter(pk=user.pk).update(
            suspended_at=None, suspended_until=None, suspension_reason=""
        )
        user.suspended_at = user.suspended_until = None
        user.suspension_reason = ""
        audit_record(
            action="account.unsuspended", actor=actor, target_type="user", target_id=user.pk,
            before=before, after=_suspension_values(user), detail=f"suspension of {user.username} lifted",
        )  # fmt: skip
    return active


# -- log-in ---------------------------------------------------------------------------------------
# One audit entry per client address and minute: a guessing script refused a thousand times a
# minute must not write a thousand rows (the throttle's count says how hard it tried).
LOGIN_THROTTLED_RECORD_EVERY_S = 60


def login_throttled_record(*, username, ip: str | None, via: str) -> bool:
    """Record a password attempt refused by the ``login`` throttle (``via``: "log-in page", "admin",
    "API token"), at most once a minute per address; True when this one was recorded."""
    if not cache.add(f"audit:login-throttled:{ip}", 1, timeout=LOGIN_THROTTLED_RECORD_EVERY_S):
        return False
    username = username[:150] if isinstance(username, str) else ""
    audit_record(
        action="auth.login_throttled", target_type="username" if username else "", target_id=username,
        after={"via": via}, ip=ip,
        detail=f"password attempt ({via}) refused by the login throttle; further refusals from this address "
        f"within {LOGIN_THROTTLED_RECORD_EVERY_S} s are not recorded",
    )  # fmt: skip
    return True


# -- account deletion -----------------------------------------------------------------------------
def account_delete_request(*, user, erase_messages: bool, requested_by: str = "", actor=None) -> AccountDeletion:
    """Delete an account: now when it is small, else deactivate it now and purge it in the background.

    Accounts with more than ``ACCOUNT_PURGE_INLINE_MAX`` messages go to the ``account_purge``
    Celery task so that the request stays short; either way the user is signed out everywhere
    before this returns. Returns the deletion record (status ``done``, or ``pending``). The audit
    log records ``account.deleted`` by ``actor`` (an admin), or by the user themself.
    """
    ongoing = AccountDeletion.objects.filter(
        user_id=user.pk, status__in=[AccountDeletion.Status.PENDING, AccountDeletion.Status.RUNNING]
    ).first()
    if ongoing is not None:
        return ongoing
    total = Message.objects.filter(sender_id=user.pk).count()
    if total <= getattr(settings, "ACCOUNT_PURGE_INLINE_MAX", INLINE_MAX_DEFAULT):
        return account_delete(user=user, erase_messages=erase_messages, requested_by=requested_by, actor=actor)
    with transaction.atomic():
        account_deactivate(user=user, actor=user if actor is None else actor)
        deletion = AccountDeletion.objects.create(
            user_id=user.pk,
            username=user.username,
            erase_messages=erase_messages,
            requested_by=requested_by,
            messages_total=total,
        )
        _audit_deleted(user=user, actor=actor, deletion=deletion, later=True)
        transaction.on_commit(lambda: account_purge_enqueue(deletion=deletion))
    return deletion


def account_purge_enqueue(*, deletion: AccountDeletion) -> None:
    """Hand a pending deletion to a Celery worker (also the admin's "run again")."""
    from .tasks import account_purge  # the task module imports this one

    try:
        account_purge.delay(deletion.pk)
    except Exception:  # the broker may be down: the admin shows it pending, to run again
        log.exception("could not enqueue the purge of account %s (deletion %s)", deletion.user_id, deletion.pk)


def account_delete(*, user, erase_messages: bool, requested_by: str = "", actor=None) -> AccountDeletion:
    """Delete the account now, in one transaction and a fixed number of queries.

    Removes the user's memberships, read positions, drawer, token and sessions; hands rooms
    they owned to another member (oldest admin, else oldest member) and deletes rooms nobody
    else is in; keeps their messages with no sender, bodies erased if ``erase_messages``.
    After commit, every socket of theirs is closed and ``account.erased`` is announced on Kafka
    so that the other consumer groups (search index, backup) follow.
    """
    with transaction.atomic():
        deletion = AccountDeletion.objects.create(
            user_id=user.pk,
            username=user.username,
            erase_messages=erase_messages,
            requested_by=requested_by,
            status=AccountDeletion.Status.RUNNING,
        )
        # Before the user row goes: the entry's actor link is then cleared with it, the username stays.
        _audit_deleted(user=user, actor=actor, deletion=deletion, later=False)
        _account_remove(deletion=deletion)
    return deletion


def _audit_deleted(*, user, actor, deletion: AccountDeletion, later: bool) -> None:
    """``account.deleted`` in the audit log, by ``actor`` or (None) the user themself; ``later``:
    deactivated now, purged by the Celery task."""
    actor = user if actor is None else actor
    by = "themself" if actor.pk == user.pk else actor.username
    erase = deletion.erase_messages
    audit_record(
        action="account.deleted", actor=actor, target_type="user", target_id=user.pk,
        before={"username": user.username, "is_staff": user.is_staff, "is_superuser": user.is_superuser,
                "date_joined": user.date_joined},
        after={"deletion": deletion.pk, "erase_messages": erase, "purged": "in the background" if later else "now"},
        detail=f"{user.username} deleted by {by}, messages {'erased' if erase else 'kept as from deleted user'}"
        + ("; deactivated now, the purge runs in the background" if later else ""),
    )  # fmt: skip


def account_purge(*, deletion_id: int) -> AccountDeletion:
    """Carry out a pending deletion in chunks, recording progress after each (the Celery task).

    Each chunk of messages is its own transaction, so a crash loses nothing: running it again
    picks up where it stopped. The final step is the same as :func:`account_delete`.
    """
    chunk = getattr(settings, "ACCOUNT_PURGE_CHUNK", CHUNK_DEFAULT)
    deletion = AccountDeletion.objects.get(pk=deletion_id)
    if deletion.status == AccountDeletion.Status.DONE:
        return deletion
    AccountDeletion.objects.filter(pk=deletion.pk).update(status=AccountDeletion.Status.RUNNING, error="")
    try:
        while _purge_chunk(deletion_id=deletion.pk, size=chunk):
            pass
        with transaction.atomic():
            deletion = AccountDeletion.objects.select_for_update().get(pk=deletion.pk)
            if deletion.status != AccountDeletion.Status.DONE:  # else a concurrent run finished it
                _account_remove(deletion=deletion)
    except Exception as exc:
        AccountDeletion.objects.filter(pk=deletion.pk).update(
            status=AccountDeletion.Status.FAILED, error=f"{type(exc).__name__}: {exc}"
        )
        raise
    return deletion


def _purge_chunk(*, deletion_id: int, size: int) -> bool:
    """Detach one chunk of the user's messages; False once none is left."""
    with transaction.atomic():
        # Locked: two runs of the same deletion (a re-enqueue) take turns instead of double-counting.
        deletion = AccountDeletion.objects.select_for_update().get(pk=deletion_id)
        ids = list(Message.objects.filter(sender_id=deletion.user_id).order_by().values_list("id", flat=True)[:size])
        if not ids:
            return False
        messages = Message.objects.filter(id__in=ids)
        # Copies in other people's drawers follow, while they still link to these messages.
        drawer_snapshots_detach_sender(messages=messages, erase=deletion.erase_messages)
        count, room_ids = messages_detach_sender(messages=messages, erase=deletion.erase_messages)
        deletion.room_ids = sorted(set(deletion.room_ids) | set(room_ids))
        deletion.messages_done = min(deletion.messages_total, deletion.messages_done + count)
        deletion.save(update_fields=["room_ids", "messages_done"])
    return True


def _account_remove(*, deletion: AccountDeletion) -> None:
    """Everything that is left of the account goes, in the caller's transaction."""
    user_id = deletion.user_id
    _sign_out_everywhere(user_id=user_id)
    messages = Message.objects.filter(sender_id=user_id)
    drawer_snapshots_detach_sender(messages=messages, erase=deletion.erase_messages)
    count, message_rooms = messages_detach_sender(messages=messages, erase=deletion.erase_messages)
    quotes_detach_sender(user_id=user_id, erase=deletion.erase_messages)
    # Uploads never sent go with the account; sent ones stay with their messages unless erased.
    attachments_release(unattached_of=user_id)
    released = participants_release_user(user_id=user_id)
    kept, emptied = released.kept, released.deleted
    # Memberships, read positions, drawer entries and the like go with the user row (bulk cascade).
    get_user_model().objects.filter(pk=user_id).delete()
    # The files of rooms deleted with the account, and those only the user's drawer kept, go after commit.
    attachments_purge_on_commit()

    touched = set(deletion.room_ids) | set(message_rooms) | set(kept)
    deletion.room_ids = sorted(touched | set(emptied))
    deletion.messages_done = deletion.messages_total = max(deletion.messages_total, deletion.messages_done + count)
    deletion.status = AccountDeletion.Status.DONE
    deletion.finished_at = timezone.now()
    deletion.save()

    erase = deletion.erase_messages
    _announce_erased(user_id=user_id, erase=erase, message_rooms=sorted(touched - set(emptied)))
    rooms = deletion.room_ids
    transaction.on_commit(lambda: _announce_on_kafka(user_id=user_id, erase=erase, rooms=rooms))


def _announce_erased(*, user_id: int, erase: bool, message_rooms: list[int]) -> None:
    """Tell the members of rooms holding the user's messages, after commit, that they are now
    from "deleted user" (``account.erased`` {room, user, erase_messages}: blank when erased), so
    open clients show it without reloading the room."""
    publish_on_commit(
        (room_group(room_id), frame("account.erased", room=room_id, user=user_id, erase_messages=erase), None)
        for room_id in message_rooms
    )


def _announce_on_kafka(*, user_id: int, erase: bool, rooms: Iterable[int]) -> None:
    """Announce the bulk change on the messages topic, keyed by room so it keeps the room's order.

    The consumer groups that keep copies (search index, backup) apply it from there; the rooms
    deleted with the account were announced by ``rooms_destroy``.
    """
    events = [(room_id, kafka.envelope("account.erased", room=room_id, user=user_id, erase_messages=erase))
              for room_id in rooms]  # fmt: skip
    if not events:
        events = [("account", kafka.envelope("account.erased", room=None, user=user_id, erase_messages=erase))]
    try:
        for key, value in events:
            kafka.produce(kafka.MESSAGES, key=key, value=value)
    except kafka.KafkaUnavailable:
        # The deletion stands; only the copies kept by other consumer groups miss the news.
        log.exception("account %s was deleted but announcing it on Kafka failed", user_id)


# -- devices and push notifications -----------------------------------------------------------------
def device_register(*, user, platform: str, token: str, name: str = "") -> tuple[Device, bool]:
    """Register the user's device for push (created, or already there); a token moves to the
    user who registers it last (a phone changing hands, or a re-login as someone else)."""
    device, created = Device.objects.update_or_create(
        platform=platform, token=token, defaults={"user": user, "name": name}
    )
    # At most DEVICES_PER_USER: the ones not seen for longest go (each costs a push per message).
    stale = (
        Device.objects.filter(user=user)
        .order_by("-last_seen_at", "-id")
        .values_list("pk", flat=True)[DEVICES_PER_USER:]
    )
    Device.objects.filter(pk__in=list(stale)).delete()
    return device, created


def device_remove(*, user, device_id: int) -> None:
    """Forget one of the user's devices; another user's id answers ``not_found`` like a missing one."""
    if not Device.objects.filter(pk=device_id, user=user).delete()[0]:
        raise ChatError(NOT_FOUND, "No such device.")


def push_recipients(*, messages: list[dict]) -> list[tuple[int, Notification]]:
    """Who gets a push for which of these just-stored messages: (user id, notification).

    ``messages`` are what the persist consumer hands over: {room, seq, sender, sender_name,
    body, mentions, direct, room_name}. A member is notified of a message that mentions them, and
    of every message in a direct room; never of their own, never from a room they muted, and not
    while they have a socket open (their page shows it, or notifies itself). Only users with a
    registered device count. Three queries whatever the number of messages.
    """
    direct_rooms = [m["room"] for m in messages if m["direct"]]
    members: dict[int, set[int]] = {}
    if direct_rooms:
        for room_id, user_id in Participant.objects.filter(room_id__in=direct_rooms).values_list("room_id", "user_id"):
            members.setdefault(room_id, set()).add(user_id)
    wanted: list[tuple[int, dict]] = []
    for message in messages:
        for user_id in set(message["mentions"]) | members.get(message["room"], set()):
            if user_id != message["sender"]:
                wanted.append((user_id, message))
    if not wanted:
        return []
    muted = set(
        Participant.objects.filter(user_id__in={u for u, _ in wanted}, muted=True).values_list("room_id", "user_id")
    )
    with_devices = set(
        Device.objects.filter(user_id__in={u for u, _ in wanted}, user__is_active=True).values_list(
            "user_id", flat=True
        )
    )
    online = users_online(sorted(with_devices))
    out = []
    for user_id, message in wanted:
        if (message["room"], user_id) in muted or user_id not in with_devices or user_id in online:
            continue
        direct = message["direct"]
        title = message["sender_name"] if direct else f"{message['sender_name']} in {message['room_name']}"
        out.append((user_id, Notification(
            title=title, body=message["body"][:PUSH_BODY_CHARS], room=message["room"], seq=message["seq"],
            kind="direct" if direct else "mention")))  # fmt: skip
    return out


def push_send(*, user_id: int, notification: Notification) -> int:
    """Send a notification to each of the user's devices; forget the ones the service says are
    gone. Returns how many devices it went to."""
    sender = push_sender()
    sent = 0
    for device in Device.objects.filter(user_id=user_id):
        try:
            sender.send(device, notification)
            sent += 1
        except DeviceGone:
            log.info("push: device %s of user %s is gone; forgotten", device.pk, user_id)
            device.delete()
    return sent
