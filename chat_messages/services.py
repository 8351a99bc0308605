"""Writes about messages: accepting a send, and storing batches from Kafka."""

from __future__ import annotations

import json
import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import NamedTuple

from celery import current_app as current_celery_app
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from attachments import services as attachment_services
from attachments.selectors import attachment_ids_validate, attachments_sendable
from audit.services import audit_record
from rooms.models import Participant, Room, RoomSanction
from rooms.selectors import participant_get, participant_get_to_send, room_is_read_only, unread_counter
from streams.errors import (
    FORBIDDEN,
    INVALID,
    MUTED,
    NOT_FOUND,
    NOT_MEMBER,
    SUSPENDED,
    TOO_LARGE,
    UNAUTHENTICATED,
    ChatError,
)
from streams.pipeline import kafka
from streams.realtime import hub
from streams.realtime.hub import Event, announced_positions, frame, publish, publish_on_commit, room_group, user_group
from streams.realtime.protocol import DELETED_USER, ROOM_EVENT, ROOM_EVENTS, id_validate, is_json_int

from .models import Message, Reaction
from .selectors import SYSTEM, message_payload

log = logging.getLogger(__name__)

PREVIEW_CHARS = 140
TEXT = Message.Kind.TEXT.value
QUOTE_CHARS = 200  # how much of a quoted message a reply keeps
READ_ONLY_DETAIL = "This conversation is read-only: the other person's account no longer exists."


# -- accepting a send (WebSocket and REST) --------------------------------------------------------
def message_validate(
    *, room, client_msg_id, body, max_bytes: int | None = None, with_attachments: bool = False
) -> tuple[int, uuid.UUID, str]:
    """Check a send's fields; returns (room id, client_msg_id, body) or raises ChatError.

    The one check of a send for every entry (WebSocket, REST, the persistence consumer): what
    passes here is what PostgreSQL will store, so nothing is accepted that storage would refuse.
    A message ``with_attachments`` may have an empty body (absent, or blank: stored as "").
    """
    room_id = id_validate(room, "room")
    if not isinstance(client_msg_id, str | uuid.UUID):
        raise ChatError(INVALID, "`client_msg_id` must be a UUID.")
    try:
        msg_id = uuid.UUID(str(client_msg_id))
    except ValueError:
        raise ChatError(INVALID, "`client_msg_id` must be a UUID.") from None
    if with_attachments and (body is None or (isinstance(body, str) and not body.strip())):
        return room_id, msg_id, ""
    return room_id, msg_id, body_validate(body, max_bytes=max_bytes)


# C0 control characters other than tab, newline and carriage return: PostgreSQL refuses NUL in
# text, and the others only hide or garble a message on the members' screens.
_FORBIDDEN_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def body_validate(body, *, max_bytes: int | None = None) -> str:
    """A message body: non-blank text of at most CHAT_MAX_BODY_BYTES bytes (UTF-8).

    No NUL or other C0 control character except tab, newline and carriage return, and no lone
    surrogate (a JSON "\\ud800" decodes to one, and it cannot be stored as UTF-8).

    A caller validating many bodies passes ``max_bytes`` (the setting read once): reading a
    Django setting costs a few lazy-object lookups, which showed in the persist consumer.
    """
    limit = settings.CHAT_MAX_BODY_BYTES if max_bytes is None else max_bytes
    if not isinstance(body, str) or not body.strip():
        raise ChatError(INVALID, "`body` must be a non-empty string.")
    bad = _FORBIDDEN_CHARS.search(body)
    if bad is not None:
        raise ChatError(
            INVALID, f"`body` may not contain the control character U+{ord(bad.group()):04X} (at {bad.start()})."
        )
    size = len(body.encode())
    if size > limit:
        raise ChatError(TOO_LARGE, f"The body is {size} bytes; the limit is {limit}.")
    return body


def send_envelope(
    *,
    room_id: int,
    sender_id: int,
    client_msg_id: uuid.UUID,
    body: str,
    reply_to: int | None = None,
    attachments: list[int] | None = None,
) -> dict:
    """A ``message.send`` envelope; ``reply_to`` (a seq of the same room) only when it is a reply,
    ``attachments`` (attachment ids) only when it carries any."""
    extra: dict = {} if reply_to is None else {"reply_to": reply_to}
    if attachments:
        extra["attachments"] = list(attachments)
    return kafka.envelope(
        "message.send", room=room_id, sender=sender_id, client_msg_id=str(client_msg_id), body=body, **extra
    )


def reply_to_validate(value) -> int | None:
    """The seq a message replies to: absent (None), or a positive JSON integer."""
    return None if value is None else id_validate(value, "reply_to")


def message_send(
    *, user, room_id: int, client_msg_id, body: str | None = None, reply_to: int | None = None, attachments=None
) -> uuid.UUID:
    """Accept a message for ``room_id`` from ``user`` (sync callers: REST).

    Validates, checks membership (and that each attachment is the sender's, uploaded to this
    room and not sent yet), and returns once Kafka acknowledged it; the persistence consumer then
    stores it (once, whatever the retries) and fans it out.
    """
    # Membership first: a room the user is not in, or an id no room can have, answers not_member
    # whatever the body, so ids cannot be probed.
    participant = participant_get_to_send(room_id=room_id, user_id=user.pk)
    attachment_ids = attachment_ids_validate(attachments)
    room_id, msg_id, body = message_validate(
        room=room_id, client_msg_id=client_msg_id, body=body, with_attachments=bool(attachment_ids)
    )
    reply_to = reply_to_validate(reply_to)
    if room_is_read_only(room=participant.room, user_id=user.pk):
        raise ChatError(FORBIDDEN, READ_ONLY_DETAIL)
    send_attachments_check(user_id=user.pk, room_id=room_id, client_msg_id=msg_id, ids=attachment_ids)
    kafka.produce(kafka.MESSAGES, key=room_id, value=send_envelope(
        room_id=room_id, sender_id=user.pk, client_msg_id=msg_id, body=body, reply_to=reply_to,
        attachments=attachment_ids))  # fmt: skip
    return msg_id


def send_attachments_check(*, user_id: int, room_id: int, client_msg_id: uuid.UUID, ids: list[int]) -> None:
    """Refuse (``invalid``, naming it) an attachment the send may not carry, before Kafka.

    A re-send of a message stored already (the same key: a client that never saw it stored,
    docs/protocol.md) is not checked: persist skips its key and announces the stored message
    again, whatever became of its files since (attached to it, or deleted with it and purged).
    Two queries, only for sends with attachments.
    """
    if not ids:
        return
    if Message.objects.filter(sender_id=user_id, client_msg_id=client_msg_id).exists():
        return
    attachments_sendable(user_id=user_id, room_id=room_id, ids=ids)


