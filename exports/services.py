"""Writes about data exports: requesting one, building its ZIP (the Celery task's body), expiring it.

A user exports their own data (:func:`export_request_user`): their account, the rooms they are in,
the messages they sent, their drawer and their attachments. A staff member with the
``exports.export_room`` permission (or a superuser) exports a room's whole history
(:func:`export_request_room`, audited). Either way the ``exports.build`` task writes the JSON files
into a ZIP on local disk page by page (:mod:`exports.selectors`), noting its progress after each
page, and stores it under ``exports/`` in the project's storage; ``exports.expire`` deletes it
after ``EXPORT_RETENTION_HOURS``. docs/exports.md tells the whole story.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Iterator
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.files import File
from django.core.files.storage import default_storage
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, Sum
from django.utils import timezone

from attachments.services import name_clean
from audit.services import audit_record
from streams.errors import FORBIDDEN, ChatError
from streams.realtime.protocol import DELETED_USER

from . import selectors
from .models import DataExport

log = logging.getLogger(__name__)

EXPIRE_CHUNK = 500
ERROR_MAX_CHARS = 1000
FORMAT_VERSION = 1


# -- requesting --------------------------------------------------------------------------------------
def export_request_user(*, user, include_files: bool = True) -> tuple[DataExport, bool]:
    """Start an export of the user's own data; returns (export, created).

    One unfinished export per user: while one is queued or running, it is returned instead of a
    second one (a unique constraint settles two requests at once). The task is queued after commit.
    """
    unfinished = selectors.export_unfinished_for(user=user)
    if unfinished is not None:
        return unfinished, False
    try:
        with transaction.atomic():
            export = DataExport.objects.create(
                kind=DataExport.Kind.USER, requester_id=user.pk, requester_name=user.get_username(),
                include_files=include_files,
            )  # fmt: skip
    except IntegrityError:  # a concurrent request made one first
        unfinished = selectors.export_unfinished_for(user=user)
        if unfinished is None:
            raise
        return unfinished, False
    transaction.on_commit(lambda: export_enqueue(export_id=export.pk))
    return export, True


def export_room_allowed(*, actor) -> bool:
    """Whether ``actor`` may export rooms: an active staff member with ``exports.export_room``, or a superuser."""
    return bool(
        actor is not None
        and actor.is_active
        and (actor.is_superuser or (actor.is_staff and actor.has_perm("exports.export_room")))
    )


def export_request_room(*, room, actor, ip: str | None = None) -> DataExport:
    """Start an export of a room's whole history for ``actor`` (audited); refused without the permission."""
    if not export_room_allowed(actor=actor):
        raise ChatError(FORBIDDEN, "Exporting a room takes the exports.export_room permission.")
    with transaction.atomic():
        export = DataExport.objects.create(
            kind=DataExport.Kind.ROOM, requester_id=actor.pk, requester_name=actor.get_username(), room_id=room.pk,
            room_name=str(room)[:100], include_files=False,
        )  # fmt: skip
        audit_record(
            action="room.exported_by_admin", actor=actor, target_type="room", target_id=room.pk,
            after={"export": export.pk}, detail=f"history of {room} exported", ip=ip,
        )  # fmt: skip
        transaction.on_commit(lambda: export_enqueue(export_id=export.pk))
    return export


def export_enqueue(*, export_id: int) -> None:
    """Queue the ``exports.build`` task; a broker that refuses fails the export (the user may retry)."""
    from .tasks import build  # the task module imports this one

    try:
        build.delay(export_id)
    except Exception as exc:  # noqa: BLE001 - told to the requester instead of left queued for ever
        log.warning("exports.build not queued for export %s: %s", export_id, exc)
        DataExport.objects.filter(pk=export_id, status=DataExport.Status.QUEUED).update(
            status=DataExport.Status.FAILED, finished_at=timezone.now(),
            error="The export could not be started (the task queue is unavailable); try again later.",
        )  # fmt: skip


def export_room_file_for_admin(*, export_id: int, actor, ip: str | None = None) -> DataExport:
    """A finished room export for an admin to download (audited); refused without the permission."""
    if not export_room_allowed(actor=actor):
        raise ChatError(FORBIDDEN, "Downloading a room's export takes the exports.export_room permission.")
    export = DataExport.objects.filter(pk=export_id, kind=DataExport.Kind.ROOM).first()
    if export is None or export.status != DataExport.Status.DONE or not export.file:
        raise ChatError(FORBIDDEN, "This export has no file to download (not a finished room export).")
    audit_record(
        action="room.export_downloaded_by_admin", actor=actor, target_type="room", target_id=export.room_id,
        after={"export": export.pk}, detail=f"export {export.pk} of {export.room_name} downloaded", ip=ip,
    )  # fmt: skip
    return export


