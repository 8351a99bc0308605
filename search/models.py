"""The PostgreSQL search index: one row per searchable message, apart from the message table.

Written by the ``chat-index`` consumer only (search.services), never in the persist transaction:
its GIN index was the largest single cost of storing a message while it lived on the message
table. No foreign keys: like any other index backend it is told of deletions by the consumer,
and the selector checks every hit against the message table anyway.
"""

from django.contrib.postgres.indexes import GinIndex
from django.contrib.postgres.search import SearchVectorField
from django.db import models


class MessageDoc(models.Model):
    """A message as the index sees it: where it is, who sent it, its folded text and its n-grams."""

    message_id = models.BigIntegerField(primary_key=True)
    room_id = models.BigIntegerField()
    sender_id = models.BigIntegerField(null=True, blank=True)
    created_at = models.DateTimeField()
    # See search.backends.base.Doc.version: an older write never replaces a newer one.
    version = models.BigIntegerField()
    # search.text.fold(body): what the substring check reads.
    folded = models.TextField()
    # search.text.tokens(folded), without positions: what the GIN index narrows by.
    tokens = SearchVectorField()

    class Meta:
        indexes = [
            GinIndex(fields=["tokens"], name="search_doc_tokens"),
            # A room's newest hits (one room's search), and a room's deletion.
            models.Index(fields=["room_id", "message_id"], name="search_doc_room"),
            # An erased account's documents; the sender filter.
            models.Index(fields=["sender_id"], name="search_doc_sender"),
        ]
        verbose_name = "search index document"
        verbose_name_plural = "search index"

    def __str__(self) -> str:
        return f"doc of message {self.message_id}"
