"""``python -m bench.search``: three ways of matching chat text in PostgreSQL, on the same data, in one run.

Fills a fresh database of its own embedded stack (bench/stack.py) with real Korean and English
chat-like messages (bench/corpus.py) by COPY, then builds and queries, side by side:

- ``simple``: today's whole-word search, a GIN index on ``to_tsvector('simple', body)`` of the
  message table, queried as chat_messages/search.py does (``plainto_tsquery``);
- ``trgm``: pg_trgm, a GIN ``gin_trgm_ops`` index on the folded text (search.text.fold) in a
  document table shaped like the search app's, one ``LIKE '%term%'`` per term;
- ``ngram``: the search app's own PostgreSQL backend (search/backends/postgres.py: character
  bigrams in a tsvector, then a LIKE on the folded text), filled by ``search.services.index_rebuild``
  and queried through ``backend.search``: the product's code path;
- ``bitri``: a what-if beside it, not the product: the same table and query shape with each
  word's trigrams indexed too, and terms of 3 or more characters looked up by their trigrams
  (2-character terms by their bigram, as ``ngram`` does).

For each: index build time and size, query p50/p99 (recent first, 20 hits, over a user's rooms and
over one room) for a few kinds of term, and recall against a substring count in Python. Timings
compare within a run only; the machine is shared and noisy.
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import os
import platform
import random
import re
import shlex
import signal
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from search.text import _quote, fold
from search.text import like_pattern as _like

from . import corpus
from .stack import ROOT, BenchStack

# The queries: (key, text, what it stands for). Picked from this corpus (bench/corpus.py, fixed by
# the konlpy wheel and Python's standard library): the run prints each term's document frequency.
QUERIES = (
    ("ko_common", "법률", "common Korean 2-syllable noun ('law'; 3rd most frequent 2-Hangul substring)"),
    ("ko_common3", "대통령", "common Korean 3-syllable noun ('president')"),
    ("ko_rare", "농업", "rare Korean 2-syllable noun ('agriculture'): pg_trgm finds no trigram in it"),
    ("ko_rare3", "선거구", "rare Korean 3-syllable noun ('electoral district'): trigrams can serve it"),
    ("en_partial", "mod", "common English partial word (module, mode, modify)"),
    ("en_rare", "telnet", "rare English word"),
    ("two_terms", "법률 헌법", "two Korean terms ('law' and 'constitution'), both required"),
)
METHODS = ("simple", "trgm", "ngram", "bitri")
SCOPES = ("user", "room")  # all of a user's rooms (about 10), one room
LIMIT = 20  # one page, as the REST default
TIMEOUT_S = 120  # a statement running longer is recorded as a timeout


# -- data ------------------------------------------------------------------------------------------
@dataclass
class Population:
    users: dict[int, list[int]] = field(default_factory=dict)  # user id -> their room ids
    rooms: list[int] = field(default_factory=list)
    first_id: int = 0
    folded: list[str] = field(default_factory=list)  # message i's folded body: id first_id + i
    room_of: list[int] = field(default_factory=list)
    sender_of: list[int] = field(default_factory=list)
    created_of: list[datetime] = field(default_factory=list)
    timings: dict = field(default_factory=dict)


def _copy_escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


class _CopySource:
    """A file-like object COPY reads from, generating its rows as it is read (PostgreSQL stores one
    chunk while Python makes the next, on the other core)."""

    def __init__(self, rows) -> None:
        self.rows = rows
        self.buffer = b""

    def read(self, size: int = 65536) -> bytes:
        size = max(size, 65536)
        parts, length = [self.buffer], len(self.buffer)
        for row in self.rows:
            line = ("\t".join(row) + "\n").encode()
            parts.append(line)
            length += len(line)
            if length >= size:
                break
        data = b"".join(parts)
        self.buffer = data[size:]
        return data[:size]


def populate(*, count: int, seed: int, rooms: int, users: int, rooms_per_user: int, log) -> Population:
    """Users, group rooms and ``count`` messages in the bench database, messages by COPY."""
    from django.db import connection

    from .population import rooms_create, users_create

    rng = random.Random(seed)
    pop = Population()
    started = time.perf_counter()
    user_ids = [uid for uid, _ in users_create(prefix="searcher", count=users)]
    # Each user takes rooms_per_user seats; rooms get about users * rooms_per_user / rooms members.
    seats = [r for r in range(rooms) for _ in range(max(1, users * rooms_per_user // rooms))]
    rng.shuffle(seats)
    members: list[list[int]] = [[] for _ in range(rooms)]
    for index, uid in enumerate(user_ids):
        for r in sorted(set(seats[index * rooms_per_user : (index + 1) * rooms_per_user])):
            members[r].append(uid)
    for r in range(rooms):
        if not members[r]:
            members[r].append(user_ids[rng.randrange(len(user_ids))])
    pop.rooms = rooms_create(prefix="search room ", member_ids=members)
    for room_id, ids in zip(pop.rooms, members, strict=True):
        for uid in ids:
            pop.users.setdefault(uid, []).append(room_id)
    pop.timings["users_rooms_s"] = time.perf_counter() - started
    log(f"search | {users} users, {rooms} rooms ({pop.timings['users_rooms_s']:.1f} s)")

    with connection.cursor() as cursor:
        # Today's index, if the migrations still make it: built again below, timed, as method "simple".
        cursor.execute("DROP INDEX IF EXISTS message_body_search_idx")
        cursor.execute("SELECT id, last_seq FROM rooms_room WHERE id = ANY(%s)", [pop.rooms])
        seqs = dict(cursor.fetchall())
        cursor.execute("SELECT coalesce(max(id), 0) FROM chat_messages_message")
        before_max = cursor.fetchone()[0]
    # Rooms are not equally busy.
    weights = [rng.uniform(0.2, 1.8) for _ in pop.rooms]
    cumulative = list(itertools.accumulate(weights))
    start_at = datetime.now(UTC) - timedelta(days=180)
    step = timedelta(days=180) / max(1, count)

    def rows():
        for i, body in enumerate(corpus.messages(count, seed=seed)):
            r = bisect.bisect(cumulative, rng.random() * cumulative[-1])
            room_id = pop.rooms[min(r, len(pop.rooms) - 1)]
            room_members = members_by_room[room_id]
            sender = room_members[rng.randrange(len(room_members))]
            seqs[room_id] += 1
            created = start_at + step * i
            pop.folded.append(fold(body))
            pop.room_of.append(room_id)
            pop.sender_of.append(sender)
            pop.created_of.append(created)
            yield (
                str(room_id),
                str(seqs[room_id]),
                str(sender),
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                _copy_escape(body),
                created.isoformat(),
                "text",
            )

    members_by_room = dict(zip(pop.rooms, members, strict=True))
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.copy_expert(
            "COPY chat_messages_message (room_id, seq, sender_id, client_msg_id, body, created_at, kind) FROM STDIN",
            _CopySource(rows()),
        )
        cursor.execute(
            "UPDATE rooms_room AS r SET last_seq = v.seq FROM unnest(%s::bigint[], %s::bigint[]) AS v(id, seq)"
            " WHERE r.id = v.id",
            [list(seqs), list(seqs.values())],
        )
        cursor.execute("SELECT min(id), max(id), count(*) FROM chat_messages_message WHERE id > %s", [before_max])
        first, last, stored = cursor.fetchone()
    pop.timings["copy_s"] = time.perf_counter() - started
    if stored != count or last - first + 1 != count:
        raise RuntimeError(f"COPY stored {stored} messages with ids {first}..{last}; expected {count} in a row")
    pop.first_id = first
    log(f"search | {count:,} messages generated and copied in {pop.timings['copy_s']:.1f} s")
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM (ANALYZE) chat_messages_message")
    pop.timings["vacuum_s"] = time.perf_counter() - started
    return pop


# -- the three methods' indexes --------------------------------------------------------------------
def _relation_size(cursor, name: str) -> int:
    cursor.execute("SELECT pg_relation_size(%s::regclass)", [name])
    return int(cursor.fetchone()[0])


def _table_sizes(cursor, table: str) -> dict:
    """Heap (with TOAST) and each index of a table, in bytes."""
    cursor.execute(
        "SELECT pg_table_size(%s::regclass), coalesce(json_object_agg(i.indexrelid::regclass::text,"
        " pg_relation_size(i.indexrelid)), '{}') FROM pg_index i WHERE i.indrelid = %s::regclass",
        [table, table],
    )
    heap, indexes = cursor.fetchone()
    indexes = json.loads(indexes) if isinstance(indexes, str) else indexes
    return {"table": heap, "indexes": indexes, "total": heap + sum(indexes.values())}


def build_simple(pop: Population, log) -> dict:
    """Today's index: GIN on to_tsvector('simple', body) of the message table (migration 0002)."""
    from django.db import connection

    count = len(pop.folded)
    with connection.cursor() as cursor:
        started = time.perf_counter()
        cursor.execute(
            "CREATE INDEX bench_simple_idx ON chat_messages_message USING gin (to_tsvector('simple'::regconfig, body))"
        )
        seconds = time.perf_counter() - started
        size = _relation_size(cursor, "bench_simple_idx")
    log(f"search | simple: GIN built in {seconds:.1f} s ({count / seconds:,.0f} messages/s), {size / 2**20:.0f} MiB")
    return {
        "build_s": seconds,
        "build_rate": count / seconds,
        "index_bytes": size,
        "total_bytes": size,
        "note": "the index only: the text is the message table's own",
    }


