"""Writes of moderation: members report messages; moderators warn users and act on reports.

The sanctions an action imposes are the services of the apps that enforce them (rooms' mute and
ban, accounts' suspension, chat_messages' deletion), each audited there; acting on a report also
resolves every open report of the same message, audited here.
"""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.services import account_suspend
from audit.services import audit_record
from chat_messages.models import Message
from chat_messages.selectors import message_get
from chat_messages.services import message_delete_by_moderator
from rooms.models import Room, RoomSanction
from rooms.services import room_sanction_impose
from streams.errors import INVALID, NOT_FOUND, ChatError
from streams.realtime.hub import frame, publish_on_commit, user_group

from .models import ModerationWarning, Report
from .selectors import warning_payload

NOTE_MAX_CHARS = 1000
WARNING_EVENT = "moderation.warning.v1"
DEFAULT_WARNING = "A moderator warned you about a message you sent. Please keep to the rules of this chat."


# -- reports by members ---------------------------------------------------------------------------------
def report_create(*, user, room_id: int, seq: int, reason: str, note: str = "") -> tuple[Report, bool]:
    """Report a message of a room the user is in. Returns (report, created now).

    One open report per reporter and message: reporting it again returns the open one unchanged.
    ``not_member`` for a room the user is not in (or none), ``not_found`` for no such message, or a
    deleted one; a system line or one's own message cannot be reported (``invalid``).
    """
    if reason not in Report.Reason.values:
        raise ChatError(INVALID, f"`reason` must be one of {', '.join(Report.Reason.values)}.")
    if not isinstance(note, str):
        raise ChatError(INVALID, "`note` must be a string.")
    note = note.strip()
    if len(note) > NOTE_MAX_CHARS or "\x00" in note:
        raise ChatError(INVALID, f"`note` must be at most {NOTE_MAX_CHARS} characters of text.")
    message = message_get(room_id=room_id, user_id=user.pk, seq=seq)
    if message.deleted_at is not None:
        raise ChatError(NOT_FOUND, "No such message.")
    if message.kind == Message.Kind.SYSTEM:
        raise ChatError(INVALID, "A system line cannot be reported.")
    if message.sender_id == user.pk:
        raise ChatError(INVALID, "You cannot report your own message.")
    existing = Report.objects.filter(message=message, reporter=user, status=Report.Status.OPEN).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return Report.objects.create(message=message, reporter=user, reason=reason, note=note), True
    except IntegrityError:  # the same report sent twice at once: the other one won
        return Report.objects.get(message=message, reporter=user, status=Report.Status.OPEN), False


# -- warnings ---------------------------------------------------------------------------------------------
def warning_issue(*, user, text: str = "", actor=None, report: Report | None = None) -> ModerationWarning:
    """Warn ``user``: stored, sent to their open sockets after commit (``moderation.warning.v1``
    {warning: {id, text, created_at, dismissed}}) and listed to them until dismissed. Audited."""
    text = (text or "").strip() or DEFAULT_WARNING
    with transaction.atomic():
        warning = ModerationWarning.objects.create(
            user=user, text=text, report=report, created_by=actor if getattr(actor, "pk", None) else None
        )
        audit_record(
            action="moderation.user_warned", actor=actor, target_type="user", target_id=user.pk,
            after={"warning": warning.pk, "text": text, "report": report.pk if report else None},
            detail=f"{user.username} warned" + (f" over report {report.pk}" if report else ""),
        )  # fmt: skip
        publish_on_commit([(user_group(user.pk), frame(WARNING_EVENT, warning=warning_payload(warning)), None)])
    return warning


def warning_dismiss(*, user, warning_id: int) -> dict:
    """The user dismisses one of their warnings (it stays listed, marked); another's is ``not_found``."""
    warning = ModerationWarning.objects.filter(pk=warning_id, user=user).first()
    if warning is None:
        raise ChatError(NOT_FOUND, "No such warning.")
    if warning.dismissed_at is None:
        warning.dismissed_at = timezone.now()
        warning.save(update_fields=["dismissed_at"])
    return warning_payload(warning)


