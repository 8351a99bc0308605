"""The search index in Elasticsearch 8 (``CHAT_SEARCH_BACKEND=elasticsearch``), through the official client.

One document per message, ``_id`` the message id. The body is indexed folded (search.text.fold),
the way the query terms come, in two analyses, both built into Elasticsearch (no plugin):

- ``body``: the standard tokenizer, ``cjk_width``, ``lowercase`` and ``cjk_bigram`` (Han,
  Hiragana, Katakana and Hangul runs as overlapping bigrams): words for relevance.
- ``body.ngram``: every letter/digit run cut into its 1- to 3-character n-grams: what matching
  stands on. A term found as a substring of a body has every n-gram of its own in the body's, so
  "every n-gram of each term" (a ``match`` with operator ``and``) never misses a message that holds
  the term; it may find one whose n-grams occur apart, and the selector, which checks every hit
  against the database, drops those. Single characters are indexed as well (``min_gram`` 1, not 2):
  a one-character term ("밥", "a") is then a plain term lookup, and a word of one letter ("밥 먹자",
  "i'm") has no bigram a wildcard could find. A term without a letter or digit ("?!") analyses to
  nothing and narrows nothing (``zero_terms_query: all``): the database check decides alone.

Dictionary segmenters (the ``analysis-nori`` plugin for Korean, ``analysis-kuromoji`` for
Japanese, ``analysis-smartcn`` for Chinese) would give better ranking; they are plugins to install
on every node, and an upgrade path for ``body`` only: matching stays on the n-grams.

Writes carry the document's version as an external version (``version_type=external_gte``): an
older write (a rebuild that read a row before its edit) never replaces a newer one, and a replayed
batch changes nothing. The index refreshes every second (``refresh_interval: 1s``, set so that a
shard idle for searches does not stop refreshing), so edits and deletions show within a second
without each write forcing a refresh; the rarer deletions by query refresh at once.

``CHAT_SEARCH_ELASTICSEARCH_INDEX`` names an alias over one concrete index. Writes require the
alias (``require_alias``): a write never auto-creates an index with guessed mappings, it creates
the real one (ensure) and tries again. ``clear`` swaps the alias to a new, empty index in one
step, so deleted documents' version tombstones cannot refuse the rebuild that follows.

Not supported: OpenSearch (the client refuses a server that is not Elasticsearch), security
settings beyond what the URL carries (``https://user:password@host:9200``), and relevance ranks
past the first 10,000 hits (Elasticsearch's ``max_result_window``): a deeper page is empty.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import urlsplit, urlunsplit

import elastic_transport
import elasticsearch
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from streams.errors import UNAVAILABLE, ChatError

from .. import text
from .base import Doc, Query, SearchBackend

log = logging.getLogger(__name__)

# Bumped when SETTINGS or MAPPINGS change: the concrete index is named after it, and a rebuild
# with --from-scratch (clear) moves the alias to a fresh index of the new shape.
SCHEMA = 1
# Elasticsearch's default index.max_result_window: from + size may not exceed it.
MAX_WINDOW = 10_000
# A write or search answers well within this; deletions by query get longer (BY_QUERY_TIMEOUT_S).
REQUEST_TIMEOUT_S = 10
BY_QUERY_TIMEOUT_S = 300
# Statuses that say "not now" rather than "never": the caller waits and tries again.
_BUSY = {429, 502, 503, 504}

SETTINGS = {
    "number_of_shards": 1,
    # No replica on a single node (the cluster stays green), one as soon as a second node joins.
    "auto_expand_replicas": "0-1",
    "refresh_interval": "1s",
    # ngram min_gram 1, max_gram 3.
    "max_ngram_diff": 2,
    "analysis": {
        "tokenizer": {
            "grams": {"type": "ngram", "min_gram": 1, "max_gram": 3, "token_chars": ["letter", "digit"]},
        },
        "analyzer": {
            "cjk_words": {
                "type": "custom",
                "tokenizer": "standard",
                "filter": ["cjk_width", "lowercase", "cjk_bigram"],
            },
            "grams": {"type": "custom", "tokenizer": "grams", "filter": ["lowercase"]},
        },
    },
}

MAPPINGS = {
    "dynamic": "strict",
    "_meta": {"schema": SCHEMA},
    "properties": {
        "message_id": {"type": "long"},
        "room_id": {"type": "long"},
        "sender_id": {"type": "long"},
        "created_at": {"type": "date_nanos"},
        "version": {"type": "long"},
        "body": {
            "type": "text",
            "analyzer": "cjk_words",
            # No positions for the n-grams: nothing asks for phrases there, and they are most of the index.
            "fields": {"ngram": {"type": "text", "analyzer": "grams", "index_options": "freqs"}},
        },
    },
}


class ElasticsearchUnavailable(ChatError, ConnectionError):
    """Elasticsearch cannot be reached or is too busy: a "retry later", never a verdict on the data.

    A ChatError ``unavailable`` (HTTP 503 for a search) and a ConnectionError, which the pipeline's
    ``classify`` takes as transient: the chat-index consumer waits for the server instead of
    setting records aside.
    """

    def __init__(self, detail: str) -> None:
        super().__init__(UNAVAILABLE, detail)


def _public(url: str) -> str:
    """The URL without its password, fit for a log line or an error."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{parts.username}:***@{host}", parts.path, parts.query, parts.fragment))