def _build_doc_table(pop: Population, log, *, name: str, extra: str, values, index: str, what: str) -> dict:
    """A document table shaped like the search app's (folded text, room, sender, time; room and
    sender indexes) loaded by COPY, ``extra`` columns filled by ``values(i)``, then the GIN index
    ``index`` (its USING clause) built in one CREATE INDEX, timed apart from the load."""
    from django.db import connection

    count = len(pop.folded)
    table = f"bench_{name}_doc"
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE {table} (message_id bigint PRIMARY KEY, room_id bigint NOT NULL, sender_id bigint,"
            f" created_at timestamptz NOT NULL, version bigint NOT NULL, folded text NOT NULL{extra})"
        )
        columns = "message_id, room_id, sender_id, created_at, version, folded" + "".join(
            f", {column.split()[0]}" for column in extra.split(",") if column.strip()
        )
        started = time.perf_counter()
        rows = (
            (
                str(pop.first_id + i),
                str(pop.room_of[i]),
                str(pop.sender_of[i]),
                pop.created_of[i].isoformat(),
                str(int(pop.created_of[i].timestamp() * 1_000_000)),
                _copy_escape(pop.folded[i]),
                *values(i),
            )
            for i in range(count)
        )
        cursor.copy_expert(f"COPY {table} ({columns}) FROM STDIN", _CopySource(rows))
        cursor.execute(f"CREATE INDEX bench_{name}_room ON {table} (room_id, message_id)")
        cursor.execute(f"CREATE INDEX bench_{name}_sender ON {table} (sender_id)")
        load_s = time.perf_counter() - started
        started = time.perf_counter()
        cursor.execute(f"CREATE INDEX bench_{name}_gin ON {table} USING {index}")
        seconds = time.perf_counter() - started
        cursor.execute(f"VACUUM (ANALYZE) {table}")
        sizes = _table_sizes(cursor, table)
    gin = sizes["indexes"][f"bench_{name}_gin"]
    log(
        f"search | {name}: {what} in {load_s:.1f} s, GIN built in {seconds:.1f} s"
        f" ({count / seconds:,.0f} messages/s), {gin / 2**20:.0f} MiB (all {sizes['total'] / 2**20:.0f} MiB)"
    )
    return {
        "load_s": load_s,
        "build_s": seconds,
        "build_rate": count / seconds,
        "index_bytes": gin,
        "total_bytes": sizes["total"],
        "sizes": sizes,
    }


