"""Writes about attachments: uploading, linking to a message, holding, releasing and purging files.

An attachment's life: uploaded to a room (:func:`attachment_create`), attached to one message
by the persistence consumer in the transaction that stores it (:func:`attachments_claim`,
:func:`attachments_link`), released when that message is deleted or erased, when it is never
sent, or when its uploader's account goes (:func:`attachments_release`); a deleted room lets
go of its attachments by itself (their room becomes null). Released files are deleted by the
``attachments.purge`` Celery task after commit, in bounded chunks, unless a hold (a saved
message in someone's drawer) keeps them.
"""

from __future__ import annotations

import functools
import logging
import operator
import os
import secrets
import threading
import unicodedata
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile, File
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from rooms.selectors import participant_get, room_is_read_only
from streams.errors import FORBIDDEN, TOO_LARGE, UNSUPPORTED_TYPE, ChatError

from . import detection, images
from .models import Attachment, AttachmentHold
from .selectors import attachment_problem, attachment_snapshot

log = logging.getLogger(__name__)

NAME_MAX_CHARS = 255
# Images decoded at once in this process: a picture near CHAT_ATTACHMENT_MAX_PIXELS takes about
# 200 MB decoded, and a burst of uploads must not multiply that (the others wait their turn).
_DECODING = threading.BoundedSemaphore(2)


def name_clean(name: str | None) -> str:
    """A file name fit to show: its last path part, NFC, no control characters, at most 255 characters."""
    name = unicodedata.normalize("NFC", str(name or ""))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C").strip().strip(".") or "file"
    if len(name) > NAME_MAX_CHARS:
        stem, ext = os.path.splitext(name)
        ext = ext if len(ext) <= 16 else ""
        name = stem[: NAME_MAX_CHARS - len(ext)] + ext
    return name


def _storage_names(mime: str) -> tuple[str, str]:
    """Where an upload's original and thumbnail go: under a random token (192 bits), so a name
    cannot be guessed from another; the extension comes from the detected type."""
    folder = f"attachments/{timezone.now():%Y/%m}/{secrets.token_urlsafe(24)}"
    return (
        f"{folder}/original{detection.TYPE_EXTENSIONS.get(mime, '.bin')}",
        f"{folder}/thumbnail{images.THUMBNAIL_EXT}",
    )


def attachment_create(*, user, room_id: int, upload) -> Attachment:
    """Store an upload for a room the user is in; returns the attachment (not yet sent).

    ``upload`` is a Django ``UploadedFile`` (already limited to CHAT_ATTACHMENT_MAX_BYTES while it
    was read). Its type is read from its content: one not in CHAT_ATTACHMENT_TYPES, whose name's
    extension claims another type, or whose name would run it as a program when opened
    (``setup.bat``, ``app.jar``), is refused (``unsupported_type``). An image is measured and
    thumbnailed, and stored without its location; any other file is streamed to storage as it is.
    """
    participant = participant_get(room_id=room_id, user_id=user.pk)
    if room_is_read_only(room=participant.room, user_id=user.pk):
        raise ChatError(FORBIDDEN, "This conversation is read-only: the other person's account no longer exists.")
    limit = settings.CHAT_ATTACHMENT_MAX_BYTES
    if upload.size > limit:
        raise ChatError(TOO_LARGE, f"The file is {upload.size} bytes; the limit is {limit}.")
    name = name_clean(upload.name)
    upload.seek(0)
    mime = detection.detect(upload.read(detection.SNIFF_BYTES))
    upload.seek(0)
    if mime not in settings.CHAT_ATTACHMENT_TYPES:
        raise ChatError(UNSUPPORTED_TYPE, f"Files of type {mime} (read from the content) are not accepted.")
    if detection.runs_when_opened(name):
        raise ChatError(UNSUPPORTED_TYPE, f"The name {name!r} would run as a program when opened; it is not accepted.")
    if detection.extension_conflicts(name, mime):
        raise ChatError(UNSUPPORTED_TYPE, f"The name {name!r} does not match the content, which is {mime}.")
    original, thumbnail = _storage_names(mime)
    fields = {"kind": Attachment.Kind.FILE, "size": upload.size}
    image = None
    if mime in detection.IMAGE_TYPES:
        try:
            with _DECODING:
                image = images.process(
                    upload.read(), mime=mime, max_pixels=settings.CHAT_ATTACHMENT_MAX_PIXELS,
                    thumbnail_px=settings.CHAT_ATTACHMENT_THUMBNAIL_PX,
                )  # fmt: skip
        except images.NotAnImage:
            raise ChatError(UNSUPPORTED_TYPE, f"The file starts like {mime} but is not a readable image.") from None
        fields.update(kind=Attachment.Kind.IMAGE, size=len(image.original), width=image.width, height=image.height)
    stored: list[str] = []
    try:
        if image is not None:
            stored.append(default_storage.save(original, ContentFile(image.original)))
            stored.append(default_storage.save(thumbnail, ContentFile(image.thumbnail)))
        else:
            stored.append(default_storage.save(original, File(upload)))  # streamed, in chunks
        return Attachment.objects.create(
            room_id=room_id, uploader=user, name=name, content_type=mime, file=stored[0],
            thumbnail=stored[1] if len(stored) > 1 else "", **fields,
        )  # fmt: skip
    except BaseException:
        _delete_files(stored)  # nothing half-stored stays behind
        raise


# -- sending (the persistence consumer, in its transaction) ------------------------------------------
def attachments_claim(*, wanted: Iterable[int]) -> dict[int, Attachment]:
    """Lock the attachments a batch of sends names, in id order; returns them by id.

    Called by the persistence consumer only for a batch with attachments, before it numbers the
    messages, so that a refused attachment costs no seq. The locks hold until its commit: two
    messages cannot take the same attachment, and a purge or sweep waits.
    """
    ids = sorted(set(wanted))
    return {a.pk: a for a in Attachment.objects.select_for_update().filter(pk__in=ids).order_by("pk")}


