"""Writes about the talk drawer: saving a message, editing an entry's note and tags, unsaving.

Every change tells the user's other sessions with ``drawer.changed`` on their user group, after
commit. Nobody but the owner can reach an entry: another user's entry id answers ``not_found``,
like an id that does not exist.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import QuerySet

from attachments.services import attachments_hold, attachments_unhold
from audit.services import audit_record
from chat_messages.models import Message
from rooms.models import Participant, Room
from streams.errors import INVALID, NOT_FOUND, NOT_MEMBER, TOO_LARGE, ChatError
from streams.realtime.hub import frame, publish_on_commit, send_event_on_commit, user_group
from streams.realtime.protocol import DELETED_USER

from .models import TAG_MAX_CHARS, SavedMessage, tag_normalize
from .selectors import drawer_entry_get, drawer_entry_payload, with_link

NOTE_MAX_CHARS = 2000
TAGS_MAX = 10

SAVED = "saved"
UPDATED = "updated"
REMOVED = "removed"


def drawer_note_clean(*, note) -> str:
    """A note as stored: a string of at most NOTE_MAX_CHARS, surrounding blanks dropped."""
    if note is None:
        return ""
    if not isinstance(note, str):
        raise ChatError(INVALID, "`note` must be a string.")
    note = note.strip()
    if len(note) > NOTE_MAX_CHARS:
        raise ChatError(TOO_LARGE, f"The note is {len(note)} characters; the limit is {NOTE_MAX_CHARS}.")
    return note


def drawer_tags_clean(*, tags) -> list[str]:
    """Tags as stored: trimmed, lower-cased (so filtering ignores case), unique, in given order."""
    if tags is None:
        return []
    if isinstance(tags, str) or not isinstance(tags, Iterable):
        raise ChatError(INVALID, "`tags` must be a list of strings.")
    cleaned: list[str] = []
    for tag in tags:
        if not isinstance(tag, str):
            raise ChatError(INVALID, "`tags` must be a list of strings.")
        tag = tag_normalize(tag)
        if not tag:
            continue
        if len(tag) > TAG_MAX_CHARS:
            raise ChatError(INVALID, f"A tag has at most {TAG_MAX_CHARS} characters.")
        if tag not in cleaned:
            cleaned.append(tag)
    if len(cleaned) > TAGS_MAX:
        raise ChatError(INVALID, f"An entry has at most {TAGS_MAX} tags.")
    return cleaned


def _message_for_saving(*, user_id: int, message_id: int | None, room_id: int | None, seq: int | None) -> Message:
    """The message a user may save, named by id or by (room, seq).

    Membership is checked before anything about the message is revealed, and a message id that
    does not exist answers like one in a room the user is not in, so ids cannot be probed.
    """
    not_member = ChatError(NOT_MEMBER, "You are not a member of this message's room.")
    if message_id is not None:
        message = Message.objects.select_related("room", "sender").filter(pk=message_id).first()
        if message is None:
            raise not_member
        room_id = message.room_id
    elif room_id is not None and seq is not None:
        message = None
    else:
        raise ChatError(INVALID, "Name the message by `message` (its id) or by `room` and `seq`.")
    if not Participant.objects.filter(room_id=room_id, user_id=user_id).exists():
        raise not_member
    if message is None:
        message = Message.objects.select_related("room", "sender").filter(room_id=room_id, seq=seq).first()
    if message is None or message.deleted_at is not None:
        raise ChatError(NOT_FOUND, "No such message in this room.")
    return message


def _room_name(*, room: Room, user_id: int) -> str:
    """The room's name as the user sees it: a direct room is named after the other person."""
    if room.name or room.kind != Room.Kind.DIRECT or not room.direct_key:
        return room.name or str(room)
    other_id = next((int(part) for part in room.direct_key.split(":") if int(part) != user_id), None)
    username = get_user_model().objects.filter(pk=other_id).values_list("username", flat=True).first()
    return username or DELETED_USER


def drawer_entry_save(
    *,
    user,
    message_id: int | None = None,
    room_id: int | None = None,
    seq: int | None = None,
    note: str | None = None,
    tags: Iterable[str] | None = None,
) -> tuple[SavedMessage, bool]:
    """Save a message of a room the user is in to their drawer; returns (entry, created).

    The entry snapshots the body, the sender's and room's names and the message's time, so it
    survives the message's edit or deletion and the user leaving the room. Saving a message
    already in the drawer returns the existing entry unchanged (a retried save is harmless);
    the note and tags are changed with ``drawer_entry_update``.
    """
    note = drawer_note_clean(note=note)
    tags = drawer_tags_clean(tags=tags)
    message = _message_for_saving(user_id=user.pk, message_id=message_id, room_id=room_id, seq=seq)
    with transaction.atomic():
        entry, created = SavedMessage.objects.get_or_create(
            user=user,
            message=message,
            defaults={
                "room": message.room,
                "room_name": _room_name(room=message.room, user_id=user.pk)[:100],
                "sender_name": message.sender.username if message.sender_id else DELETED_USER,
                "body": message.body,
                "message_seq": message.seq,
                "message_created_at": message.created_at,
                "note": note,
                "tags": tags,
                "attachments": message.attachments,
            },
        )
        if created and message.attachments:
            # The files stay while the entry does, whatever becomes of the message or the room.
            attachments_hold(
                user_id=user.pk, attachment_ids=[a["id"] for a in message.attachments], holder=hold_key(entry.pk)
            )
        entry = drawer_entry_get(user_id=user.pk, entry_id=entry.pk)
        if created:
            _announce(user_id=user.pk, action=SAVED, entry=drawer_entry_payload(entry))
    return entry, created


