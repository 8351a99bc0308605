"""``chat-backup``: keep the backup database in sync from ``chat.cdc``."""

from streams.pipeline import kafka
from streams.pipeline.worker import PermanentError, Record, Worker

from . import services


class BackupWorker(Worker):
    group_id = "chat-backup"
    topics = (kafka.CDC,)
    databases = ("backup",)
    retry_topic = None  # an older row image re-driven later would overwrite a newer one
    # Debezium events (``op``; ``payload`` when the converter wraps them with their schema).
    envelope_keys = ("op", "payload")
    tombstones = True  # Debezium's null value after a delete: the delete did the work
    background = True  # the backup may trail by a moment: larger, fewer transactions on it

    def consume(self, records: list[Record]) -> None:
        changes = [r.value for r in records]
        try:
            services.backup_apply(changes=changes)
        except services.SchemaDrift:
            raise  # systemic: hold the stream until the backup is migrated
        except ValueError as exc:
            raise PermanentError(str(exc)) from exc
