"""Reads about attachments: who may fetch one, which may be sent, and the shapes clients get."""

from __future__ import annotations

from django.conf import settings
from django.core import signing
from django.db.models import Exists, OuterRef

from rooms.models import Participant
from streams.errors import INVALID, NOT_FOUND, ChatError
from streams.realtime.protocol import BIGINT_MAX, id_validate

from .images import THUMBNAIL_EXT
from .models import Attachment, AttachmentHold

NOT_FOUND_DETAIL = "No such attachment."
# Signed URLs are signed apart from everything else this server signs.
URL_SALT = "attachments.url"
FILE, THUMBNAIL = "f", "t"


# -- the shapes ------------------------------------------------------------------------------------
def file_url(attachment_id: int) -> str:
    return f"/api/v1/attachments/{attachment_id}/file/"


def thumbnail_url(attachment_id: int) -> str:
    return f"/api/v1/attachments/{attachment_id}/thumbnail/"


def attachment_snapshot(attachment: Attachment) -> dict:
    """What a message (and a drawer entry) keeps of an attachment: its facts, no URL."""
    return {
        "id": attachment.pk,
        "kind": attachment.kind,
        "name": attachment.name,
        "content_type": attachment.content_type,
        "size": attachment.size,
        "width": attachment.width,
        "height": attachment.height,
    }


def attachments_payload(snapshots: list[dict] | None) -> list[dict]:
    """A message's (or drawer entry's) ``attachments`` as clients get them: each with its URLs."""
    if not snapshots:
        return []
    # Field by field: a snapshot read back from jsonb has its keys in jsonb's order, not ours.
    return [
        {
            "id": s["id"],
            "kind": s["kind"],
            "name": s["name"],
            "content_type": s["content_type"],
            "size": s["size"],
            "width": s["width"],
            "height": s["height"],
            "url": file_url(s["id"]),
            "thumbnail_url": thumbnail_url(s["id"]) if s["kind"] == Attachment.Kind.IMAGE else None,
        }
        for s in snapshots
    ]


def attachment_payload(attachment: Attachment) -> dict:
    """The attachment object of the upload's answer: ``{id, room, kind, name, ..., created_at}``."""
    snapshot = attachment_snapshot(attachment)
    return {
        "id": attachment.pk,
        "room": attachment.room_id,
        **{k: v for k, v in attachments_payload([snapshot])[0].items() if k != "id"},
        "created_at": attachment.created_at.isoformat(),
    }


def attachment_detail_payload(attachment: Attachment, *, user_id: int) -> dict:
    """The attachment object plus URLs that work without credentials until they expire."""
    return {
        **attachment_payload(attachment),
        "signed_url": signed_url(attachment, user_id=user_id, variant=FILE),
        "signed_thumbnail_url": signed_url(attachment, user_id=user_id, variant=THUMBNAIL)
        if attachment.thumbnail
        else None,
    }


# -- signed URLs -----------------------------------------------------------------------------------
def signed_url(attachment: Attachment, *, user_id: int, variant: str) -> str:
    """``/files/<token>/<name>``: the file (or thumbnail) for whoever has the link, for
    CHAT_ATTACHMENT_URL_TTL_S. The token names the user it was made for: it stops working as soon
    as that user may no longer see the attachment (left the room, the message was deleted)."""
    token = signing.TimestampSigner(salt=URL_SALT).sign_object([attachment.pk, user_id, variant], compress=False)
    name = f"thumbnail{THUMBNAIL_EXT}" if variant == THUMBNAIL else _url_name(attachment.name)
    return f"/files/{token}/{name}"


def _url_name(name: str) -> str:
    from urllib.parse import quote

    return quote(name.replace("/", "_"), safe="") or "file"