def message_edit_request(*, user, room_id: int, seq: int, body: str) -> None:
    """Ask for an edit of the user's own message; applied in the room's order by `persist`.

    Only its sender may edit a message, and only within ``CHAT_EDIT_WINDOW_S`` of sending it
    (0: no limit).
    """
    body = body_validate(body)
    participant_get_to_send(room_id=room_id, user_id=user.pk)
    message = _live_message(room_id=room_id, seq=seq)
    _not_a_system_line(message, "edited")
    if message.sender_id != user.pk:
        raise ChatError(FORBIDDEN, "Only its sender can edit a message.")
    window = settings.CHAT_EDIT_WINDOW_S
    if window and (timezone.now() - message.created_at).total_seconds() > window:
        raise ChatError(FORBIDDEN, f"A message can be edited for {_duration(window)} after it is sent.")
    kafka.produce(kafka.MESSAGES, key=room_id, value=kafka.envelope(
        "message.edit", room=room_id, seq=seq, sender=user.pk, body=body))  # fmt: skip


def message_delete_request(*, user, room_id: int, seq: int) -> None:
    """Ask for the deletion of a message; applied in the room's order by `persist`.

    Its sender may delete it at any time; the room's owner and admins may delete anyone's.
    """
    participant = participant_get(room_id=room_id, user_id=user.pk)
    message = _live_message(room_id=room_id, seq=seq)
    _not_a_system_line(message, "deleted")
    if message.sender_id == user.pk:
        moderator = {}
    elif participant.role in Participant.MANAGERS:
        log.info("room %s %s %s deleted message %s#%s", participant.role, user.pk, room_id, room_id, seq)
        moderator = {"moderator": user.pk}
    else:
        raise ChatError(FORBIDDEN, "Only its sender or the room's owner or admins can delete a message.")
    kafka.produce(kafka.MESSAGES, key=room_id, value=kafka.envelope(
        "message.delete", room=room_id, seq=seq, sender=message.sender_id, **moderator))  # fmt: skip


def message_delete_by_moderator(*, message: Message, moderator) -> None:
    """A site moderator removes a message (from the admin): the same path as its sender deleting it."""
    if message.deleted_at is not None:
        return
    log.info("moderator %s deleted message %s#%s", moderator.pk, message.room_id, message.seq)
    # Recorded first, in a transaction the produce ends: a broker that refuses leaves no entry.
    with transaction.atomic():
        audit_record(
            action="message.deleted_by_moderator", actor=moderator, target_type="message", target_id=message.pk,
            before={"room": message.room_id, "seq": message.seq, "sender": message.sender_id,
                    "sender_username": message.sender.username if message.sender_id else None,
                    "body": message.body, "attachments": message.attachments},
            after={"deleted": True}, detail=f"room {message.room_id}, message #{message.seq}",
        )  # fmt: skip
        kafka.produce(kafka.MESSAGES, key=message.room_id, value=kafka.envelope(
            "message.delete", room=message.room_id, seq=message.seq, sender=message.sender_id,
            moderator=moderator.pk))  # fmt: skip


def reaction_set(*, user, room_id: int, seq, emoji, on: bool) -> bool:
    """Add (``on``) or remove the user's ``emoji`` on a message; True when that changed anything.

    Straight to the database, like a read position, not through Kafka: a reaction is one user's
    idempotent mark beside a message, not part of the room's ordered history. Members hear of a
    change as ``reaction.added`` / ``reaction.removed`` after the commit; doing it twice changes
    nothing and tells nobody.
    """
    participant_get(room_id=room_id, user_id=user.pk)
    seq = id_validate(seq, "seq")
    if emoji not in Reaction.REACTIONS:
        raise ChatError(INVALID, f"`emoji` must be one of {' '.join(Reaction.REACTIONS)}.")
    with transaction.atomic():
        # Locked: a deletion applied meanwhile waits, or this finds the message gone; a reaction
        # never outlives its message.
        message = _live_message(room_id=room_id, seq=seq, lock=True)
        if message.kind == SYSTEM:
            raise ChatError(INVALID, "A system line takes no reactions.")
        if on:
            _, changed = Reaction.objects.get_or_create(message=message, user_id=user.pk, emoji=emoji)
        else:
            changed = Reaction.objects.filter(message=message, user_id=user.pk, emoji=emoji).delete()[0] > 0
        if changed:
            publish_on_commit([(room_group(room_id), frame(
                "reaction.added" if on else "reaction.removed", room=room_id, seq=seq, emoji=emoji,
                user={"id": user.pk, "username": user.username}), None)])  # fmt: skip
    return changed


def _live_message(*, room_id: int, seq: int, lock: bool = False) -> Message:
    messages = Message.objects.select_for_update() if lock else Message.objects
    message = messages.filter(room_id=room_id, seq=seq, deleted_at__isnull=True).first()
    if message is None:
        raise ChatError(NOT_FOUND, "No such message.")
    return message


def _not_a_system_line(message: Message, done: str) -> None:
    # The room's record of who came and went: nobody's words, so nobody's to change (a site
    # moderator can still delete one from the admin).
    if message.kind == SYSTEM:
        raise ChatError(FORBIDDEN, f"A system line cannot be {done}.")


