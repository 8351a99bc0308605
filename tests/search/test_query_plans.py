"""The PostgreSQL index's queries as the planner runs them, on enough rows for the plan to matter.

Plans, not timings: a plan that reads the whole table to find one room's newest hits is as fast
as any other on a test's few rows, and a thousand times slower on a server's millions.
"""

from __future__ import annotations

import pytest
from django.db import connection

from search.backends.base import Query, get_backend
from search.models import MessageDoc

pytestmark = pytest.mark.django_db

TABLE = MessageDoc._meta.db_table


def plan_of_search(query: Query) -> tuple[list[int], str]:
    """The backend's answer to ``query`` and the plan of the statement it ran for it."""
    statements = []

    def record(execute, sql, params, many, context):
        statements.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        ids = get_backend().search(query)
    (sql, params), *_ = [s for s in statements if TABLE in s[0]]
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}", params)
        return ids, "\n".join(row[0] for row in cursor.fetchall())


def test_one_rooms_search_walks_that_room_not_the_whole_table():
    """A quiet room (its messages older than everyone else's) searched for a common word: its
    newest hits come from the (room_id, message_id) index, not from a walk down every newer
    message of every other room."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (message_id, room_id, sender_id, created_at, version, folded, tokens)"
            " SELECT i, CASE WHEN i <= 10000 THEN 1 ELSE 2 + i % 50 END, 1, now(), 1, 'hello ' || i,"
            "        array_to_tsvector(ARRAY['he', 'el', 'll', 'lo', 'o'])"
            " FROM generate_series(1, 60000) AS i"
        )
        cursor.execute(f"ANALYZE {TABLE}")

    ids, plan = plan_of_search(Query(terms=["hello"], room_ids=[1], limit=20))

    assert ids == list(range(10000, 9979, -1))
    assert "search_messagedoc_pkey" not in plan, plan