# -- moderators' actions on reports -------------------------------------------------------------------------
DISMISS = "dismiss"
DELETE = "delete"
WARN = "warn"
MUTE = "mute"
BAN = "ban"
SUSPEND = "suspend"
ACTIONS = (DISMISS, DELETE, WARN, MUTE, BAN, SUSPEND)


def report_act(*, report: Report, action: str, actor, duration: timedelta | None = None, text: str = "") -> str:
    """Act on a report's message as a moderator, and resolve every open report of that message.

    ``action``: ``dismiss`` (nothing wrong), ``delete`` (the message, for everyone), ``warn`` the
    sender (``text``: the warning, else a default), ``mute`` the sender in the room or ``ban`` them
    from it (for ``duration``; None: until lifted), ``suspend`` the sender's account (the same).
    Each sanction is audited by its own service; the reports' resolution is audited here
    (``moderation.reports_resolved``). Returns the resolution's words.
    """
    if action not in ACTIONS:
        raise ChatError(INVALID, f"Unknown action {action!r}.")
    message = Message.objects.select_related("sender", "room").get(pk=report.message_id)
    sender = message.sender
    if action not in (DISMISS, DELETE) and sender is None:
        raise ChatError(INVALID, "The message's sender no longer exists: only deleting or dismissing is left.")
    until = timezone.now() + duration if duration is not None else None
    span = f"for {_span(duration)}" if duration is not None else "until lifted"
    reason = f"report {report.pk}: {report.get_reason_display()}"
    with transaction.atomic():
        if action == DELETE:
            message_delete_by_moderator(message=message, moderator=actor)
            resolution = "message deleted for everyone"
        elif action == WARN:
            warning_issue(user=sender, text=text, actor=actor, report=report)
            resolution = f"{sender.username} warned"
        elif action == MUTE:
            room_sanction_impose(room=message.room, user=sender, kind=RoomSanction.Kind.MUTE, until=until,
                                 reason=reason, actor=actor)  # fmt: skip
            resolution = f"{sender.username} muted in {_room_name(message.room)} {span}"
        elif action == BAN:
            room_sanction_impose(room=message.room, user=sender, kind=RoomSanction.Kind.BAN, until=until,
                                 reason=reason, actor=actor)  # fmt: skip
            resolution = f"{sender.username} banned from {_room_name(message.room)} {span}"
        elif action == SUSPEND:
            account_suspend(user=get_user_model().objects.get(pk=sender.pk), until=until, reason=reason, actor=actor)
            resolution = f"{sender.username}'s account suspended {span}"
        else:
            resolution = "dismissed"
        status = Report.Status.DISMISSED if action == DISMISS else Report.Status.ACTIONED
        reports_resolve(message_id=message.pk, status=status, resolution=resolution, actor=actor)
    return resolution


def reports_resolve(*, message_id: int, status: str, resolution: str, actor) -> int:
    """Close every open report of the message with ``status`` and ``resolution``; audited. How many."""
    open_reports = Report.objects.select_for_update().filter(message_id=message_id, status=Report.Status.OPEN)
    ids = sorted(open_reports.values_list("pk", flat=True))
    if not ids:
        return 0
    Report.objects.filter(pk__in=ids).update(
        status=status, resolution=resolution, handled_at=timezone.now(),
        handled_by=actor if getattr(actor, "pk", None) else None,
    )  # fmt: skip
    audit_record(
        action="moderation.reports_resolved", actor=actor, target_type="message", target_id=message_id,
        before={"reports": ids, "status": Report.Status.OPEN}, after={"reports": ids, "status": status,
                                                                      "resolution": resolution},
        detail=f"{len(ids)} report(s) of message {message_id}: {resolution}",
    )  # fmt: skip
    return len(ids)


def _span(duration: timedelta) -> str:
    hours = duration.total_seconds() / 3600
    if hours >= 24 and hours % 24 == 0:
        days = int(hours // 24)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


def _room_name(room: Room) -> str:
    return f"'{room.name}'" if room.name else f"room {room.pk}"