def _duration(seconds: float) -> str:
    if seconds % 3600 == 0:
        hours = int(seconds // 3600)
        return f"{hours} hour{'s' if hours != 1 else ''}"
    if seconds % 60 == 0:
        minutes = int(seconds // 60)
        return f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"{seconds:g} seconds"


# -- storing (the persistence consumer) ------------------------------------------------------------
class StoredMessage(NamedTuple):
    """A message just stored, with the fields its ``message.new`` payload needs.

    Building a model instance per row only to format it cost a fifth of the persist consumer's
    time (Model.__init__ and its signals); message_payload reads the same attribute names.
    """

    pk: int
    room_id: int
    seq: int
    sender_id: int
    client_msg_id: uuid.UUID
    body: str
    created_at: datetime
    reply_to: dict | None = None
    mentions: list[int] = []
    edited_at: None = None
    deleted_at: None = None
    kind: str = TEXT
    system: dict | None = None
    attachments: list[dict] | None = None


@dataclass
class StoreResult:
    stored: list[StoredMessage] = field(default_factory=list)
    duplicates: int = 0
    rejected: list[tuple[dict, str]] = field(default_factory=list)


class _Conflict(Exception):
    """A key of the batch is stored already (a replay, a re-send, a concurrent writer): redo the
    batch, looking the stored keys up."""


def messages_store(*, sends: list[dict]) -> StoreResult:
    """Store a batch of ``message.send`` (and ``room.event``: system lines) envelopes in one
    transaction, exactly once each.

    Gives each new message the next seq of its room (rooms locked, so seqs stay gapless even
    with several consumers during a rebalance), skips keys already stored, moves each sender's
    read position to their message, updates each room's last message, and after commit
    publishes ``message.new`` to each room once.

    Optimistic: the first attempt inserts without looking up which keys are stored already
    (that lookup was an eighth of the cost of a stored message, and nearly every batch holds
    none). A key found stored makes the insert return fewer rows; the transaction is then rolled
    back and the batch redone with the lookup, so a replay or a re-send is still skipped and
    takes no seq.
    """
    for attempt in range(5):
        try:
            with transaction.atomic():
                return _store(sends, look_up_stored=attempt > 0)
        except _Conflict:
            continue
    raise RuntimeError("messages_store: concurrent conflicts did not settle")


def _parse(sends: list[dict]) -> tuple[list[dict], list[tuple[dict, str]]]:
    valid, rejected, seen = [], [], set()
    max_bytes = settings.CHAT_MAX_BODY_BYTES
    for env in sends:
        try:
            item = _parse_line(env) if env.get("kind") == ROOM_EVENT else _parse_send(env, max_bytes)
        except ChatError as exc:
            rejected.append((env, f"{exc.code}: {exc.detail}"))
            continue
        except (KeyError, TypeError, ValueError) as exc:
            rejected.append((env, f"invalid: {exc!r}"))
            continue
        key = (item["sender"], item["client_msg_id"])
        if key in seen:
            continue  # the same send twice in one batch
        seen.add(key)
        valid.append(item)
    return valid, rejected


def _parse_send(env: dict, max_bytes: int) -> dict:
    # Most envelopes carry no attachments: no key, nothing to check.
    attachment_ids = attachment_ids_validate(env["attachments"]) if "attachments" in env else []
    room_id, msg_id, body = message_validate(
        room=env.get("room"), client_msg_id=env.get("client_msg_id"), body=env.get("body"), max_bytes=max_bytes,
        with_attachments=bool(attachment_ids),
    )  # fmt: skip
    sender = id_validate(env.get("sender"), "sender")
    reply_to = reply_to_validate(env.get("reply_to"))
    # "cmid": the canonical text, formatted once (UUID.__str__ showed in persist's profile).
    return {
        "room": room_id, "sender": sender, "client_msg_id": msg_id, "cmid": str(msg_id), "body": body,
        "reply_to": reply_to, "env": env, "kind": TEXT, "system": None, "attachment_ids": attachment_ids,
        "attachments": None,
    }  # fmt: skip


def _parse_line(env: dict) -> dict:
    """A ``room.event`` envelope as a system line to store: no sender, its event_id as its key."""
    event = env.get("event")
    if event not in ROOM_EVENTS:
        raise ChatError(INVALID, f"`event` must be one of {', '.join(ROOM_EVENTS)}.")
    system = {"event": event, "user": _person(env.get("user"), "user"), "by": _person(env.get("by"), "by")}
    if event == "renamed":
        if not isinstance(env.get("name"), str):
            raise ChatError(INVALID, "A rename's `name` must be a string.")
        system["name"] = env["name"]
    room_id, msg_id, body = message_validate(
        room=env.get("room"), client_msg_id=env.get("event_id"), body=system_line_text(system)
    )
    return {
        "room": room_id, "sender": None, "client_msg_id": msg_id, "cmid": str(msg_id), "body": body,
        "reply_to": None, "env": env, "kind": SYSTEM, "system": system, "mentions": [], "attachment_ids": [],
        "attachments": None,
    }  # fmt: skip


def _person(value, name: str) -> dict | None:
    """A person of a system line: null, or {id, username} (a deleted account's id is null)."""
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("username"), str):
        raise ChatError(INVALID, f"`{name}` must be null or {{id, username}}.")
    user_id = value.get("id")
    return {"id": None if user_id is None else id_validate(user_id, f"{name}.id"), "username": value["username"]}


def system_line_text(system: dict) -> str:
    """What a system line says, from its facts: "alice added bob", "bob renamed the room to 'plans'"."""
    event = system["event"]
    who = system["user"]["username"] if system.get("user") else None
    by = system["by"]["username"] if system.get("by") else None
    if event == "renamed":
        return f"{who} renamed the room to '{system['name']}'" if who else f"The room was renamed to '{system['name']}'"
    if event == "invited":
        return f"{by} added {who}" if by else f"{who} was added"
    if event == "removed":
        return f"{by} removed {who}" if by else f"{who} was removed"
    return f"{who} {event}"  # joined, left


def _store(sends: list[dict], *, look_up_stored: bool) -> StoreResult:
    # At most four statements per batch whatever its size: on the small batches of a steady
    # chat, the ORM's query building cost more CPU than PostgreSQL's own work.
    result = StoreResult()
    items, result.rejected = _parse(sends)
    if not items:
        return result
    senders = sorted({i["sender"] for i in items} - {None})  # a system line has none
    with connection.cursor() as cursor:
        stored = _stored_keys(cursor, items) if look_up_stored else {}
        fresh = [i for i in items if (i["sender"], i["cmid"]) not in stored]
        result.duplicates = len(items) - len(fresh)
        if stored:
            replayed = sorted((room_id, seq, sender) for (sender, _), (room_id, seq) in stored.items())
            transaction.on_commit(lambda: _announce_missed(replayed))
        if not fresh:
            return result
        room_ids = sorted({i["room"] for i in fresh})
        # Lock the rooms in id order (no deadlock between consumers); read their last seq, their
        # size, and for direct rooms whether the other person can still read them.
        users = get_user_model()._meta.db_table
        cursor.execute(
            f"SELECT r.id, r.last_seq, r.kind, r.name,"
            f" (SELECT count(*) FROM {Participant._meta.db_table} p WHERE p.room_id = r.id),"
            f" r.kind = %s AND (SELECT count(*) FROM {Participant._meta.db_table} p JOIN {users} u ON u.id = p.user_id"
            "   WHERE p.room_id = r.id AND u.is_active) < 2"
            f" FROM {Room._meta.db_table} r WHERE r.id = ANY(%s) ORDER BY r.id FOR UPDATE OF r",
            [Room.Kind.DIRECT, room_ids],
        )
        last_seq, member_counts, read_only, rooms = {}, {}, set(), {}
        for room_id, seq, kind, name, count, is_read_only in cursor.fetchall():
            last_seq[room_id], member_counts[room_id], rooms[room_id] = seq, count, (kind, name)
            if is_read_only:
                read_only.add(room_id)
        # With each membership, whether a moderator's sanction stops the sender now (docs/moderation.md):
        # a suspension, or a mute in that room (its partial index: sanctions not lifted). The sockets
        # refuse both already; this catches a message accepted just before the sanction.
        cursor.execute(
            f"SELECT p.room_id, p.user_id, u.username, u.is_active, p.role,"
            " u.suspended_at IS NOT NULL AND (u.suspended_until IS NULL OR u.suspended_until > now()),"
            f" EXISTS (SELECT 1 FROM {RoomSanction._meta.db_table} s WHERE s.user_id = p.user_id"
            "   AND s.room_id = p.room_id AND s.kind = %s AND s.lifted_at IS NULL"
            "   AND (s.until IS NULL OR s.until > now()))"
            f" FROM {Participant._meta.db_table} p JOIN {users} u ON u.id = p.user_id"
            " WHERE p.room_id = ANY(%s) AND p.user_id = ANY(%s)",
            [RoomSanction.Kind.MUTE, room_ids, senders],
        )
        names, inactive, roles, suspended, muted = {}, set(), {}, set(), set()
        for room_id, user_id, name, active, role, is_suspended, is_muted in cursor.fetchall():
            names[(room_id, user_id)] = name
            roles[(room_id, user_id)] = role
            if not active:
                inactive.add(user_id)
            if is_suspended:
                suspended.add(user_id)
            if is_muted:
                muted.add((room_id, user_id))
        now = timezone.now()
        rows, refused = [], []
        # Only a batch with attachments pays for them: their rows locked (one query), before any
        # seq is given, so a message refused over one takes no seq.
        wanted = [a for i in fresh for a in i["attachment_ids"]]
        claimed = attachment_services.attachments_claim(wanted=wanted) if wanted else {}
        if not look_up_stored and any(claimed[a].message_id is not None for a in wanted if a in claimed):
            # Taken already: most likely by this very message, stored before (a replay). Redo the
            # batch with the stored keys looked up, so a replay is skipped rather than refused.
            raise _Conflict()
        taken: set[int] = set()
        for item in fresh:
            # Checked again here, authoritatively: the socket's view may be a moment old.
            refusal = None
            if item["sender"] is None:  # a system line: no sender to check or to tell
                if item["room"] not in last_seq:
                    continue  # its room was deleted meanwhile
            elif item["room"] not in last_seq or (item["room"], item["sender"]) not in names:
                refusal = (NOT_MEMBER, "You are no longer a member of this room.")
            elif item["sender"] in inactive:
                refusal = (UNAUTHENTICATED, "Your account is deactivated.")
            elif item["sender"] in suspended:
                refusal = (SUSPENDED, "Your account is suspended.")
            elif (item["room"], item["sender"]) in muted:
                refusal = (MUTED, "A moderator muted you in this room.")
            elif item["room"] in read_only:
                refusal = (FORBIDDEN, READ_ONLY_DETAIL)
            elif item["attachment_ids"]:
                item["attachments"], problem = attachment_services.attachments_take(
                    claimed, ids=item["attachment_ids"], user_id=item["sender"], room_id=item["room"], taken=taken
                )
                if problem is not None and not look_up_stored:
                    # Confirmed with the stored keys looked up first: a replay of a message stored,
                    # deleted and purged since finds its attachments gone, and is a duplicate to
                    # skip, not a send to refuse (its sender saw it stored long ago).
                    raise _Conflict()
                if problem is not None:
                    refusal = (INVALID, problem)
            if refusal is not None:
                refused.append((item, *refusal))
                continue
            last_seq[item["room"]] += 1
            item["seq"] = last_seq[item["room"]]
            rows.append(item)
        if rows:
            _find_mentions(cursor, rows, roles)
            _write(cursor, rows, now, result)
            trace = _trace(rows)
            if trace:  # registered before the publish's: "stored" is logged before "published"
                transaction.on_commit(lambda: _log_stored(trace))
            _announce(result.stored, names=names, member_counts=member_counts, trace=trace)
            _push_on_commit(result.stored, names=names, rooms=rooms)
    if refused:
        _refuse(refused)
    return result


# "@name" where a name starts (not inside a word or an e-mail address); a trailing dot or dash
# ends the sentence, not the name.
_MENTION = re.compile(r"(?<![\w@])@([\w.+-]*\w)")
ROOM_MENTION = "room"


def mention_names(body: str) -> set[str]:
    """The lower-cased names a body mentions with @ (``room`` included)."""
    return {name.lower() for name in _MENTION.findall(body)}


def _find_mentions(cursor, rows: list[dict], roles: dict) -> None:
    """Set each row's ``mentions``: the ids of the other members it names with @.

    ``@room`` names every other member, when its sender owns or administers the room (a plain
    member's "@room" is just text). One query, and only for batches with an @ in them.
    """
    # A system line mentions nobody, whatever the names it quotes ("@alice" may be a room's name).
    wanted = {r["room"]: set() for r in rows if r["sender"] is not None and "@" in r["body"]}
    raw: set[str] = set()
    everyone: set[int] = set()  # rooms where an owner or admin said @room: all their members
    for r in rows:
        r["mentions"] = []
        if r["room"] in wanted and r["sender"] is not None:
            spelled = set(_MENTION.findall(r["body"]))
            raw |= spelled
            r["names"] = {name.lower() for name in spelled}
            wanted[r["room"]] |= r["names"]
            r["everyone"] = ROOM_MENTION in r["names"] and roles.get((r["room"], r["sender"])) in Participant.MANAGERS
            if r["everyone"]:
                everyone.add(r["room"])
    if not any(wanted.values()):
        return
    users = get_user_model()._meta.db_table
    # Names compared lower-cased in Python: PostgreSQL's lower() may fold ASCII only (a C locale),
    # so the names are also looked up as they were written.
    cursor.execute(
        f"SELECT p.room_id, p.user_id, u.username FROM {Participant._meta.db_table} p"
        f" JOIN {users} u ON u.id = p.user_id"
        " WHERE p.room_id = ANY(%s)"
        " AND (p.room_id = ANY(%s) OR lower(u.username) = ANY(%s) OR u.username = ANY(%s))",
        [list(wanted), sorted(everyone), sorted(set().union(*wanted.values())), sorted(raw)],
    )
    members: dict[int, dict[str, int]] = {}
    for room_id, user_id, name in cursor.fetchall():
        members.setdefault(room_id, {})[name.lower()] = user_id
    for r in rows:
        names = r.pop("names", None)
        if not names:
            continue
        in_room = members.get(r["room"], {})
        ids = {in_room[name] for name in names if name in in_room}
        if r.pop("everyone"):
            ids |= set(in_room.values())
        ids.discard(r["sender"])
        r["mentions"] = sorted(ids)


def _stored_keys(cursor, items: list[dict]) -> dict[tuple[int | None, str], tuple[int, int]]:
    """(sender, client_msg_id) -> (room, seq) of the batch's messages that are stored already
    (sender None: a system line, whose key is its client_msg_id alone)."""
    # One index probe per key. "sender_id = ANY(..) AND client_msg_id = ANY(..)" walked every
    # message of the batch's senders: 33 ms instead of 5 for 2,000 keys at 200,000 rows, and
    # growing with the history. System lines probe their own partial unique index.
    table = Message._meta.db_table
    sends = [i for i in items if i["sender"] is not None]
    cursor.execute(
        "SELECT m.sender_id, m.client_msg_id, m.room_id, m.seq"
        " FROM unnest(%s::bigint[], %s::uuid[]) AS k(sender_id, cmid)"
        f" JOIN {table} m ON m.sender_id = k.sender_id AND m.client_msg_id = k.cmid"
        " UNION ALL SELECT NULL, m.client_msg_id, m.room_id, m.seq"
        f" FROM unnest(%s::uuid[]) AS k(cmid) JOIN {table} m ON m.kind = %s AND m.client_msg_id = k.cmid",
        [[i["sender"] for i in sends], [i["cmid"] for i in sends],
         [i["cmid"] for i in items if i["sender"] is None], SYSTEM],
    )  # fmt: skip
    return {(sender, str(msg_id)): (room_id, seq) for sender, msg_id, room_id, seq in cursor.fetchall()}


def _write(cursor, rows: list[dict], now, result: StoreResult) -> None:
    """Insert the messages and move each room's last message, each sender's read position (a
    member has read their own message) and each mentioned member's mentions, in one statement.

    A member's read position and mentions change in one UPDATE: two data-modifying parts of a
    statement that touch the same row keep only one change (a sender mentioned in the same batch
    lost their read position). System lines are read at once by whoever had read everything
    before them: a join does not make a read room unread.
    """
    newest_in_room: dict[int, dict] = {}
    members: dict[tuple[int, int], list] = {}  # (room, user) -> [read seq or None, mentioning seqs]
    for r in rows:  # rows are in seq order per room
        newest_in_room[r["room"]] = r
        if r["sender"] is not None:
            members.setdefault((r["room"], r["sender"]), [None, []])[0] = r["seq"]
        for user_id in r["mentions"]:
            members.setdefault((r["room"], user_id), [None, []])[1].append(r["seq"])
    caught_up = _system_lines_read(rows, members)
    # Only a batch with a reply pays for finding what it quotes (most batches have none), and
    # only one with attachments for their snapshots and links.
    quoting = any(r["reply_to"] is not None for r in rows)
    attaching = any(r["attachments"] for r in rows)
    cursor.execute(
        f"""
        WITH ins AS (
            INSERT INTO {Message._meta.db_table}
                (room_id, seq, sender_id, client_msg_id, body, created_at, mentions, reply_to, kind, system,
                 attachments)
            SELECT v.room_id, v.seq, v.sender_id, v.cmid, v.body, %s, v.mentions::bigint[],
            {_QUOTE if quoting else "NULL::jsonb"}, v.kind, v.system::jsonb, {"v.attachments::jsonb" if attaching else "NULL"}
            FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::uuid[], %s::text[], %s::bigint[], %s::text[],
                        %s::text[], %s::text[]{", %s::text[]" if attaching else ""})
                AS v(room_id, seq, sender_id, cmid, body, reply_seq, mentions, kind, system{", attachments" if attaching else ""})
            {_QUOTED if quoting else ""}
            ON CONFLICT DO NOTHING RETURNING id, room_id, seq, reply_to
        ), rooms AS (
            UPDATE {Room._meta.db_table} AS r
            SET last_seq = v.seq, last_message_at = %s, last_message_preview = v.preview
            FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS v(id, seq, preview) WHERE r.id = v.id
        ), members AS (
            UPDATE {Participant._meta.db_table} AS p SET
                last_read_seq = GREATEST(p.last_read_seq, v.read_seq),
                -- The newest mentions not read yet, at most MENTIONS_KEPT of them.
                mention_seqs = CASE WHEN v.seqs IS NULL THEN p.mention_seqs ELSE ARRAY(
                    SELECT s FROM unnest(p.mention_seqs || v.seqs::bigint[]) AS s
                    WHERE s > p.last_read_seq ORDER BY s DESC LIMIT %s
                ) END
            FROM {_MEMBERS_CAUGHT_UP if caught_up else _MEMBERS}
            WHERE p.room_id = v.room_id AND p.user_id = v.user_id
        )
        SELECT id, room_id, seq, reply_to FROM ins
        """,
        [
            now, *([DELETED_USER, QUOTE_CHARS] if quoting else []),
            [r["room"] for r in rows], [r["seq"] for r in rows], [r["sender"] for r in rows],
            [r["cmid"] for r in rows], [r["body"] for r in rows], [r["reply_to"] for r in rows],
            [_pg_array(r["mentions"]) if r["mentions"] else None for r in rows], [r["kind"] for r in rows],
            [None if r["system"] is None else json.dumps(r["system"]) for r in rows],
            *([[json.dumps(r["attachments"]) if r["attachments"] else None for r in rows]] if attaching else []),
            *([TEXT] if quoting else []),
            now,
            list(newest_in_room), [r["seq"] for r in newest_in_room.values()],
            [_preview(r) for r in newest_in_room.values()],
            Participant.MENTIONS_KEPT,
            [k[0] for k in members], [k[1] for k in members], [m[0] for m in members.values()],
            [_pg_array(m[1]) if m[1] else None for m in members.values()],
            *([[c[0] for c in caught_up], [c[1] for c in caught_up], [c[2] for c in caught_up]] if caught_up else []),
        ],
    )  # fmt: skip
    returned = cursor.fetchall()
    if len(returned) != len(rows):
        raise _Conflict()
    inserted = {(room_id, seq): (pk, reply_to) for pk, room_id, seq, reply_to in returned}
    links = []
    for r in rows:
        pk, reply_to = inserted[(r["room"], r["seq"])]
        if isinstance(reply_to, str):  # psycopg hands jsonb back decoded; a text result would not be
            reply_to = json.loads(reply_to)
        if r["attachments"]:
            links.extend((a["id"], pk) for a in r["attachments"])
        result.stored.append(
            StoredMessage(
                pk, r["room"], r["seq"], r["sender"], r["client_msg_id"], r["body"], now, reply_to, r["mentions"],
                kind=r["kind"], system=r["system"], attachments=r["attachments"],
            )
        )  # fmt: skip
    attachment_services.attachments_link(cursor, links=links)


def _preview(row: dict) -> str:
    """The room list's copy of a message: its text, or the names of the files it carries."""
    return (row["body"] or _files_note(row["attachments"]))[:PREVIEW_CHARS]


def _files_note(attachments: list[dict] | None) -> str:
    """What stands for a message without text: "📎 photo.jpg, notes.pdf"."""
    return "📎 " + ", ".join(a["name"] for a in attachments) if attachments else ""


# A reply's quote: the quoted message as it is now (see Message.reply_to).
_QUOTE = """CASE WHEN v.reply_seq IS NOT NULL THEN
    jsonb_build_object(
        'seq', v.reply_seq,
        'sender', jsonb_build_object('id', q.sender_id, 'username', coalesce(u.username, %s)),
        'body', CASE WHEN q.id IS NOT NULL AND q.deleted_at IS NULL THEN left(q.body, %s) ELSE '' END,
        'deleted', q.id IS NULL OR q.deleted_at IS NOT NULL)
END"""
# The quoted message: an earlier text message of the same room (a seq not stored yet, or a system
# line, quotes nothing). Ids in seq order (the joins may reorder rows): "newest first" by id stays
# by seq.
_QUOTED = f"""
LEFT JOIN {Message._meta.db_table} q
    ON q.room_id = v.room_id AND q.seq = v.reply_seq AND v.reply_seq < v.seq AND q.kind = %s
LEFT JOIN {get_user_model()._meta.db_table} u ON u.id = q.sender_id
ORDER BY v.room_id, v.seq"""

# Each (room, user) whose read position or mentions change: its new read seq (or null) and the
# seqs that mention them (array text, or null).
_MEMBERS = "unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[]) AS v(room_id, user_id, read_seq, seqs)"
# The same, plus the members who had read all of a room when its batch starts with system lines
# (room, from: that position, to: the last of those lines), who read the lines too.
_MEMBERS_CAUGHT_UP = f"""(
    SELECT room_id, user_id, max(read_seq) AS read_seq, max(seqs) AS seqs FROM (
        SELECT * FROM {_MEMBERS.replace(" AS v(", " AS m(")}
        UNION ALL
        SELECT c.room_id, t.user_id, c.to_seq, NULL
        FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS c(room_id, from_seq, to_seq)
        JOIN {Participant._meta.db_table} t ON t.room_id = c.room_id AND t.last_read_seq = c.from_seq
    ) AS u GROUP BY room_id, user_id
) AS v"""


def _system_lines_read(rows: list[dict], members: dict[tuple[int, int], list]) -> list[tuple[int, int, int]]:
    """Who reads the batch's system lines as they are stored; returns the (room, from, to) of
    :data:`_MEMBERS_CAUGHT_UP`.

    A line is read by whoever has read the message right before it: a sender reads the lines
    right after their own message (their read seq in ``members`` moves past them), and a member
    who had read all of the room reads the lines the room's part of the batch starts with.
    Behind an unread message, a line counts as unread like any other.
    """
    lines: dict[int, set[int]] = {}
    first: dict[int, int] = {}
    for r in rows:
        first.setdefault(r["room"], r["seq"])
        if r["sender"] is None:
            lines.setdefault(r["room"], set()).add(r["seq"])
    if not lines:
        return []

    def through(room_id: int, seq: int) -> int:
        in_room = lines.get(room_id, ())
        while seq + 1 in in_room:
            seq += 1
        return seq

    for (room_id, _), entry in members.items():
        if entry[0] is not None:
            entry[0] = through(room_id, entry[0])
    return [
        (room_id, first[room_id] - 1, through(room_id, first[room_id] - 1))
        for room_id, seqs in lines.items()
        if first[room_id] in seqs
    ]


def _pg_array(ids: list[int]) -> str:
    """A list of integers as PostgreSQL's array text: one row's array through unnest of text[]."""
    return "{" + ",".join(map(str, ids)) + "}"


def _trace(rows: list[dict]) -> list[dict] | None:
    """The ids of each message stored, for its DEBUG lines; None (built at no cost) when both
    this module's and the hub's DEBUG lines are off, as they are unless LOG_LEVELS asks."""
    if not (log.isEnabledFor(logging.DEBUG) or hub.log.isEnabledFor(logging.DEBUG)):
        return None
    return [
        {"event_id": r["env"].get("event_id"), "client_msg_id": r["cmid"], "room": r["room"], "seq": r["seq"]}
        for r in rows
    ]


def _log_stored(trace: list[dict]) -> None:
    for ids in trace:
        log.debug(
            "stored message %s (event %s) in room %s as seq %s",
            ids["client_msg_id"], ids["event_id"], ids["room"], ids["seq"], extra=ids,
        )  # fmt: skip


def _announce(
    messages: list[StoredMessage], *, names: dict, member_counts: dict, trace: list[dict] | None = None
) -> None:
    events = []
    # Room by room (each in seq order), so a room's frames share one publish.
    for m in sorted(messages, key=lambda m: (m.room_id, m.seq)):
        # Just stored: every member but the sender is yet to read it.
        payload = message_payload(
            m, sender_name=names.get((m.room_id, m.sender_id)), unread_count=member_counts.get(m.room_id, 1) - 1
        )
        events.append((room_group(m.room_id), frame("message.new", message=payload), None))
    publish_on_commit(events, announced=_newest_per_room(messages), trace=trace)


# accounts.tasks.push_messages, by name: this app may not import accounts (the layers go down).
PUSH_TASK = "accounts.push_messages"
PUSH_PAUSE_S = 5.0  # after the Celery broker failed, skip push for this long
_push_paused_until = 0.0


def _push_on_commit(messages: list[StoredMessage], *, names: dict, rooms: dict) -> None:
    """After the commit, hand the batch's mentions and direct messages to the push task.

    One task per batch, and only when it has any; who gets a push (muted, online, devices) is
    the task's to find out, off this consumer. Push is best effort: a broker that cannot be
    reached costs one log line and a few seconds without push, never a delay to storing.
    """
    candidates = [
        {
            "room": m.room_id, "seq": m.seq, "sender": m.sender_id, "sender_name": names.get((m.room_id, m.sender_id)),
            "body": m.body or _files_note(m.attachments), "mentions": m.mentions,
            "direct": rooms[m.room_id][0] == Room.Kind.DIRECT,
            "room_name": rooms[m.room_id][1],
        }
        for m in messages
        if m.mentions or rooms[m.room_id][0] == Room.Kind.DIRECT
    ]  # fmt: skip
    if candidates:
        transaction.on_commit(lambda: _push_enqueue(candidates))


def _push_enqueue(candidates: list[dict]) -> None:
    global _push_paused_until
    if time.monotonic() < _push_paused_until:
        return
    try:
        current_celery_app.send_task(PUSH_TASK, kwargs={"messages": candidates}, retry=False)
    except Exception as exc:  # noqa: BLE001 - the messages are stored; push is best effort
        _push_paused_until = time.monotonic() + PUSH_PAUSE_S
        log.warning("push for %d messages not queued (Celery broker: %s); pausing push %.0f s",
                    len(candidates), exc, PUSH_PAUSE_S)  # fmt: skip


def _newest_per_room(messages: list) -> dict[str, int]:
    newest: dict[str, int] = {}
    for m in messages:
        group = room_group(m.room_id)
        newest[group] = max(newest.get(group, 0), m.seq)
    return newest


def _announce_missed(replayed: list[tuple[int, int, int]]) -> None:
    """Announce stored messages of a batch again: to the room where a crash kept them unheard,
    to their sender where the sender sent them again.

    ``replayed`` holds (room, seq, sender) of messages found stored. A consumer that crashed
    between the database commit and the publish replays the batch: messages above the room's
    announced position are published to the room now. The others were announced; the sender
    sent one again because their client never saw it stored (it was offline, or its server
    stopped): the protocol has them keep it pending until their own ``message.new`` arrives, so
    that frame goes to the sender's sockets (clients drop a seq they already have).
    """
    try:
        announced = announced_positions(room_group(room_id) for room_id in {r for r, _, _ in replayed})
        missed = {(room_id, seq) for room_id, seq, _ in replayed if seq > announced[room_group(room_id)]}
        rows = list(
            Message.objects.filter(room_id__in={r for r, _, _ in replayed}, seq__in={s for _, s, _ in replayed})
            .select_related("sender")
            .order_by("room_id", "seq")
        )
        wanted = {(room_id, seq) for room_id, seq, _ in replayed}
        rows = [m for m in rows if (m.room_id, m.seq) in wanted]
        counters = {room_id: unread_counter(room_id=room_id) for room_id in {m.room_id for m in rows}}
        events = []
        for m in rows:
            text = frame("message.new", message=message_payload(
                m, sender_name=m.sender.username if m.sender_id else None, unread_count=counters[m.room_id](m.seq)))  # fmt: skip
            if (m.room_id, m.seq) in missed:
                events.append((room_group(m.room_id), text, None))
            elif m.sender_id is not None:
                events.append((user_group(m.sender_id), text, None))
        room_rows = [m for m in rows if (m.room_id, m.seq) in missed]
        publish(events, announced=_newest_per_room(room_rows) or None)
        if room_rows:
            log.info("announced %d stored messages that a crash kept from their members", len(room_rows))
    except Exception:  # the messages are stored; clients still catch up with `sync`
        log.exception("re-announcing %d replayed messages failed", len(replayed))


def _refusal(*, sender: int, client_msg_id: str, code: str, detail: str, room: int | None) -> Event:
    """The ``error`` frame that tells a sender their accepted message will not be stored."""
    extra = {"room": room} if room is not None else {}
    return user_group(sender), frame("error", req=None, code=code, detail=detail, client_msg_id=client_msg_id,
                                     **extra), None  # fmt: skip


def _refuse(items: list[tuple[dict, str, str]]) -> None:
    # The sender was removed, deactivated or the room became read-only (or was deleted) between
    # acceptance and storage: their message is not stored, and they hear why.
    log.info("refused %d messages (%s)", len(items), ", ".join(sorted({code for _, code, _ in items})))
    publish_on_commit(
        _refusal(sender=i["sender"], client_msg_id=i["cmid"], code=code, detail=detail, room=i["room"])
        for i, code, detail in items
    )


def message_refused_notify(*, envelope: dict, reason: str) -> None:
    """Tell the sender of a ``message.send`` that will never be stored (dead-lettered) why.

    ``reason`` starts with an error code where validation refused it (``too_large: ...``);
    anything else the database refused is ``invalid``.
    """
    if envelope.get("kind") != "message.send":
        return
    sender, room, cmid = envelope.get("sender"), envelope.get("room"), envelope.get("client_msg_id")
    if not is_json_int(sender, minimum=1) or not isinstance(cmid, str):
        return
    code, _, detail = reason.partition(": ")
    if code not in (INVALID, TOO_LARGE):
        code, detail = INVALID, reason
    room = room if is_json_int(room, minimum=1) else None
    publish([_refusal(sender=sender, client_msg_id=cmid, code=code, detail=f"Not stored: {detail}", room=room)])


# -- account deletion (called by accounts' services) ------------------------------------------------
def messages_detach_sender(*, messages: QuerySet, erase: bool) -> tuple[int, list[int]]:
    """Take the sender off these messages, erasing their bodies if asked: (count, their rooms).

    The room list's copy of a room's newest message goes with an erased body. Copies elsewhere
    are their owners' to handle (drawer_snapshots_detach_sender, quotes_detach_sender).
    """
    room_ids = list(messages.order_by().values_list("room_id", flat=True).distinct())
    if not room_ids:
        return 0, []
    changes: dict = {"sender": None}
    if erase:
        changes.update(body="", deleted_at=Coalesce("deleted_at", Value(timezone.now())), attachments=None)
        # An erased account leaves no files behind either (bar the copies drawers let go of).
        attachment_services.attachments_release(message_ids=messages.filter(attachments__isnull=False).values("pk"))
        newest = messages.filter(room_id=OuterRef("pk"), seq=OuterRef("last_seq"))
        Room.objects.filter(id__in=room_ids).filter(Exists(newest)).update(last_message_preview="")
        Reaction.objects.filter(message__in=messages).delete()
    return messages.update(**changes), room_ids


def quotes_detach_sender(*, user_id: int, erase: bool) -> int:
    """Replies quoting the user's messages show "deleted user", and no text when ``erase``; so do
    the system lines naming the user ("deleted user left").

    One statement on the replies only (a partial index), and one on the system lines. Open pages
    learn of it with the ``account.erased`` the deletion sends to each room. Returns how many
    replies changed.
    """
    patch = {"sender": {"id": None, "username": DELETED_USER}}
    if erase:
        patch.update(body="", deleted=True)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Message._meta.db_table} SET reply_to = reply_to || %s::jsonb"
            " WHERE reply_to IS NOT NULL AND (reply_to #>> '{sender,id}')::bigint = %s",
            [json.dumps(patch), user_id],
        )
        replies = cursor.rowcount
        _system_lines_detach(cursor, user_id=user_id)
        return replies