def build_trgm(pop: Population, log) -> dict:
    """pg_trgm: a document table like the search app's and a gin_trgm_ops index on its folded text."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    return _build_doc_table(
        pop, log, name="trgm", extra="", values=lambda i: (), index="gin (folded gin_trgm_ops)",
        what="documents loaded",
    )  # fmt: skip


def build_ngram(pop: Population, log) -> dict:
    """The search app's index, filled by its own rebuild (what ``manage.py search_rebuild`` and the
    consumer's upserts run). For a build figure comparable with the other two, the same GIN index
    is also made once more in one CREATE INDEX, as a migration would, and dropped again: the
    queries run on the index as the product's rebuild left it."""
    from django.db import connection

    from search.backends.base import get_backend
    from search.models import MessageDoc
    from search.services import index_rebuild

    count = len(pop.folded)
    table = MessageDoc._meta.db_table
    gin = next(i for i in MessageDoc._meta.indexes if i.fields == ["tokens"]).name
    backend = get_backend()
    last = [time.perf_counter()]

    def progress(done: int, total: int) -> None:
        if time.perf_counter() - last[0] > 30:
            last[0] = time.perf_counter()
            log(f"search | ngram: rebuild {done:,} of {total:,}")

    result = index_rebuild(clear=True, progress=progress)
    rebuild_s = result.seconds
    with connection.cursor() as cursor:
        cursor.execute(f"VACUUM (ANALYZE) {table}")
        sizes = _table_sizes(cursor, table)
        started = time.perf_counter()
        cursor.execute(f"CREATE INDEX bench_ngram_bulk ON {table} USING gin (tokens)")
        seconds = time.perf_counter() - started
        bulk_bytes = _relation_size(cursor, "bench_ngram_bulk")
        cursor.execute("DROP INDEX bench_ngram_bulk")
    log(
        f"search | ngram: index_rebuild {result.indexed:,} documents in {rebuild_s:.1f} s"
        f" ({result.indexed / rebuild_s:,.0f}/s), GIN {sizes['indexes'][gin] / 2**20:.0f} MiB"
        f" (all {sizes['total'] / 2**20:.0f} MiB); the same GIN in one CREATE INDEX {seconds:.1f} s"
        f" ({count / seconds:,.0f}/s), {bulk_bytes / 2**20:.0f} MiB"
    )
    return {
        "backend": backend.name,
        "rebuild_s": rebuild_s,
        "rebuild_rate": result.indexed / rebuild_s,
        "build_s": seconds,
        "build_rate": count / seconds,
        "bulk_index_bytes": bulk_bytes,
        "index_bytes": sizes["indexes"][gin],
        "total_bytes": sizes["total"],
        "sizes": sizes,
    }


_WORD = re.compile(r"\w+")


def bitri_tokens(folded: str) -> list[str]:
    """search.text.tokens plus each word's trigrams (the what-if "bitri")."""
    lexemes: set[str] = set()
    for word in _WORD.findall(folded):
        lexemes.add(word[-1])
        lexemes.update(word[i : i + 2] for i in range(len(word) - 1))
        lexemes.update(word[i : i + 3] for i in range(len(word) - 2))
    return sorted(lexemes)


def bitri_tsquery(terms: list[str]) -> str | None:
    """Each word of a term by its trigrams when it has 3 or more characters, else as ngram asks it."""
    parts: list[str] = []
    for term in terms:
        for word in _WORD.findall(term):
            if len(word) == 1:
                parts.append(f"{_quote(word)}:*")
            else:
                n = 3 if len(word) >= 3 else 2
                parts.extend(_quote(word[i : i + n]) for i in range(len(word) - n + 1))
    return " & ".join(dict.fromkeys(parts)) or None


