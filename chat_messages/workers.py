"""Kafka consumer groups of the messages app. Thin: decode, call a service, report."""

from __future__ import annotations

import logging

from streams.pipeline import kafka
from streams.pipeline.worker import PermanentError, Record, Worker

from . import services

log = logging.getLogger(__name__)

# Bulk removals done by services in the database and only announced on the topic (retention's
# ``messages.expired`` too: chat_messages/retention.py erased them already).
ANNOUNCEMENTS = {"room.deleted", "account.erased", "messages.expired"}
# Stored as messages, in the batch's one transaction: sends, and rooms' system lines (joins,
# leaves, removals, renames), which take a seq like a send.
STORED = {"message.send", "room.event"}


class PersistWorker(Worker):
    """``chat-persist``: store each message once, number it, fan it out."""

    group_id = "chat-persist"
    topics = (kafka.MESSAGES,)
    retry_topic = None  # a parked send would take a later seq, and an edit would miss its message
    max_records = 2000

    def consume(self, records: list[Record]) -> None:
        # Consecutive sends (and system lines) are stored as one batch; an edit or delete between
        # them keeps its place.
        # Sends that validation refuses are dead-lettered only once the whole batch went through:
        # a batch that fails later is split and redone, and would otherwise park them twice.
        run: list[dict] = []
        refused: list[tuple[dict, str]] = []
        for record in records:
            kind = record.value.get("kind")
            if kind in STORED:
                run.append(record.value)
                continue
            self._store(run, refused)
            run = []
            if kind not in ("message.edit", "message.delete", *ANNOUNCEMENTS):
                raise PermanentError(f"unknown kind {kind!r}")
            try:
                if kind == "message.edit":
                    services.message_apply_edit(env=record.value)
                elif kind == "message.delete":
                    services.message_apply_delete(env=record.value)
                elif kind == "room.deleted":
                    services.room_deleted_apply(env=record.value)
            except (KeyError, TypeError, ValueError) as exc:
                raise PermanentError(f"malformed {kind}: {exc!r}") from exc
        self._store(run, refused)
        for envelope, reason in refused:
            self.dead_letter(str(envelope.get("room", "none")).encode(), envelope, reason=reason)

    def on_dead_letter(self, value: dict, reason: str) -> None:
        # The sender was told `message.accepted`: they must learn it will never be stored.
        services.message_refused_notify(envelope=value, reason=reason)

    def _store(self, sends: list[dict], refused: list[tuple[dict, str]]) -> None:
        if not sends:
            return
        result = services.messages_store(sends=sends)
        refused.extend(result.rejected)
        # Each message's own "stored" line is services' (DEBUG): this one counts the batch.
        log.debug(
            "chat-persist: a batch of %d: %d stored, %d already stored, %d refused",
            len(sends), len(result.stored), result.duplicates, len(result.rejected),
        )  # fmt: skip
        if result.duplicates:
            log.info("chat-persist: %d already stored (replay or re-send)", result.duplicates)