def attachments_take(
    claimed: dict[int, Attachment], *, ids: list[int], user_id: int, room_id: int, taken: set[int]
) -> tuple[list[dict] | None, str | None]:
    """The snapshot of a message's attachments, or why one of them cannot be attached.

    ``taken`` holds the ids earlier messages of the batch took; this message's are added to it.
    """
    for attachment_id in ids:
        attachment = claimed.get(attachment_id)
        problem = "is attached to another message already" if attachment_id in taken else None
        problem = problem or attachment_problem(attachment, user_id=user_id, room_id=room_id)
        if problem:
            return None, f"Attachment {attachment_id} {problem}."
    taken.update(ids)
    return [attachment_snapshot(claimed[i]) for i in ids], None


def attachments_link(cursor, *, links: list[tuple[int, int]]) -> None:
    """Attach each (attachment id, message id), in the persistence consumer's transaction."""
    if not links:
        return
    cursor.execute(
        f"UPDATE {Attachment._meta.db_table} AS a SET message_id = v.message_id, attached_at = now()"
        " FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, message_id)"
        " WHERE a.id = v.id AND a.message_id IS NULL",
        [[a for a, _ in links], [m for _, m in links]],
    )


# -- releasing -------------------------------------------------------------------------------------
def attachments_release(*, message_ids: Iterable[int] | None = None, unattached_of: int | None = None) -> int:
    """Release attachments: those of these messages (deleted or erased), or those the user
    uploaded and never sent (their account is going). Their files go after commit, unless held.
    Returns how many were released."""
    conditions = []
    if message_ids is not None:
        conditions.append(Q(message_id__in=message_ids))
    if unattached_of is not None:
        conditions.append(Q(uploader_id=unattached_of, message_id__isnull=True))
    if not conditions:
        return 0
    query = functools.reduce(operator.or_, conditions)
    released = Attachment.objects.filter(query, released_at__isnull=True).update(released_at=timezone.now())
    if released:
        attachments_purge_on_commit()
    return released


def attachments_purge_on_commit() -> None:
    """Queue the purge after the current transaction commits (now, outside one)."""
    transaction.on_commit(attachments_purge_enqueue)


def attachments_purge_enqueue() -> None:
    """Queue the ``attachments.purge`` task; best effort: the periodic sweep runs it anyway."""
    from .tasks import purge  # the task module imports this one

    try:
        purge.apply_async(retry=False)
    except Exception as exc:  # noqa: BLE001 - the sweep purges what this one would have
        log.warning("attachments.purge not queued (Celery broker: %s); the sweep will do it", exc)


# -- holds (the drawer) ----------------------------------------------------------------------------
def attachments_hold(*, user_id: int, attachment_ids: list[int], holder: str) -> None:
    """``holder`` (e.g. ``drawer:12``) keeps these attachments for ``user_id`` until let go."""
    if not attachment_ids:
        return
    # Only what is still there: one released meanwhile (its message deleted) may be purged already.
    live = Attachment.objects.filter(pk__in=attachment_ids, released_at__isnull=True).values_list("pk", flat=True)
    AttachmentHold.objects.bulk_create(
        [AttachmentHold(attachment_id=a, user_id=user_id, holder=holder) for a in live],
        ignore_conflicts=True,
    )


def attachments_unhold(*, holders: list[str]) -> int:
    """Let go of what these holders kept; files no longer kept by anyone go after commit."""
    if not holders:
        return 0
    dropped = AttachmentHold.objects.filter(holder__in=holders).delete()[0]
    if dropped:
        attachments_purge_on_commit()
    return dropped


# -- purging (Celery) ------------------------------------------------------------------------------
def _purgeable():
    held = AttachmentHold.objects.filter(attachment_id=OuterRef("pk"))
    return Attachment.objects.filter(Q(released_at__isnull=False) | Q(room__isnull=True)).filter(~Exists(held))


def attachments_purge(*, limit: int | None = None) -> tuple[int, bool]:
    """Delete up to ``limit`` (CHAT_ATTACHMENT_PURGE_CHUNK) released attachments that nobody holds,
    rows first and their files after the commit. Returns (how many, whether more may be left)."""
    limit = limit or settings.CHAT_ATTACHMENT_PURGE_CHUNK
    with transaction.atomic():
        # SKIP LOCKED: two runs share the work; an attachment a send is claiming is left alone.
        rows = list(
            _purgeable()
            .select_for_update(skip_locked=True)
            .order_by("pk")
            .values_list("pk", "file", "thumbnail")[:limit]
        )
        if not rows:
            return 0, False
        Attachment.objects.filter(pk__in=[pk for pk, _, _ in rows]).delete()
        names = [name for _, *files in rows for name in files if name]
        transaction.on_commit(lambda: _delete_files(names))
    log.info("purged %d attachments", len(rows))
    return len(rows), len(rows) == limit


def attachments_sweep() -> int:
    """Release the uploads never sent within CHAT_ATTACHMENT_UNATTACHED_TTL_S (the periodic task)."""
    cutoff = timezone.now() - timedelta(seconds=settings.CHAT_ATTACHMENT_UNATTACHED_TTL_S)
    with transaction.atomic():
        released = Attachment.objects.filter(
            message_id__isnull=True, released_at__isnull=True, created_at__lt=cutoff
        ).update(released_at=timezone.now())
    if released:
        log.info("released %d uploads never sent", released)
    return released


def _delete_files(names: list[str]) -> None:
    for name in names:
        try:
            default_storage.delete(name)
        except Exception:
            log.exception("could not delete the stored file %s", name)