# -- building ----------------------------------------------------------------------------------------
def export_build(*, export_id: int) -> DataExport:
    """Build the export's ZIP (the ``exports.build`` task); a failure marks it failed with the error.

    Only a queued export is started: a running one belongs to its worker (or, stuck, to the expiry
    sweep), a finished one is left as it is. The ZIP is written to a temporary file, one page of
    rows at a time, then stored; progress is written after every page (visible at once: this runs
    outside a transaction).
    """
    with transaction.atomic():
        export = DataExport.objects.select_for_update().filter(pk=export_id).first()
        if export is None or export.status != DataExport.Status.QUEUED:
            return export
        export.status, export.started_at = DataExport.Status.RUNNING, timezone.now()
        export.save(update_fields=["status", "started_at"])
    stored = ""
    try:
        if export.kind == DataExport.Kind.USER:
            if selectors.account_of(user_id=export.requester_id) is None:
                raise ValueError("the account was deleted before its export ran")
            parts = _user_parts(export)
        else:
            room = selectors.room_get(room_id=export.room_id)
            if room is None:
                raise ValueError("the room was deleted before its export ran")
            parts = _room_parts(export, room)
        with tempfile.TemporaryFile() as scratch:
            _write_zip(scratch, export, parts)
            size = scratch.seek(0, 2)
            scratch.seek(0)
            stored = default_storage.save(_storage_name(export), File(scratch))
        now = timezone.now()
        DataExport.objects.filter(pk=export.pk).update(
            status=DataExport.Status.DONE, file=stored, size=size, items_done=F("items_total"), finished_at=now,
            expires_at=now + timedelta(hours=settings.EXPORT_RETENTION_HOURS), error="",
        )  # fmt: skip
    except Exception as exc:  # any failure is the requester's to see, not a retry loop
        log.exception("export %s failed", export.pk)
        if stored:
            _delete_files([stored])
        DataExport.objects.filter(pk=export.pk).update(
            status=DataExport.Status.FAILED, finished_at=timezone.now(),
            error=f"The export failed: {type(exc).__name__}: {exc}"[:ERROR_MAX_CHARS],
        )  # fmt: skip
    export.refresh_from_db()
    return export


def _storage_name(export: DataExport) -> str:
    """Under exports/ and a random token (192 bits): a name cannot be guessed from another."""
    what = f"room-{export.room_id}" if export.kind == DataExport.Kind.ROOM else "my-data"
    return f"exports/{timezone.now():%Y/%m}/{secrets.token_urlsafe(24)}/chat-export-{what}-{export.pk}.zip"


class _Part:
    """One JSON file of the ZIP: an object, or an array written page by page with its row count."""

    def __init__(
        self, name: str, *, value=None, pages: Callable[[], Iterable[list[dict]]] | None = None, total: int = 0
    ) -> None:
        self.name, self.value, self.pages, self.total = name, value, pages, total


def _dumps(value) -> bytes:
    return json.dumps(value, cls=DjangoJSONEncoder, ensure_ascii=False, indent=None).encode()


def _write_zip(scratch, export: DataExport, parts: list[_Part]) -> None:
    total = sum(part.total for part in parts)
    DataExport.objects.filter(pk=export.pk).update(items_total=total, items_done=0)
    done = 0
    with zipfile.ZipFile(scratch, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for part in parts:
            if part.pages is None:
                archive.writestr(part.name, json.dumps(part.value, cls=DjangoJSONEncoder, ensure_ascii=False, indent=2))
                continue
            if part.name.endswith("/"):  # a folder of files: each page's rows are (name, storage name)
                for page in part.pages():
                    for arcname, stored in page:
                        with (
                            default_storage.open(stored, "rb") as source,
                            archive.open(part.name + arcname, "w") as out,
                        ):
                            shutil.copyfileobj(source, out, 1024 * 1024)
                    done += len(page)
                    DataExport.objects.filter(pk=export.pk).update(items_done=done)
                continue
            with archive.open(part.name, "w", force_zip64=True) as out:
                out.write(b"[")
                first = True
                for page in part.pages():
                    for row in page:
                        out.write(b"\n" if first else b",\n")
                        out.write(_dumps(row))
                        first = False
                    done += len(page)
                    DataExport.objects.filter(pk=export.pk).update(items_done=done)
                out.write(b"\n]\n")


def _about(export: DataExport) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "kind": export.kind,
        "export_id": export.pk,
        "requested_by": export.requester_name,
        "created_at": timezone.now(),
        "site": "chat",
    }


