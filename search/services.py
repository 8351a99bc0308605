"""Writes to the search index: keeping it in step with the message table, and rebuilding it.

The index follows the database, not the envelopes: each change on ``chat.messages`` only says
which messages to look at again, and their documents are made from the rows as they are now.
So the order of a batch does not matter, a replay changes nothing, a send that ``chat-persist``
refused (never stored) indexes nothing, and an edit always lands with its newest words. The
``chat-index`` consumer reads a record only after ``chat-persist`` has committed it
(``IndexWorker.follows``), so the rows are there to be read.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.db import connection

from chat_messages.models import Message

from .backends.base import Doc, get_backend

log = logging.getLogger(__name__)

MESSAGES = Message._meta.db_table
_COLUMNS = "id, room_id, sender_id, created_at, edited_at, body, kind, deleted_at"
REBUILD_BATCH = 2000


def _doc(row) -> Doc | None:
    """The document of a message row, or None when it is not searchable (deleted, a system line, no text)."""
    pk, room_id, sender_id, created_at, edited_at, body, kind, deleted_at = row
    if deleted_at is not None or kind != Message.Kind.TEXT or not body:
        return None
    version = int((edited_at or created_at).timestamp() * 1_000_000)
    return Doc(message_id=pk, room_id=room_id, sender_id=sender_id, created_at=created_at, body=body, version=version)


def _apply(rows: list, *, asked: Iterable[int] = ()) -> tuple[int, int]:
    """Upsert the searchable rows' documents and delete the others' (and those of ``asked`` ids
    no longer in the table). Returns (upserted, deleted)."""
    docs, gone = [], set(asked)
    for row in rows:
        doc = _doc(row)
        gone.discard(row[0])
        if doc is None:
            gone.add(row[0])
        else:
            docs.append(doc)
    backend = get_backend()
    backend.upsert(docs)
    backend.delete(sorted(gone))
    return len(docs), len(gone)


def docs_sync(
    *,
    message_ids: Iterable[int] = (),
    send_keys: Iterable[tuple[int, str]] = (),
    room_seqs: Iterable[tuple[int, int]] = (),
) -> tuple[int, int]:
    """Bring these messages' documents in line with their rows: by id, by (sender, client_msg_id)
    as a send names them, or by (room, seq) as an edit or a deletion does. Returns (upserted, deleted).

    One query per kind of key (two for sends: the sender may be gone), each served by a unique
    index of the message table.
    """
    message_ids, send_keys, room_seqs = list(message_ids), list(send_keys), list(room_seqs)
    rows: list = []
    with connection.cursor() as cursor:
        if message_ids:
            cursor.execute(f"SELECT {_COLUMNS} FROM {MESSAGES} WHERE id = ANY(%s::bigint[])", [message_ids])
            rows.extend(cursor.fetchall())
        if send_keys:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM {MESSAGES} WHERE (sender_id, client_msg_id) IN"
                " (SELECT * FROM unnest(%s::bigint[], %s::uuid[]))",
                [[k[0] for k in send_keys], [k[1] for k in send_keys]],
            )
            rows.extend(cursor.fetchall())
            # The sender's account deleted since: the message stays, without its sender, and must
            # still be indexed. (Another sender's message with the same id is just looked at again.)
            cursor.execute(
                f"SELECT {_COLUMNS} FROM {MESSAGES} WHERE sender_id IS NULL AND client_msg_id = ANY(%s::uuid[])",
                [[k[1] for k in send_keys]],
            )
            rows.extend(cursor.fetchall())
        if room_seqs:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM {MESSAGES} WHERE (room_id, seq) IN"
                " (SELECT * FROM unnest(%s::bigint[], %s::bigint[]))",
                [[k[0] for k in room_seqs], [k[1] for k in room_seqs]],
            )
            rows.extend(cursor.fetchall())
    return _apply(rows, asked=message_ids)


def room_docs_delete(*, room_id: int) -> None:
    """A deleted room's messages are gone: so are their documents."""
    get_backend().delete_room(room_id)


def room_docs_expire(*, room_id: int, from_seq: int, up_to_seq: int) -> int:
    """Retention deleted a span of the room's messages: their documents go. Looked up by the
    (room, seq) unique index, in batches; only the deleted ones (a message the span covers that
    still stands was not expired). Returns how many documents were asked to go."""
    backend = get_backend()
    removed = 0
    after = from_seq - 1
    while after < up_to_seq:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id, seq FROM {MESSAGES} WHERE room_id = %s AND seq > %s AND seq <= %s"
                " AND deleted_at IS NOT NULL ORDER BY seq LIMIT %s",
                [room_id, after, up_to_seq, REBUILD_BATCH],
            )
            rows = cursor.fetchall()
        if not rows:
            break
        backend.delete([row[0] for row in rows])
        removed += len(rows)
        after = rows[-1][1]
    return removed


def sender_docs_forget(*, user_id: int, erase_messages: bool) -> None:
    """A deleted account: its messages' documents go when their words were erased, and otherwise
    stay without a sender (the sender filter must not find a deleted account)."""
    get_backend().forget_sender(user_id, drop=erase_messages)


@dataclass
class RebuildResult:
    indexed: int = 0  # documents written
    removed: int = 0  # documents of messages that are gone, swept at the end
    seconds: float = 0.0


def index_rebuild(
    *, clear: bool = False, batch: int = REBUILD_BATCH, progress: Callable[[int, int], None] | None = None
) -> RebuildResult:
    """Index every message from the database, then remove the documents of messages that are gone.

    Safe while chat goes on: documents carry versions (an edit the consumer indexed meanwhile is
    not undone), and a message deleted meanwhile is removed by the consumer or, at the latest, by
    the final sweep; the selector never shows it in between. ``clear`` empties the index first
    (searches find less until the rebuild is done). ``progress(done, total)`` is called per batch.
    """
    started = time.monotonic()
    backend = get_backend()
    backend.ensure()
    if clear:
        backend.clear()
    result = RebuildResult()
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*), coalesce(max(id), 0) FROM {MESSAGES}")
        total, last_id = cursor.fetchone()
    done, after = 0, 0
    while after < last_id:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT {_COLUMNS} FROM {MESSAGES} WHERE id > %s AND id <= %s ORDER BY id LIMIT %s",
                [after, last_id, batch],
            )
            rows = cursor.fetchall()
        if not rows:
            break
        result.indexed += _apply(rows)[0]
        done += len(rows)
        after = rows[-1][0]
        if progress:
            progress(done, total)
    result.removed += _sweep_gone(batch=batch)
    result.seconds = time.monotonic() - started
    return result


def _sweep_gone(*, batch: int) -> int:
    """Delete the documents whose message no longer exists (a room deleted while nobody indexed)."""
    backend = get_backend()
    removed, after = 0, 0
    while ids := backend.ids_after(after, batch):
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT id FROM {MESSAGES} WHERE id = ANY(%s::bigint[]) AND deleted_at IS NULL AND kind = %s",
                [ids, Message.Kind.TEXT],
            )
            alive = {row[0] for row in cursor.fetchall()}
        gone = [pk for pk in ids if pk not in alive]
        backend.delete(gone)
        removed += len(gone)
        after = ids[-1]
    return removed
