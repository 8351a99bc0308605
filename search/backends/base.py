"""The small interface every search index implements, and the choice of one by settings.

An index holds one document per searchable message (a text message that is not deleted). It is
written only by the ``chat-index`` consumer and ``manage.py search_rebuild`` (search.services),
and read only by ``search.selectors.message_search``, which applies membership before asking and
checks every candidate against the database after: an index that lags or errs on the side of
more hits can never show a message its user may not see.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache

from django.conf import settings
from django.utils.module_loading import import_string

BACKENDS = {
    "postgres": "search.backends.postgres.PostgresBackend",
    "elasticsearch": "search.backends.elasticsearch.ElasticsearchBackend",
}


@dataclass(frozen=True)
class Doc:
    """One indexable message, as the database has it now."""

    message_id: int
    room_id: int
    sender_id: int | None
    created_at: datetime
    body: str
    # Larger after each edit (edited_at, else created_at, in microseconds since the epoch): a
    # write never replaces a document with a higher version, so a rebuild reading a message
    # before an edit cannot undo the consumer's write of the edit.
    version: int


@dataclass(frozen=True)
class Query:
    """What to find: every term (folded, see search.text) as a substring, within these rooms."""

    terms: list[str]
    room_ids: list[int]
    sender_id: int | None = None
    since: datetime | None = None  # created_at >= since
    until: datetime | None = None  # created_at < until
    before_id: int | None = None  # order "recent": message ids below this only
    order: str = "recent"  # "recent": newest first | "relevance": best first
    offset: int = 0  # order "relevance": ranked hits to skip
    limit: int = 20  # the backend answers up to limit + 1 ids: the extra one says "there is more"


class SearchBackend(ABC):
    """An index of messages; every write is idempotent, so a replayed batch changes nothing."""

    name: str = ""

    @abstractmethod
    def ensure(self) -> None:
        """Create what the index needs, if it is missing (idempotent)."""

    @abstractmethod
    def upsert(self, docs: list[Doc]) -> None:
        """Add or replace these documents; one with a lower version than the stored one is ignored."""

    @abstractmethod
    def delete(self, message_ids: list[int]) -> None:
        """Remove these messages' documents (absent ones are fine)."""

    @abstractmethod
    def delete_room(self, room_id: int) -> None:
        """Remove every document of a deleted room."""

    @abstractmethod
    def forget_sender(self, user_id: int, *, drop: bool) -> None:
        """A deleted account: drop its messages' documents, or keep them without a sender."""

    @abstractmethod
    def search(self, query: Query) -> list[int]:
        """Message ids of the candidates, in result order, up to ``query.limit + 1``."""

    @abstractmethod
    def ids_after(self, after_id: int, limit: int) -> list[int]:
        """Message ids in the index above ``after_id``, ascending, up to ``limit`` (the rebuild's sweep)."""

    @abstractmethod
    def stats(self) -> dict:
        """``{"backend", "documents", "size_bytes"}``."""

    @abstractmethod
    def clear(self) -> None:
        """Remove every document."""


@lru_cache(maxsize=4)
def _backend(name: str) -> SearchBackend:
    return import_string(BACKENDS[name])()


def get_backend() -> SearchBackend:
    """The index ``CHAT_SEARCH_BACKEND`` names, one instance per process (it may hold a client)."""
    name = settings.CHAT_SEARCH_BACKEND
    if name not in BACKENDS:
        raise ValueError(f"CHAT_SEARCH_BACKEND is {name!r}; it must be one of {', '.join(BACKENDS)}")
    return _backend(name)