def _user_parts(export: DataExport) -> list[_Part]:
    user_id = export.requester_id
    rooms = selectors.memberships_of(user_id=user_id)
    messages = selectors.messages_sent_by(user_id=user_id)
    drawer = selectors.drawer_of(user_id=user_id)
    attachments = selectors.attachments_sent_by(user_id=user_id)
    parts = [
        _Part("about.json", value=_about(export)),
        _Part("account.json", value=selectors.account_of(user_id=user_id)),
        _Part("rooms.json", pages=lambda: _rooms_rows(user_id, selectors.chunks(rooms)), total=rooms.count()),
        _Part("messages.json", pages=lambda: _pages(selectors.chunks(messages), _message_row), total=messages.count()),
        _Part("drawer.json", pages=lambda: _pages(selectors.chunks(drawer), _drawer_row), total=drawer.count()),
    ]
    files_bytes = attachments.aggregate(total=Sum("size"))["total"] or 0
    with_files = (
        export.include_files
        and files_bytes <= settings.EXPORT_FILES_MAX_BYTES
        and not hasattr(default_storage, "bucket_name")  # a local folder (S3: the app's signed links)
    )
    count = attachments.count()
    parts.append(
        _Part(
            "attachments.json",
            pages=lambda: _pages(selectors.chunks(attachments), lambda row: _attachment_row(row, with_files)),
            total=count,
        )
    )
    if with_files and count:
        parts.append(
            _Part("attachments/", pages=lambda: _pages(selectors.chunks(attachments), _file_entry), total=count)
        )
    return parts


def _room_parts(export: DataExport, room) -> list[_Part]:
    members = selectors.room_members(room_id=room.pk)
    messages = selectors.room_messages(room_id=room.pk)
    attachments = selectors.room_attachments(room_id=room.pk)
    room_value = {
        "id": room.pk, "kind": room.kind, "name": room.name, "topic": room.topic, "is_public": room.is_public,
        "created_at": room.created_at, "last_seq": room.last_seq, "retention_days": room.retention_days,
        "legal_hold": room.legal_hold,
    }  # fmt: skip
    return [
        _Part("about.json", value=_about(export)),
        _Part("room.json", value=room_value),
        _Part("members.json", pages=lambda: _pages(selectors.chunks(members), _member_row), total=members.count()),
        _Part(
            "messages.json",
            pages=lambda: _pages(selectors.chunks(messages, key="seq"), _room_message_row),
            total=messages.count(),
        ),
        _Part(
            "attachments.json",
            pages=lambda: _pages(selectors.chunks(attachments), _room_attachment_row),
            total=attachments.count(),
        ),
    ]


def _pages(pages: Iterable[list[dict]], shape: Callable[[dict], object]) -> Iterator[list]:
    for page in pages:
        yield [shape(row) for row in page]


def _rooms_rows(user_id: int, pages: Iterable[list[dict]]) -> Iterator[list[dict]]:
    for page in pages:
        # A direct room has no name of its own: it shows the other person's (one query a page).
        partners = selectors.direct_partners(
            user_id=user_id, room_ids=[row["room_id"] for row in page if row["room__kind"] == "direct"]
        )
        yield [
            {
                "room": {
                    "id": row["room_id"],
                    "name": row["room__name"],
                    "kind": row["room__kind"],
                    "topic": row["room__topic"],
                },
                "with": (partners.get(row["room_id"]) or DELETED_USER) if row["room__kind"] == "direct" else None,
                "role": row["role"],
                "joined_at": row["joined_at"],
                "last_read_seq": row["last_read_seq"],
                "muted": row["muted"],
            }  # fmt: skip
            for row in page
        ]


def _reply(reply_to: dict | None) -> dict | None:
    """Which message a message answered: its seq and sender's name, not the other person's words."""
    if not reply_to:
        return None
    sender = reply_to.get("sender") or {}
    return {"seq": reply_to.get("seq"), "sender": sender.get("username") or DELETED_USER}


def _attachments_brief(snapshot: list[dict] | None) -> list[dict]:
    return [{"id": a.get("id"), "name": a.get("name"), "content_type": a.get("content_type")} for a in snapshot or []]