def _system_lines_detach(cursor, *, user_id: int) -> None:
    """The system lines naming the user name "deleted user" instead, in their facts, their text
    and the room list's copy of a room's newest message."""
    cursor.execute(
        f"SELECT id, room_id, seq, system, deleted_at IS NOT NULL FROM {Message._meta.db_table}"
        " WHERE kind = %s AND ((system #>> '{user,id}')::bigint = %s OR (system #>> '{by,id}')::bigint = %s)",
        [SYSTEM, user_id, user_id],
    )
    changed, newest = [], []
    for pk, room_id, seq, system, deleted in cursor.fetchall():
        system = json.loads(system) if isinstance(system, str) else system
        for role in ("user", "by"):
            if system.get(role) and system[role].get("id") == user_id:
                system[role] = {"id": None, "username": DELETED_USER}
        body = "" if deleted else system_line_text(system)
        changed.append(Message(pk=pk, system=system, body=body))
        newest.append((room_id, seq, body[:PREVIEW_CHARS]))
    if not changed:
        return
    Message.objects.bulk_update(changed, ["system", "body"])
    cursor.execute(
        f"UPDATE {Room._meta.db_table} AS r SET last_message_preview = v.preview"
        " FROM unnest(%s::bigint[], %s::bigint[], %s::text[]) AS v(id, seq, preview)"
        " WHERE r.id = v.id AND r.last_seq = v.seq",
        [[n[0] for n in newest], [n[1] for n in newest], [n[2] for n in newest]],
    )