def drawer_entry_update(
    *, user, entry_id: int, note: str | None = None, tags: Iterable[str] | None = None
) -> SavedMessage:
    """Change the note and/or the tags of one of the user's entries (None leaves a field as is)."""
    fields = {}
    if note is not None:
        fields["note"] = drawer_note_clean(note=note)
    if tags is not None:
        fields["tags"] = drawer_tags_clean(tags=tags)
    with transaction.atomic():
        entry = _own_entry_locked(user_id=user.pk, entry_id=entry_id)
        changed = [name for name, value in fields.items() if getattr(entry, name) != value]
        if changed:
            for name in changed:
                setattr(entry, name, fields[name])
            entry.save(update_fields=changed)
        entry = drawer_entry_get(user_id=user.pk, entry_id=entry.pk)
        if changed:
            _announce(user_id=user.pk, action=UPDATED, entry=drawer_entry_payload(entry))
    return entry


def drawer_entry_remove(*, user, entry_id: int, moderator=None) -> None:
    """Unsave: delete one of the user's entries (the message itself is untouched).

    ``moderator``: a site moderator removing it from the admin, recorded in the audit log.
    """
    with transaction.atomic():
        entry = _own_entry_locked(user_id=user.pk, entry_id=entry_id)
        if moderator is not None:
            audit_record(
                action="drawer.entry_removed_by_moderator", actor=moderator, target_type="drawer_entry",
                target_id=entry_id,
                before={"user": user.pk, "username": user.username, "message": entry.message_id, "room": entry.room_id,
                        "room_name": entry.room_name, "message_seq": entry.message_seq,
                        "sender_name": entry.sender_name},
                detail=f"{user.username}'s saved message #{entry.message_seq} of {entry.room_name or 'a room'}",
            )  # fmt: skip
        entry.delete()
        if entry.attachments:
            attachments_unhold(holders=[hold_key(entry_id)])
        _announce(user_id=user.pk, action=REMOVED, id=entry_id)


def drawer_snapshots_detach_sender(*, messages: QuerySet, erase: bool) -> int:
    """Forget who sent these messages in everyone's drawer, and also what they said if ``erase``.

    For account deletion: a deleted account is "deleted user" in drawers too, and an account
    erased at its owner's request leaves no copy of its words behind. Call it while the entries
    still link to the messages (before they are deleted). Returns how many entries changed;
    their owners' sessions get ``drawer.changed`` "updated" after commit.
    """
    changes: dict = {"sender_name": DELETED_USER}
    if erase:
        changes.update(body="", attachments=None)
    with transaction.atomic():
        entries = SavedMessage.objects.filter(message__in=messages)
        rows = list(entries.values_list("pk", "attachments"))
        if not rows:
            return 0
        ids = [pk for pk, _ in rows]
        SavedMessage.objects.filter(pk__in=ids).update(**changes)
        if erase:  # nor of their files
            attachments_unhold(holders=[hold_key(pk) for pk, attachments in rows if attachments])
        publish_on_commit(
            (
                user_group(entry.user_id),
                frame("drawer.changed", action=UPDATED, entry=drawer_entry_payload(entry)),
                None,
            )
            for entry in with_link(SavedMessage.objects.filter(pk__in=ids))
        )
    return len(ids)


def drawer_snapshots_expire(*, message_ids: list[int]) -> int:
    """Retention deleted these messages: everyone's saved copies of them lose their words and
    files too, unless CHAT_RETENTION_KEEPS_DRAWER (then the drawer keeps them, as it keeps a copy
    of a message its sender deleted). Returns how many entries changed; their owners' sessions
    get ``drawer.changed`` "updated" after commit."""
    if settings.CHAT_RETENTION_KEEPS_DRAWER or not message_ids:
        return 0
    with transaction.atomic():
        rows = list(SavedMessage.objects.filter(message_id__in=message_ids).values_list("pk", "attachments"))
        if not rows:
            return 0
        ids = [pk for pk, _ in rows]
        SavedMessage.objects.filter(pk__in=ids).update(body="", attachments=None)
        attachments_unhold(holders=[hold_key(pk) for pk, attachments in rows if attachments])
        publish_on_commit(
            (
                user_group(entry.user_id),
                frame("drawer.changed", action=UPDATED, entry=drawer_entry_payload(entry)),
                None,
            )
            for entry in with_link(SavedMessage.objects.filter(pk__in=ids))
        )
    return len(ids)


def hold_key(entry_id: int) -> str:
    """What an entry's attachment holds are called (attachments.models.AttachmentHold.holder)."""
    return f"drawer:{entry_id}"


def _own_entry_locked(*, user_id: int, entry_id: int) -> SavedMessage:
    entry = SavedMessage.objects.select_for_update().filter(pk=entry_id, user_id=user_id).first()
    if entry is None:
        raise ChatError(NOT_FOUND, "No such entry in your drawer.")
    return entry


def _announce(*, user_id: int, action: str, **fields) -> None:
    send_event_on_commit(user_group(user_id), "drawer.changed", action=action, **fields)