def build_bitri(pop: Population, log) -> dict:
    """The what-if: a table like the search app's, its tsvector holding bigrams and trigrams."""
    return _build_doc_table(
        pop, log, name="bitri", extra=", tokens tsvector",
        values=lambda i: (_copy_escape(" ".join(_quote(lexeme) for lexeme in bitri_tokens(pop.folded[i]))),),
        index="gin (tokens)", what="documents made and loaded",
    )  # fmt: skip


def sql_for(method: str, q: str, room_ids: list[int], limit: int) -> tuple[str, list]:
    """The statement a method runs for one page (``ngram``: what its backend runs)."""
    if method == "simple":
        # As chat_messages/search.py asks it (a room list here, as the new selector passes it).
        return (
            "SELECT id FROM chat_messages_message WHERE room_id = ANY(%s::bigint[]) AND deleted_at IS NULL"
            " AND kind = 'text' AND to_tsvector('simple'::regconfig, body) @@ plainto_tsquery('simple'::regconfig, %s)"
            " ORDER BY id DESC LIMIT %s",
            [room_ids, q, limit + 1],
        )
    # One room: in the order of the (room_id, message_id) index, as the search app's backend asks
    # it (see search/backends/postgres.py), so that the ways of matching are compared, not orders.
    order = "room_id DESC, message_id DESC" if len(room_ids) == 1 else "message_id DESC"
    if method == "trgm":
        terms = _terms(q)
        likes = " AND ".join("folded LIKE %s" for _ in terms)
        return (
            f"SELECT message_id FROM bench_trgm_doc WHERE room_id = ANY(%s::bigint[]) AND {likes}"
            f" ORDER BY {order} LIMIT %s",
            [room_ids, *[_like(t) for t in terms], limit + 1],
        )
    if method == "bitri":
        terms = _terms(q)
        matcher = bitri_tsquery(terms)
        likes = "".join(" AND folded LIKE %s" for _ in terms)
        return (
            "SELECT message_id FROM bench_bitri_doc WHERE room_id = ANY(%s::bigint[])"
            + (" AND tokens @@ %s::tsquery" if matcher else "")
            + likes
            + f" ORDER BY {order} LIMIT %s",
            [room_ids, *([matcher] if matcher else []), *[_like(t) for t in terms], limit + 1],
        )
    raise ValueError(method)


def _terms(q: str) -> list[str]:
    try:
        from search.text import query_terms
    except ImportError:
        return list(dict.fromkeys(fold(t) for t in q.split()))
    return query_terms(q)


def run_query(method: str, q: str, room_ids: list[int], *, limit: int = LIMIT) -> tuple[float, list[int]]:
    """One page of hits, timed from the call to the last row in Python (seconds, ids)."""
    from django.db import connection

    started = time.perf_counter()
    if method == "ngram":
        from search.backends.base import Query, get_backend

        ids = get_backend().search(Query(terms=_terms(q), room_ids=room_ids, limit=limit))
    else:
        sql, params = sql_for(method, q, room_ids, limit)
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            ids = [row[0] for row in cursor.fetchall()]
    return time.perf_counter() - started, ids


def captured_sql(method: str, q: str, room_ids: list[int]) -> tuple[str, list]:
    """The statement a method sends (for EXPLAIN): the ngram backend's, caught on its way out."""
    if method != "ngram":
        return sql_for(method, q, room_ids, LIMIT)
    from django.db import connection

    caught: list = []

    def catch(execute, sql, params, many, context):
        caught.append((sql, params))
        return execute(sql, params, many, context)

    with connection.execute_wrapper(catch):
        run_query(method, q, room_ids)
    return caught[-1]


def plan_of(method: str, q: str, room_ids: list[int]) -> dict:
    """EXPLAIN ANALYZE of one page: the plan's shape in a line, and its execution time."""
    from django.db import connection

    sql, params = captured_sql(method, q, room_ids)
    with connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, params)
        raw = cursor.fetchone()[0]
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]
    nodes: list[str] = []

    def walk(node: dict) -> None:
        name = node["Node Type"]
        if node.get("Index Name"):
            name += f" {node['Index Name']}"
        if node.get("Rows Removed by Index Recheck"):
            name += f" (recheck removed {node['Rows Removed by Index Recheck']})"
        if node.get("Rows Removed by Filter"):
            name += f" (filter removed {node['Rows Removed by Filter']})"
        nodes.append(name)
        for child in node.get("Plans", []):
            walk(child)

    walk(plan["Plan"])
    return {"shape": " > ".join(nodes), "execution_ms": plan.get("Execution Time")}