def _quotes_rewrite(*, room_id: int, seq: int, body: str) -> None:
    """Replies quoting an edited message quote its new words."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {Message._meta.db_table} SET reply_to = reply_to || jsonb_build_object('body', left(%s, %s))"
            " WHERE room_id = %s AND reply_to IS NOT NULL AND (reply_to ->> 'seq')::bigint = %s",
            [body, QUOTE_CHARS, room_id, seq],
        )


def message_apply_edit(*, env: dict) -> None:
    """Apply a ``message.edit`` envelope (idempotent: the same edit twice changes nothing)."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .filter(room_id=env["room"], seq=env["seq"], sender_id=env["sender"], deleted_at__isnull=True)
            .first()
        )
        if message is None or message.body == env["body"]:
            return
        message.body = env["body"]
        message.edited_at = timezone.now()
        message.save(update_fields=["body", "edited_at"])
        # The room list shows the newest message, and replies quote it: neither may keep the words
        # that were replaced.
        Room.objects.filter(pk=message.room_id, last_seq=message.seq).update(
            last_message_preview=message.body[:PREVIEW_CHARS]
        )
        _quotes_rewrite(room_id=message.room_id, seq=message.seq, body=message.body)
        publish_on_commit([(room_group(message.room_id), frame(
            "message.updated", room=message.room_id, seq=message.seq, body=message.body,
            edited_at=message.edited_at.isoformat()), None)])  # fmt: skip