def _message_row(row: dict) -> dict:
    deleted = row["deleted_at"] is not None
    return {
        "id": row["id"], "room": {"id": row["room_id"], "name": row["room__name"]}, "seq": row["seq"],
        "body": "" if deleted else row["body"], "created_at": row["created_at"], "edited_at": row["edited_at"],
        "deleted": deleted, "deleted_at": row["deleted_at"], "reply_to": None if deleted else _reply(row["reply_to"]),
        "attachments": [] if deleted else _attachments_brief(row["attachments"]),
    }  # fmt: skip


def _drawer_row(row: dict) -> dict:
    return {
        "id": row["id"], "room": {"id": row["room_id"], "name": row["room_name"]},
        "message": {"seq": row["message_seq"], "sender": row["sender_name"], "body": row["body"],
                    "created_at": row["message_created_at"], "attachments": _attachments_brief(row["attachments"])},
        "note": row["note"], "tags": row["tags"], "saved_at": row["saved_at"],
    }  # fmt: skip


def _file_name(row: dict) -> str:
    return f"{row['id']}-{name_clean(row['name'])}"


def _attachment_row(row: dict, with_files: bool) -> dict:
    return {
        "id": row["id"], "room": row["room_id"], "message_id": row["message_id"], "kind": row["kind"],
        "name": row["name"], "content_type": row["content_type"], "size": row["size"], "width": row["width"],
        "height": row["height"], "created_at": row["created_at"],
        "file": f"attachments/{_file_name(row)}" if with_files else None,
    }  # fmt: skip


def _file_entry(row: dict) -> tuple[str, str]:
    return _file_name(row), row["file"]


def _member_row(row: dict) -> dict:
    return {
        "user": {"id": row["user_id"], "username": row["user__username"]}, "role": row["role"],
        "joined_at": row["joined_at"], "last_read_seq": row["last_read_seq"],
    }  # fmt: skip


def _room_message_row(row: dict) -> dict:
    deleted = row["deleted_at"] is not None
    system = row["kind"] == "system"
    if system:
        sender = None
    else:
        sender = {"id": row["sender_id"], "username": row["sender__username"] if row["sender_id"] else DELETED_USER}
    return {
        "id": row["id"], "seq": row["seq"], "kind": row["kind"], "sender": sender,
        "body": "" if deleted else row["body"], "created_at": row["created_at"], "edited_at": row["edited_at"],
        "deleted": deleted, "deleted_at": row["deleted_at"], "reply_to": None if deleted else row["reply_to"],
        "attachments": [] if deleted else (row["attachments"] or []), "system": row["system"],
    }  # fmt: skip


def _room_attachment_row(row: dict) -> dict:
    return {
        "id": row["id"], "message_id": row["message_id"],
        "uploader": row["uploader__username"] if row["uploader_id"] else DELETED_USER, "kind": row["kind"],
        "name": row["name"], "content_type": row["content_type"], "size": row["size"], "width": row["width"],
        "height": row["height"], "created_at": row["created_at"], "released": row["released_at"] is not None,
    }  # fmt: skip


# -- expiry ------------------------------------------------------------------------------------------
def exports_expire(*, now=None) -> tuple[int, bool]:
    """Delete the files of exports past ``expires_at`` (or whose requester's account is gone), at
    most ``EXPIRE_CHUNK`` a call, and mark exports stuck unfinished past EXPORT_STALE_HOURS failed.

    Returns (files deleted, whether more are waiting). The files go after commit.
    """
    now = now or timezone.now()
    DataExport.objects.filter(
        status__in=DataExport.UNFINISHED, created_at__lt=now - timedelta(hours=settings.EXPORT_STALE_HOURS)
    ).update(
        status=DataExport.Status.FAILED, finished_at=now,
        error=f"The export did not finish within {settings.EXPORT_STALE_HOURS:g} hours; start a new one.",
    )  # fmt: skip
    with transaction.atomic():
        due = list(
            DataExport.objects.select_for_update(skip_locked=True, of=("self",))
            .annotate(requester_gone=~Exists(get_user_model().objects.filter(pk=OuterRef("requester_id"))))
            .filter(~Q(file=""))
            .filter(Q(expires_at__lte=now) | Q(kind=DataExport.Kind.USER, requester_gone=True))
            .order_by("expires_at")
            .values_list("pk", "file")[:EXPIRE_CHUNK]
        )
        if not due:
            return 0, False
        DataExport.objects.filter(pk__in=[pk for pk, _ in due]).update(file="", status=DataExport.Status.EXPIRED)
        names = [name for _, name in due]
        transaction.on_commit(lambda: _delete_files(names))
    return len(due), len(due) == EXPIRE_CHUNK


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception as exc:  # noqa: BLE001 - one stuck file must not keep the others
            log.warning("export file %s not deleted: %s", name, exc)
