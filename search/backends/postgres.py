"""The search index in PostgreSQL: the ``search_messagedoc`` table (search.models.MessageDoc).

A GIN index over each message's character bigrams (search.text.tokens) finds the candidates; a
``LIKE`` on the folded text keeps those that hold every term as written. No extension is needed:
the lexemes are made in Python and stored as a tsvector without positions.
"""

from __future__ import annotations

from django.db import connection

from .. import text
from ..models import MessageDoc
from .base import Doc, Query, SearchBackend

TABLE = MessageDoc._meta.db_table
# "relevance" ranks the newest this-many matches: chat search favours what is recent, and ranking
# every match of a common word would read them all.
RELEVANCE_WINDOW = 1000


class PostgresBackend(SearchBackend):
    name = "postgres"

    def ensure(self) -> None:
        # The table comes with the migrations.
        return None

    def upsert(self, docs: list[Doc]) -> None:
        if not docs:
            return
        # One INSERT ... ON CONFLICT may not touch a row twice, and a batch can name a message
        # twice (its send and its edit): the highest version of each goes. In id order, so that
        # two writers (the consumer and a rebuild) lock rows they share in one order, not in a deadlock.
        newest: dict[int, Doc] = {}
        for doc in docs:
            if doc.message_id not in newest or doc.version >= newest[doc.message_id].version:
                newest[doc.message_id] = doc
        docs = [newest[pk] for pk in sorted(newest)]
        folded = [text.fold(d.body) for d in docs]
        with connection.cursor() as cursor:
            # Lexemes are \w runs' pieces: no spaces, so one space-joined string per row carries them
            # through unnest (a ragged array cannot).
            cursor.execute(
                f"INSERT INTO {TABLE} AS d (message_id, room_id, sender_id, created_at, version, folded, tokens)"
                " SELECT id, room, sender, created, version, folded,"
                "        array_to_tsvector(string_to_array(lexemes, ' '))"
                " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::timestamptz[], %s::bigint[],"
                "             %s::text[], %s::text[]) AS v(id, room, sender, created, version, folded, lexemes)"
                " ON CONFLICT (message_id) DO UPDATE SET room_id = EXCLUDED.room_id,"
                "   sender_id = EXCLUDED.sender_id, created_at = EXCLUDED.created_at, version = EXCLUDED.version,"
                "   folded = EXCLUDED.folded, tokens = EXCLUDED.tokens"
                " WHERE d.version <= EXCLUDED.version",
                [
                    [d.message_id for d in docs],
                    [d.room_id for d in docs],
                    [d.sender_id for d in docs],
                    [d.created_at for d in docs],
                    [d.version for d in docs],
                    folded,
                    [" ".join(text.tokens(f)) for f in folded],
                ],
            )

    def delete(self, message_ids: list[int]) -> None:
        if message_ids:
            with connection.cursor() as cursor:
                cursor.execute(f"DELETE FROM {TABLE} WHERE message_id = ANY(%s::bigint[])", [list(message_ids)])

    def delete_room(self, room_id: int) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"DELETE FROM {TABLE} WHERE room_id = %s", [room_id])

    def forget_sender(self, user_id: int, *, drop: bool) -> None:
        with connection.cursor() as cursor:
            if drop:
                cursor.execute(f"DELETE FROM {TABLE} WHERE sender_id = %s", [user_id])
            else:
                # A version up: a rebuild that read the row before the deletion cannot bring the sender back.
                cursor.execute(
                    f"UPDATE {TABLE} SET sender_id = NULL, version = version + 1 WHERE sender_id = %s", [user_id]
                )

    def search(self, query: Query) -> list[int]:
        if not query.room_ids or not query.terms:
            return []
        where = ["room_id = ANY(%s::bigint[])"]
        params: list = [list(query.room_ids)]
        matcher = text.tsquery(query.terms)
        if matcher is not None:
            where.append("tokens @@ %s::tsquery")
            params.append(matcher)
        for term in query.terms:
            where.append("folded LIKE %s")
            params.append(text.like_pattern(term))
        if query.sender_id is not None:
            where.append("sender_id = %s")
            params.append(query.sender_id)
        if query.since is not None:
            where.append("created_at >= %s")
            params.append(query.since)
        if query.until is not None:
            where.append("created_at < %s")
            params.append(query.until)
        if query.order == "recent" and query.before_id is not None:
            where.append("message_id < %s")
            params.append(query.before_id)
        condition = " AND ".join(where)
        # One room: newest first by (room_id, message_id), an order only the search_doc_room index
        # gives, so its hits come from that room's entries. By message_id alone the planner may walk
        # the primary key down every room's newer messages, taking the room's to be spread evenly
        # among them: a quiet room's are not, and the walk grows with the whole table. ANY, not "=",
        # keeps room_id in the order (against a constant the planner drops it, and the walk is back).
        order = "room_id DESC, message_id DESC" if len(query.room_ids) == 1 else "message_id DESC"
        with connection.cursor() as cursor:
            if query.order == "relevance":
                cursor.execute(
                    f"SELECT message_id, folded FROM {TABLE} WHERE {condition} ORDER BY {order} LIMIT %s",
                    [*params, RELEVANCE_WINDOW],
                )
                ranked = sorted(
                    cursor.fetchall(), key=lambda row: (text.relevance(row[1], query.terms), row[0]), reverse=True
                )
                return [row[0] for row in ranked[query.offset : query.offset + query.limit + 1]]
            cursor.execute(
                f"SELECT message_id FROM {TABLE} WHERE {condition} ORDER BY {order} LIMIT %s",
                [*params, query.limit + 1],
            )
            return [row[0] for row in cursor.fetchall()]

    def ids_after(self, after_id: int, limit: int) -> list[int]:
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT message_id FROM {TABLE} WHERE message_id > %s ORDER BY message_id LIMIT %s", [after_id, limit]
            )
            return [row[0] for row in cursor.fetchall()]

    def stats(self) -> dict:
        with connection.cursor() as cursor:
            # The planner's estimate: an exact count of a million-row table is a full scan.
            cursor.execute(
                "SELECT greatest(reltuples, 0)::bigint, pg_total_relation_size(oid) FROM pg_class WHERE oid = %s::regclass",
                [TABLE],
            )
            estimate, size = cursor.fetchone()
            if estimate < 100_000:
                cursor.execute(f"SELECT count(*) FROM {TABLE}")
                estimate = cursor.fetchone()[0]
        return {"backend": self.name, "documents": estimate, "size_bytes": size}

    def clear(self) -> None:
        with connection.cursor() as cursor:
            cursor.execute(f"TRUNCATE {TABLE}")