def room_deleted_apply(*, env: dict) -> None:
    """A room was deleted (``room.deleted``, after its commit): its attachments let go of their
    room then; queue the purge of their files now rather than at the next periodic sweep."""
    attachment_services.attachments_purge_enqueue()


def message_apply_delete(*, env: dict) -> None:
    """Apply a ``message.delete`` envelope: the body is erased, the seq stays (no gap)."""
    with transaction.atomic():
        messages_erase(messages=Message.objects.filter(room_id=env["room"], seq=env["seq"], sender_id=env["sender"]))


def messages_erase(*, messages: QuerySet) -> list[tuple[int, int, int]]:
    """Delete these messages for everyone, as a deletion does: the body and attachments are
    erased (the seq stays: no gap), their files released, reactions dropped, replies' quotes
    blanked, mentions uncounted, the room list's preview cleared, open clients told
    ``message.deleted`` after commit. Returns the (id, room, seq) of those erased now.

    Shared by a sender's deletion and retention (chat_messages/retention.py); a fixed number of
    statements whatever the number of messages, so the caller bounds the work by bounding the set.
    Call it in a transaction.
    """
    rows = list(
        messages.filter(deleted_at__isnull=True)
        .select_for_update(of=("self",))
        .order_by("pk")
        .values_list("pk", "room_id", "seq", "attachments")
    )
    if not rows:
        return []
    ids = [row[0] for row in rows]
    Message.objects.filter(pk__in=ids).update(deleted_at=timezone.now(), body="", attachments=None)
    carried = [row[0] for row in rows if row[3]]
    if carried:
        # Their files go after the commit (a Celery task), unless a drawer keeps them.
        attachment_services.attachments_release(message_ids=carried)
    rooms, seqs = [row[1] for row in rows], [row[2] for row in rows]
    Reaction.objects.filter(message_id__in=ids).delete()
    with connection.cursor() as cursor:
        # A deleted newest message must vanish from the room list too.
        cursor.execute(
            f"UPDATE {Room._meta.db_table} SET last_message_preview = ''"
            " WHERE (id, last_seq) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))",
            [rooms, seqs],
        )
        # Replies quoting a deleted message keep no copy of its words: "message deleted".
        cursor.execute(
            f"UPDATE {Message._meta.db_table} SET reply_to = reply_to || %s::jsonb"
            " WHERE reply_to IS NOT NULL AND (reply_to ->> 'seq')::bigint = ANY(%s::bigint[])"
            " AND (room_id, (reply_to ->> 'seq')::bigint) IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))",
            [json.dumps({"body": "", "deleted": True}), seqs, rooms, seqs],
        )
        # Nobody is mentioned by a message that is gone: the room list's @ count drops it.
        cursor.execute(
            f"UPDATE {Participant._meta.db_table} AS p SET mention_seqs = ARRAY("
            "  SELECT s FROM unnest(p.mention_seqs) WITH ORDINALITY AS m(s, n)"
            "  WHERE (p.room_id, m.s) NOT IN (SELECT * FROM unnest(%s::bigint[], %s::bigint[])) ORDER BY m.n)"
            " WHERE p.room_id = ANY(%s::bigint[]) AND p.mention_seqs && %s::bigint[]",
            [rooms, seqs, sorted(set(rooms)), seqs],
        )
    publish_on_commit([(room_group(room_id), frame(
        "message.deleted", room=room_id, seq=seq), None) for _, room_id, seq, _ in rows])  # fmt: skip
    return [(pk, room_id, seq) for pk, room_id, seq, _ in rows]
