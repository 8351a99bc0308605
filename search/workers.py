"""The ``chat-index`` consumer group: the search index's only writer on the live path. Thin:
collect what each record names, ask search.services to look at those messages again."""

from __future__ import annotations

import logging
import uuid

from streams.pipeline import kafka
from streams.pipeline.worker import Record, Worker
from streams.realtime.protocol import is_json_int

from . import services

log = logging.getLogger(__name__)


def _id(value) -> int:
    """A positive bigint from an envelope (an id or a seq), else ValueError."""
    if not is_json_int(value, minimum=1):
        raise ValueError(f"not an id: {value!r}")
    return value


class IndexWorker(Worker):
    """``chat-index``: the search index and the log of every chat event, in each room's order."""

    group_id = "chat-index"
    topics = (kafka.MESSAGES,)
    # A record is read only once chat-persist committed it: its rows are in the database by then.
    follows = "chat-persist"
    max_records = 2000
    background = True  # search may trail a message by a moment; nobody waits on it as it happens

    def consume(self, records: list[Record]) -> None:
        send_keys: list[tuple[int, str]] = []
        room_seqs: list[tuple[int, int]] = []
        for record in records:
            value = record.value
            kind = value.get("kind")
            log.debug(
                "chat-index: %s room=%s sender=%s event=%s",
                kind, value.get("room"), value.get("sender"), value.get("event_id"),
            )  # fmt: skip
            try:
                if kind == "message.send":
                    send_keys.append((_id(value["sender"]), str(uuid.UUID(str(value["client_msg_id"])))))
                elif kind in ("message.edit", "message.delete"):
                    room_seqs.append((_id(value["room"]), _id(value["seq"])))
                elif kind == "room.deleted":
                    services.room_docs_delete(room_id=_id(value["room"]))
                elif kind == "messages.expired":
                    services.room_docs_expire(
                        room_id=_id(value["room"]), from_seq=_id(value["from_seq"]), up_to_seq=_id(value["up_to_seq"])
                    )
                elif kind == "account.erased":
                    services.sender_docs_forget(
                        user_id=_id(value["user"]), erase_messages=bool(value["erase_messages"])
                    )
            except (KeyError, TypeError, ValueError) as exc:
                # chat-persist refused it already (and dead-lettered it): it stored nothing to index.
                log.debug("chat-index: skipped a malformed %s: %r", kind, exc)
            # Other kinds (system lines, anything newer) are not searchable: nothing to index.
        upserted, deleted = services.docs_sync(send_keys=send_keys, room_seqs=room_seqs)
        log.info("chat-index: %d records, %d documents written, %d removed", len(records), upserted, deleted)