def percentile(values: list[float], share: float) -> float:
    """Nearest rank: with fewer than 100 values, p99 is the slowest."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(share * len(ordered) + 0.5) - 1))]


def measure_queries(pop: Population, *, repetitions: int, methods: list[str], seed: int, log) -> dict:
    """Every query, scope and method, interleaved: repetition by repetition, method after method."""
    from django.db import connection

    rng = random.Random(seed + 1)
    users = sorted(pop.users)
    picks = []
    for _ in range(repetitions):
        user = users[rng.randrange(len(users))]
        picks.append((pop.users[user], pop.users[user][rng.randrange(len(pop.users[user]))]))
    with connection.cursor() as cursor:
        cursor.execute(f"SET statement_timeout = '{TIMEOUT_S}s'")
        # PostgreSQL has one core here: a parallel plan's workers would only share it with their
        # leader, and whether the planner picks one (it did for some runs and not others, as
        # ANALYZE's sample fell) would decide a query's time more than its matching method.
        cursor.execute("SET max_parallel_workers_per_gather = 0")
    times: dict = {m: {key: {s: [] for s in SCOPES} for key, _, _ in QUERIES} for m in methods}
    hits: dict = {m: {key: {s: [] for s in SCOPES} for key, _, _ in QUERIES} for m in methods}
    started = time.perf_counter()
    for rep, (user_rooms, one_room) in enumerate(picks):
        for key, q, _ in QUERIES:
            for scope in SCOPES:
                rooms = user_rooms if scope == "user" else [one_room]
                order = methods if rep % 2 == 0 else list(reversed(methods))
                for method in order:
                    try:
                        seconds, ids = run_query(method, q, rooms)
                    except Exception as exc:  # noqa: BLE001 - a timeout is a result, not the end of the run
                        log(f"search | {method} {key} {scope}: {type(exc).__name__}: {str(exc).strip()[:120]}")
                        seconds, ids = float(TIMEOUT_S), []
                    times[method][key][scope].append(seconds)
                    hits[method][key][scope].append(len(ids))
        if rep == 0 or time.perf_counter() - started > 60 and rep % 5 == 4:
            log(f"search | queries: repetition {rep + 1} of {repetitions} ({time.perf_counter() - started:.0f} s)")
    plans = {
        m: {
            key: {s: plan_of(m, q, picks[0][0] if s == "user" else [picks[0][1]]) for s in SCOPES}
            for key, q, _ in QUERIES
        }
        for m in methods
    }
    summary: dict = {}
    for m in methods:
        for key, _, _ in QUERIES:
            for scope in SCOPES:
                values = times[m][key][scope]
                summary.setdefault(m, {}).setdefault(key, {})[scope] = {
                    "p50_ms": percentile(values, 0.5) * 1000,
                    "p99_ms": percentile(values, 0.99) * 1000,
                    "mean_hits": statistics.fmean(hits[m][key][scope]),
                    "plan": plans[m][key][scope],
                }
    return {"summary": summary, "seconds": time.perf_counter() - started, "times_s": times}


# -- recall ----------------------------------------------------------------------------------------
def measure_recall(pop: Population, *, methods: list[str], log) -> dict:
    """How many messages each method finds for each query over every room, against the truth:
    the messages whose folded body holds every term (Python, over what was stored)."""
    from django.db import connection

    out: dict = {}
    for key, q, _ in QUERIES:
        terms = _terms(q)
        truth = sum(1 for body in pop.folded if all(t in body for t in terms))
        row = {"truth": truth}
        for method in methods:
            started = time.perf_counter()
            with connection.cursor() as cursor:
                if method == "simple":
                    cursor.execute(
                        "SELECT count(*) FROM chat_messages_message WHERE deleted_at IS NULL AND kind = 'text'"
                        " AND to_tsvector('simple'::regconfig, body) @@ plainto_tsquery('simple'::regconfig, %s)",
                        [q],
                    )
                    found = cursor.fetchone()[0]
                elif method == "trgm":
                    likes = " AND ".join("folded LIKE %s" for _ in terms)
                    cursor.execute(f"SELECT count(*) FROM bench_trgm_doc WHERE {likes}", [_like(t) for t in terms])
                    found = cursor.fetchone()[0]
                elif method == "bitri":
                    likes = "".join(" AND folded LIKE %s" for _ in terms)
                    cursor.execute(
                        f"SELECT count(*) FROM bench_bitri_doc WHERE tokens @@ %s::tsquery{likes}",
                        [bitri_tsquery(terms), *[_like(t) for t in terms]],
                    )
                    found = cursor.fetchone()[0]
                else:
                    from search import text
                    from search.models import MessageDoc

                    # The product's own call, every room and no page limit.
                    found = len(run_query("ngram", q, pop.rooms, limit=10**8)[1])
                    # What the bigrams alone let through, before the substring check.
                    cursor.execute(
                        f"SELECT count(*) FROM {MessageDoc._meta.db_table} WHERE tokens @@ %s::tsquery",
                        [text.tsquery(terms)],
                    )
                    row["ngram_candidates"] = cursor.fetchone()[0]
            row[method] = found
            row[f"{method}_s"] = time.perf_counter() - started
        out[key] = row
        log(f"search | recall {key} {q!r}: " + ", ".join(f"{k} {v:,}" for k, v in row.items() if isinstance(v, int)))
    return out


def term_ranks(pop: Population) -> dict:
    """Where the chosen Korean terms stand among all 2-Hangul substrings (documents holding them)."""
    counts: Counter = Counter()
    for body in pop.folded[:100_000]:
        counts.update(
            {
                body[i : i + 2]
                for i in range(len(body) - 1)
                if "\uac00" <= body[i] <= "\ud7a3" and "\uac00" <= body[i + 1] <= "\ud7a3"
            }
        )
    ranked = [term for term, _ in counts.most_common()]
    return {
        "top_2_hangul": counts.most_common(10),
        "ranks": {q: ranked.index(q) + 1 for _, q, _ in QUERIES if q in counts},
        "distinct_2_hangul": len(counts),
    }


# -- incremental indexing ------------------------------------------------------------------------
def measure_incremental(pop: Population, *, count: int, batch: int, seed: int, methods: list[str], log) -> dict:
    """What the chat-index consumer's steady work costs: ``count`` new documents in batches of
    ``batch`` into the 1M-document index (ngram: backend.upsert; trgm: the same statement without
    the lexemes), removed again afterwards; and for "simple", what its GIN costs each stored message."""
    from django.db import connection

    start_id = pop.first_id + len(pop.folded) + 10_000_000
    bodies = list(corpus.messages(count, seed=seed + 7))
    now = datetime.now(UTC)
    out: dict = {}
    for method in [m for m in methods if m in ("trgm", "ngram")]:
        started = time.perf_counter()
        for offset in range(0, count, batch):
            chunk = range(offset, min(count, offset + batch))
            if method == "ngram":
                from search.backends.base import Doc, get_backend

                get_backend().upsert(
                    [
                        Doc(
                            message_id=start_id + i,
                            room_id=pop.rooms[i % len(pop.rooms)],
                            sender_id=None,
                            created_at=now,
                            body=bodies[i],
                            version=1,
                        )
                        for i in chunk
                    ]
                )
            else:
                with connection.cursor() as cursor:
                    cursor.execute(
                        "INSERT INTO bench_trgm_doc AS d (message_id, room_id, sender_id, created_at, version, folded)"
                        " SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::timestamptz[],"
                        " %s::bigint[], %s::text[]) ON CONFLICT (message_id) DO UPDATE SET folded = EXCLUDED.folded"
                        " WHERE d.version <= EXCLUDED.version",
                        [
                            [start_id + i for i in chunk],
                            [pop.rooms[i % len(pop.rooms)] for i in chunk],
                            [None for _ in chunk],
                            [now for _ in chunk],
                            [1 for _ in chunk],
                            [fold(bodies[i]) for i in chunk],
                        ],
                    )
        seconds = time.perf_counter() - started
        out[method] = {"seconds": seconds, "rate": count / seconds}
        log(f"search | incremental {method}: {count:,} documents in {seconds:.1f} s ({count / seconds:,.0f}/s)")
        with connection.cursor() as cursor:
            table = "bench_trgm_doc" if method == "trgm" else "search_messagedoc"
            cursor.execute(f"DELETE FROM {table} WHERE message_id >= %s", [start_id])
    if "simple" in methods:
        out["simple"] = _incremental_simple(pop, bodies=bodies, batch=batch, log=log)
    return out


def _incremental_simple(pop: Population, *, bodies: list[str], batch: int, rounds: int = 3, log) -> dict:
    """What today's GIN costs the persist transaction per message of real text: the same rows
    into an empty copy of the message table (every index of it, GIN included) and into the copy
    without its GIN, alternated ``rounds`` times. (S3's bodies are three words each, "ingest N
    xxx...": they understate what a GIN entry of a real message costs.)"""
    from django.db import connection

    count = len(bodies)
    rng = random.Random(len(bodies))
    senders = {room_id: [] for room_id in pop.rooms}
    for user, rooms in pop.users.items():
        for room_id in rooms:
            senders[room_id].append(user)
    rows = []
    for i, body in enumerate(bodies):
        room_id = pop.rooms[i % len(pop.rooms)]
        rows.append(
            (
                room_id,
                i + 1,
                senders[room_id][i % len(senders[room_id])],
                str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                body,
            )
        )
    now = datetime.now(UTC)
    times: dict = {"with_gin": [], "without_gin": []}
    with connection.cursor() as cursor:
        # INCLUDING ALL: the identity, defaults, constraints and every index (the GIN "simple" too).
        cursor.execute("CREATE TABLE bench_simple_ingest (LIKE chat_messages_message INCLUDING ALL)")
        cursor.execute(
            "SELECT indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid"
            " JOIN pg_am a ON a.oid = c.relam WHERE i.indrelid = 'bench_simple_ingest'::regclass AND a.amname = 'gin'"
        )
        gin = cursor.fetchone()[0]
        definition = f"CREATE INDEX {gin} ON bench_simple_ingest USING gin (to_tsvector('simple'::regconfig, body))"
        for _ in range(rounds):
            for variant in ("with_gin", "without_gin"):
                cursor.execute("TRUNCATE bench_simple_ingest")
                cursor.execute(f"DROP INDEX IF EXISTS {gin}")
                if variant == "with_gin":
                    cursor.execute(definition)
                cursor.execute("CHECKPOINT")
                started = time.perf_counter()
                for offset in range(0, count, batch):
                    chunk = rows[offset : offset + batch]
                    cursor.execute(
                        "INSERT INTO bench_simple_ingest (room_id, seq, sender_id, client_msg_id, body, created_at, kind)"
                        " SELECT room, seq, sender, cmid, body, %s, 'text' FROM unnest(%s::bigint[], %s::bigint[],"
                        " %s::bigint[], %s::uuid[], %s::text[]) AS v(room, seq, sender, cmid, body)",
                        [now, *[list(column) for column in zip(*chunk, strict=True)]],
                    )
                times[variant].append(time.perf_counter() - started)
        cursor.execute("DROP TABLE bench_simple_ingest")
    with_s, without_s = statistics.median(times["with_gin"]), statistics.median(times["without_gin"])
    result = {
        "rate": count / with_s,
        "rate_without_gin": count / without_s,
        "gin_us_per_row": (with_s - without_s) / count * 1e6,
        "times_s": times,
    }
    log(
        f"search | incremental simple: {count:,} messages into a copy of the message table,"
        f" {result['rate']:,.0f}/s with its GIN, {result['rate_without_gin']:,.0f}/s without"
        f" (medians of {rounds}; the GIN {result['gin_us_per_row']:.0f} µs a message)"
    )
    return result


# -- report ----------------------------------------------------------------------------------------
def _mib(n: float) -> str:
    return f"{n / 2**20:,.0f} MiB"


def _ms(v: float) -> str:
    return f"{v:,.1f}" if v < 100 else f"{v:,.0f}"


def _incremental_cell(inc: dict, method: str) -> str:
    if method not in inc:
        return "-"
    if method == "simple":
        figure = inc["simple"]
        return (
            f"{figure['rate']:,.0f}/s into a copy of the message table, {figure['rate_without_gin']:,.0f}/s"
            f" without its GIN: {figure['gin_us_per_row']:.0f} µs a message, in the persist transaction"
        )
    return f"{inc[method]['rate']:,.0f}/s"


def markdown(results: dict) -> str:
    """The run as markdown tables (what bench/README.md's "Search" section quotes)."""
    methods = results["methods"]
    lines = [
        f"Run of {results['started']} ({results['seconds']:.0f} s), {results['machine']['cores']} cores,"
        f" Python {results['machine']['python']}, PostgreSQL on CPU {results['layout']['server_cpu']},"
        f" the bench on CPU {results['layout']['client_cpu']} (pinned: {results['layout']['pinned']}).",
        "",
        f"Command: `{results['command']}`, at commit {results['commit']}.",
        "",
        f"{results['messages']:,} messages ({results['corpus']['korean_sentences']:,} Korean and"
        f" {results['corpus']['english_sentences']:,} English sentences), {results['rooms']} rooms,"
        f" {results['users']} users; generated and copied in {results['timings']['copy_s']:.0f} s"
        f" ({results['messages'] / results['timings']['copy_s']:,.0f} messages/s).",
        "",
        "| | " + " | ".join(methods) + " |",
        "| --- |" + " --- |" * len(methods),
    ]
    build = results["build"]
    lines.append(
        "| GIN index built in one CREATE INDEX | "
        + " | ".join(f"{build[m]['build_s']:.1f} s ({build[m]['build_rate']:,.0f} messages/s)" for m in methods)
        + " |"
    )
    if "ngram" in build:
        lines.append(
            "| indexed by the product's `index_rebuild` (upserts of 2,000) | "
            + " | ".join(
                f"{build[m]['rebuild_s']:.0f} s ({build[m]['rebuild_rate']:,.0f} messages/s)" if m == "ngram" else "-"
                for m in methods
            )
            + " |"
        )
    inc = results.get("incremental", {})
    if inc:
        lines.append(
            f"| {results['incremental_count']:,} new documents into the index, batches of {results['incremental_batch']:,} | "
            + " | ".join(_incremental_cell(inc, m) for m in methods)
            + " |"
        )
    lines.append(
        "| GIN index size, as queried | "
        + " | ".join(
            _mib(build[m]["index_bytes"])
            + (
                f" (in one CREATE INDEX: {_mib(build[m]['bulk_index_bytes'])})"
                if "bulk_index_bytes" in build[m]
                else ""
            )
            for m in methods
        )
        + " |"
    )
    lines.append(
        "| document table (with TOAST) | "
        + " | ".join(
            _mib(build[m]["sizes"]["table"]) if "sizes" in build[m] else "- (the message table)" for m in methods
        )
        + " |"
    )
    lines.append(
        "| everything search adds (document table and its indexes) | "
        + " | ".join(_mib(build[m]["total_bytes"]) for m in methods)
        + " |"
    )
    lines += ["", "Query time, ms, p50 / p99 over the repetitions (20 hits, newest first):", ""]
    lines.append("| query | scope | " + " | ".join(methods) + " | mean hits (" + " / ".join(methods) + ") |")
    lines.append("| --- | --- |" + " --- |" * (len(methods) + 1))
    summary = results["queries"]["summary"]
    for key, q, _ in QUERIES:
        for scope in SCOPES:
            cells = [
                f"{_ms(summary[m][key][scope]['p50_ms'])} / {_ms(summary[m][key][scope]['p99_ms'])}" for m in methods
            ]
            hits = " / ".join(f"{summary[m][key][scope]['mean_hits']:.1f}" for m in methods)
            label = "a user's rooms" if scope == "user" else "one room"
            lines.append(f"| `{q}` | {label} | " + " | ".join(cells) + f" | {hits} |")
    lines += ["", "Recall over every room (messages found; truth = folded bodies holding every term):", ""]
    lines.append("| query | truth | " + " | ".join(methods) + " |")
    lines.append("| --- | --- |" + " --- |" * len(methods))
    for key, q, _ in QUERIES:
        row = results["recall"][key]
        cells = []
        for m in methods:
            share = row[m] / row["truth"] if row["truth"] else 1.0
            cell = f"{row[m]:,} ({share:.0%})"
            if m == "ngram" and "ngram_candidates" in row:
                cell += f", {row['ngram_candidates']:,} bigram candidates"
            cells.append(cell)
        lines.append(f"| `{q}` | {row['truth']:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- main ------------------------------------------------------------------------------------------
def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.search", description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000, help="messages to store (1,000,000)")
    parser.add_argument("--queries", type=int, default=100, help="repetitions of every query, scope and method (100)")
    parser.add_argument("--rooms", type=int, default=200, help="group rooms (200)")
    parser.add_argument("--users", type=int, default=500, help="users (500)")
    parser.add_argument("--rooms-per-user", type=int, default=10, help="rooms each user is in (10)")
    parser.add_argument("--seed", type=int, default=19, help="the corpus's and the population's seed (19)")
    parser.add_argument("--methods", default=",".join(METHODS), help="comma-separated: simple, trgm, ngram")
    parser.add_argument(
        "--incremental", type=int, default=20_000, help="new documents indexed in batches of 2,000 (20,000; 0: none)"
    )
    parser.add_argument("--server-cpu", type=int, default=0, help="PostgreSQL's core (0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="this process's core (1)")
    parser.add_argument(
        "--nice", type=int, default=0, help="niceness of the bench and its services (below 0 needs root)"
    )
    parser.add_argument(
        "--data", type=Path, default=ROOT / ".devstack" / "bench-search", help="the bench's own embedded services"
    )
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--markdown", type=Path, help="also write the tables to this file")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.nice and os.getsid(0) != os.getpid():
        # Its own session, so that the priority is its processes' alone (see bench/__main__.py).
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.search", *(sys.argv[1:] if argv is None else argv)],
            cwd=ROOT,
            start_new_session=True,
        )
        try:
            return child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            return child.wait()
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise SystemExit(f"unknown methods: {', '.join(sorted(unknown))}")

    def log(line: str) -> None:
        print(line, flush=True)

    pin = (os.cpu_count() or 1) >= 2 and args.server_cpu != args.client_cpu
    bench = BenchStack(args.data, server_cpu=args.server_cpu, client_cpu=args.client_cpu, pin=pin, nice=args.nice)
    started = datetime.now(UTC)
    command = "python -m bench.search " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    from .__main__ import _commit

    results: dict = {
        "command": command.strip(),
        "started": started.isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "layout": {"server_cpu": args.server_cpu, "client_cpu": args.client_cpu, "pinned": pin, "nice": args.nice},
        "messages": args.messages,
        "rooms": args.rooms,
        "users": args.users,
        "methods": methods,
        "queries_list": [{"key": k, "q": q, "what": w} for k, q, w in QUERIES],
        "repetitions": args.queries,
    }
    log(f"search | {command.strip()}")
    clock = time.monotonic()
    try:
        bench.start()
        if pin:
            # PostgreSQL (started above on the server core) keeps it; the driver moves off it.
            os.sched_setaffinity(0, {args.client_cpu})
        results["corpus"] = {
            "korean_sentences": len(corpus.korean_sentences()),
            "english_sentences": len(corpus.english_sentences()),
        }
        pop = populate(
            count=args.messages,
            seed=args.seed,
            rooms=args.rooms,
            users=args.users,
            rooms_per_user=args.rooms_per_user,
            log=log,
        )
        results["timings"] = pop.timings
        results["member_rooms"] = statistics.fmean(len(r) for r in pop.users.values())
        results["terms"] = term_ranks(pop)
        builders = {"simple": build_simple, "trgm": build_trgm, "ngram": build_ngram, "bitri": build_bitri}
        results["build"] = {m: builders[m](pop, log) for m in methods}
        bench.settle_database()
        results["queries"] = measure_queries(pop, repetitions=args.queries, methods=methods, seed=args.seed, log=log)
        results["recall"] = measure_recall(pop, methods=methods, log=log)
        if args.incremental:
            results["incremental_count"], results["incremental_batch"] = args.incremental, 2000
            results["incremental"] = measure_incremental(
                pop, count=args.incremental, batch=2000, seed=args.seed, methods=methods, log=log
            )
    finally:
        bench.stop()
    results["seconds"] = round(time.monotonic() - clock, 1)
    text = markdown(results)
    print()
    print(text)
    out = args.json or args.data / "results" / f"search-{started:%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2, default=str))
    print(f"\nsearch | every figure: {out}")
    if args.markdown:
        args.markdown.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