def signed_url_open(token: str) -> tuple[int, int, str] | None:
    """(attachment id, user id, variant) of a valid, unexpired token; None for anything else."""
    try:
        value = signing.TimestampSigner(salt=URL_SALT).unsign_object(token, max_age=settings.CHAT_ATTACHMENT_URL_TTL_S)
        attachment_id, user_id, variant = value
    except (signing.BadSignature, ValueError, TypeError):
        return None
    ints_ok = all(
        isinstance(v, int) and not isinstance(v, bool) and 0 < v <= BIGINT_MAX for v in (attachment_id, user_id)
    )
    if not ints_ok or variant not in (FILE, THUMBNAIL):
        return None
    return attachment_id, user_id, variant


# -- who may see one --------------------------------------------------------------------------------
def attachment_get_visible(*, attachment_id: int, user_id: int) -> Attachment:
    """An attachment the user may fetch now, else ``not_found`` (the same for one that does not exist).

    Checked on every request, in one query: a member of its room may see one attached to a
    message that stands (and its uploader one not sent yet); whoever holds it in their drawer
    may see it whatever became of the message or the room. Only while the user's account is
    active: a signed URL (no credentials) names its user, and a deactivated account's links must
    stop with its sessions and tokens, not live on until they expire.
    """
    if not 0 < attachment_id <= BIGINT_MAX:
        raise ChatError(NOT_FOUND, NOT_FOUND_DETAIL)
    attachment = (
        Attachment.objects.filter(pk=attachment_id)
        .annotate(
            held=Exists(
                AttachmentHold.objects.filter(attachment_id=OuterRef("pk"), user_id=user_id, user__is_active=True)
            ),
            member=Exists(
                Participant.objects.filter(room_id=OuterRef("room_id"), user_id=user_id, user__is_active=True)
            ),
        )
        .first()
    )
    if attachment is None or not _visible(attachment, user_id=user_id):
        raise ChatError(NOT_FOUND, NOT_FOUND_DETAIL)
    return attachment


def _visible(attachment: Attachment, *, user_id: int) -> bool:
    if attachment.held:
        return True
    if attachment.released_at is not None or attachment.room_id is None or not attachment.member:
        return False
    return attachment.message_id is not None or attachment.uploader_id == user_id


# -- sending ---------------------------------------------------------------------------------------
def attachment_ids_validate(value) -> list[int]:
    """A send's ``attachments``: absent (no attachments), or a list of distinct attachment ids."""
    if value is None:
        return []
    limit = settings.CHAT_ATTACHMENTS_PER_MESSAGE
    if not isinstance(value, list):
        raise ChatError(INVALID, "`attachments` must be a list of attachment ids.")
    if len(value) > limit:
        raise ChatError(INVALID, f"A message carries at most {limit} attachments.")
    ids = [id_validate(v, "attachments") for v in value]
    if len(set(ids)) != len(ids):
        raise ChatError(INVALID, "`attachments` names an attachment twice.")
    return ids


def attachments_sendable(*, user_id: int, room_id: int, ids: list[int]) -> list[Attachment]:
    """The attachments a send names, in its order, if each is one the sender uploaded to that
    room and not yet attached to a message; else ``invalid`` naming the first that is not.

    For a new send only: a re-send of a message stored already is not checked at all (its key
    is a duplicate that storage skips, whatever became of its files since).
    """
    if not ids:
        return []
    found = {a.pk: a for a in Attachment.objects.filter(pk__in=ids)}
    for attachment_id in ids:
        problem = attachment_problem(found.get(attachment_id), user_id=user_id, room_id=room_id)
        if problem:
            raise ChatError(INVALID, f"Attachment {attachment_id} {problem}.")
    return [found[i] for i in ids]


def attachment_problem(attachment: Attachment | None, *, user_id: int, room_id: int) -> str | None:
    """Why the attachment cannot go with a message of ``user_id`` in ``room_id``; None when it can."""
    if attachment is None or attachment.uploader_id != user_id or attachment.room_id != room_id:
        return "is not one you uploaded to this room"
    if attachment.message_id is not None:
        return "is attached to another message already"
    if attachment.released_at is not None:
        return "was deleted"
    return None