def _source(doc: Doc) -> dict:
    return {
        "message_id": doc.message_id,
        "room_id": doc.room_id,
        "sender_id": doc.sender_id,
        "created_at": doc.created_at.isoformat(),
        "version": doc.version,
        "body": text.fold(doc.body),
    }


class ElasticsearchBackend(SearchBackend):
    """The index ``index`` (an alias) on the server at ``url``; both default to the settings.

    ``refresh`` is passed to every write: False (the default) leaves visibility to the 1 s refresh;
    tests pass ``"wait_for"`` to search right after a write.
    """

    name = "elasticsearch"

    def __init__(self, *, url: str | None = None, index: str | None = None, refresh: bool | str = False) -> None:
        self.url = url if url is not None else settings.CHAT_SEARCH_ELASTICSEARCH_URL
        self.index = index if index is not None else settings.CHAT_SEARCH_ELASTICSEARCH_INDEX
        if not self.url:
            raise ImproperlyConfigured("CHAT_SEARCH_BACKEND is elasticsearch but SEARCH_ELASTICSEARCH_URL is not set")
        self.refresh = refresh
        # Failures are reported at once (one quick retry for a dropped connection): the consumer
        # has its own patient retry, and a search should not hang on a dead server.
        self.client = elasticsearch.Elasticsearch(
            self.url, request_timeout=REQUEST_TIMEOUT_S, max_retries=1, retry_on_timeout=False
        )

    # -- the index ------------------------------------------------------------------------------

    def ensure(self) -> None:
        with self._calls():
            if self.client.indices.exists_alias(name=self.index):
                return
            try:
                self._create(f"{self.index}-v{SCHEMA}")
            except elasticsearch.BadRequestError as exc:
                # Another process created it first: fine once the alias is there.
                if exc.error != "resource_already_exists_exception" or not self.client.indices.exists_alias(
                    name=self.index
                ):
                    raise

    def _create(self, concrete: str) -> None:
        self.client.indices.create(
            index=concrete, settings=SETTINGS, mappings=MAPPINGS, aliases={self.index: {"is_write_index": True}}
        )

    def _concrete(self) -> list[str]:
        """The indices behind the alias (none when it is missing)."""
        try:
            return sorted(self.client.indices.get_alias(name=self.index).body)
        except elasticsearch.NotFoundError:
            return []

    def clear(self) -> None:
        """Point the alias at a new, empty index, then delete the old one.

        Not a delete-by-query: deleted documents leave version tombstones for a minute
        (``index.gc_deletes``), and the rebuild that follows a clear writes the same versions,
        which would be refused as older.
        """
        with self._calls():
            old = self._concrete()
            if not old:
                self.ensure()
                return
            concrete = f"{self.index}-v{SCHEMA}-{time.time_ns() // 1_000_000}"
            self.client.indices.create(index=concrete, settings=SETTINGS, mappings=MAPPINGS)
            self.client.indices.update_aliases(
                actions=[
                    *({"remove": {"index": name, "alias": self.index}} for name in old),
                    {"add": {"index": concrete, "alias": self.index, "is_write_index": True}},
                ]
            )
            self.client.indices.delete(index=",".join(old))

    def drop(self) -> None:
        """Delete the alias's indices altogether (tests, or retiring this backend)."""
        with self._calls():
            old = self._concrete()
            if old:
                self.client.indices.delete(index=",".join(old))

    def stats(self) -> dict:
        with self._calls():
            try:
                primaries = self.client.indices.stats(index=self.index, metric=["docs", "store"])["_all"]["primaries"]
            except elasticsearch.NotFoundError:
                return {"backend": self.name, "documents": 0, "size_bytes": 0}
        return {
            "backend": self.name,
            "documents": primaries.get("docs", {}).get("count", 0),
            "size_bytes": primaries.get("store", {}).get("size_in_bytes", 0),
        }

    # -- writes ---------------------------------------------------------------------------------

    def upsert(self, docs: list[Doc]) -> None:
        if not docs:
            return
        operations: list[dict] = []
        for doc in docs:
            operations.append(
                {"index": {"_id": str(doc.message_id), "version": doc.version, "version_type": "external_gte"}}
            )
            operations.append(_source(doc))
        # 409: the index holds a newer version already, the guard doing its work.
        self._bulk(operations, fine={409})

    def delete(self, message_ids: list[int]) -> None:
        if message_ids:
            self._bulk([{"delete": {"_id": str(pk)}} for pk in message_ids], fine={404}, create=False)

    def _bulk(self, operations: list[dict], *, fine: set[int], create: bool = True) -> None:
        """One bulk request; item failures other than the ``fine`` statuses raise.

        A missing alias: with ``create``, the index is created (ensure) and the request sent once
        more; without, there is nothing to act on.
        """
        with self._calls():
            for attempt in (1, 2):
                try:
                    answer = self.client.bulk(
                        index=self.index, operations=operations, require_alias=True, refresh=self.refresh
                    )
                except elasticsearch.NotFoundError as exc:
                    # The alias missing, said for the whole request rather than per item.
                    missing = [{"status": 404, "error": {"type": exc.error, "reason": str(exc)}}]
                else:
                    if not answer["errors"]:
                        return
                    missing = []
                failed = missing or [
                    item
                    for entry in answer["items"]
                    for item in entry.values()
                    if item.get("error") and item.get("status") not in fine
                ]
                if not failed:
                    return
                if all(item["error"].get("type") == "index_not_found_exception" for item in failed):
                    if not create:
                        return
                    if attempt == 1:
                        log.info("Elasticsearch index %s is missing: creating it", self.index)
                        self.ensure()
                        continue
                self._raise_items(failed)

    def _raise_items(self, failed: list[dict]) -> None:
        first = failed[0]
        detail = f"{first['error'].get('type')}: {first['error'].get('reason')}"
        if all(item.get("status") in _BUSY for item in failed):
            raise ElasticsearchUnavailable(
                f"Elasticsearch at {_public(self.url)} is busy ({len(failed)} writes refused, first: {detail})"
            )
        raise RuntimeError(f"Elasticsearch refused {len(failed)} writes to {self.index} (first: {detail})")

    def delete_room(self, room_id: int) -> None:
        self._by_query({"term": {"room_id": room_id}})

    def forget_sender(self, user_id: int, *, drop: bool) -> None:
        if drop:
            self._by_query({"term": {"sender_id": user_id}})
        else:
            # Internal versioning: the version goes up by one, so a replay of the older document
            # (same version) cannot bring the sender back; a real edit's version is far larger.
            self._by_query(
                {"term": {"sender_id": user_id}},
                script={"source": "ctx._source.sender_id = null", "lang": "painless"},
            )

    def _by_query(self, query: dict, *, script: dict | None = None) -> None:
        """Delete (or, with ``script``, update) the matching documents, then refresh: these are rare
        (a room deleted, an account erased) and a search right after must no longer find them."""
        client = self.client.options(request_timeout=BY_QUERY_TIMEOUT_S)
        with self._calls():
            try:
                if script is None:
                    client.delete_by_query(index=self.index, query=query, conflicts="proceed", refresh=True)
                else:
                    client.update_by_query(
                        index=self.index, query=query, script=script, conflicts="proceed", refresh=True
                    )
            except elasticsearch.NotFoundError:
                return  # no index yet: nothing to delete

    # -- reads ----------------------------------------------------------------------------------

    def search(self, query: Query) -> list[int]:
        if not query.room_ids or not query.terms:
            return []
        # Every term's n-grams, each term on its own: all must be in the body.
        matching = [
            {"match": {"body.ngram": {"query": term, "operator": "and", "zero_terms_query": "all"}}}
            for term in query.terms
        ]
        filters: list[dict] = [{"terms": {"room_id": list(query.room_ids)}}]
        if query.sender_id is not None:
            filters.append({"term": {"sender_id": query.sender_id}})
        if query.since is not None or query.until is not None:
            window = {}
            if query.since is not None:
                window["gte"] = query.since.isoformat()
            if query.until is not None:
                window["lt"] = query.until.isoformat()
            filters.append({"range": {"created_at": window}})
        size = query.limit + 1
        if query.order == "relevance":
            size = min(size, MAX_WINDOW - query.offset)
            if size <= 0:
                return []
            body = {
                # The n-grams score partial words ("meet" in "meeting"); the words and CJK bigrams
                # of ``body`` add to messages that hold a term as a word of its own.
                "query": {
                    "bool": {
                        "must": matching,
                        "should": [{"match": {"body": " ".join(query.terms)}}],
                        "filter": filters,
                    }
                },
                "sort": [{"_score": "desc"}, {"message_id": "desc"}],
                "from_": query.offset,
            }
        else:
            if query.before_id is not None:
                filters.append({"range": {"message_id": {"lt": query.before_id}}})
            # Newest first: nothing is scored, so every clause is a (cacheable) filter.
            body = {"query": {"bool": {"filter": [*matching, *filters]}}, "sort": [{"message_id": "desc"}]}
        with self._calls():
            try:
                answer = self.client.search(index=self.index, size=size, source=False, track_total_hits=False, **body)
            except elasticsearch.NotFoundError:
                log.warning("Elasticsearch index %s does not exist yet: run manage.py search_rebuild", self.index)
                return []
        return [int(hit["_id"]) for hit in answer["hits"]["hits"]]

    def ids_after(self, after_id: int, limit: int) -> list[int]:
        with self._calls():
            try:
                answer = self.client.search(
                    index=self.index,
                    query={"range": {"message_id": {"gt": after_id}}},
                    sort=[{"message_id": "asc"}],
                    size=min(limit, MAX_WINDOW),
                    source=False,
                    track_total_hits=False,
                )
            except elasticsearch.NotFoundError:
                return []
        return [int(hit["_id"]) for hit in answer["hits"]["hits"]]

    # -- failures -------------------------------------------------------------------------------

    @contextmanager
    def _calls(self) -> Iterator[None]:
        """Turn "the server is not there" and "the server is busy" into ElasticsearchUnavailable."""
        try:
            yield
        except (elastic_transport.ConnectionError, elastic_transport.ConnectionTimeout) as exc:
            raise ElasticsearchUnavailable(f"Elasticsearch at {_public(self.url)} is unreachable: {exc}") from exc
        except elasticsearch.ApiError as exc:
            if exc.meta.status in _BUSY:
                raise ElasticsearchUnavailable(
                    f"Elasticsearch at {_public(self.url)} is unavailable ({exc.meta.status} {exc.error})"
                ) from exc
            raise
