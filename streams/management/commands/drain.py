"""Wait until every consumer group that stores data has caught up with the broker.

``manage.py drain [--timeout S]`` is what a stop runs between "no new sends" and "stop the
consumers": `make run`'s supervisor runs it after the web processes exited, and an operator runs
it before stopping consumers or a broker in production. It waits, in this order, for

1. ``chat-persist`` and ``chat-index``: committed offset = high watermark on ``chat.messages``;
2. change capture (``capture_changes``) to have confirmed the write-ahead log up to where it was
   when this step began, i.e. published every committed change (only when a backup database is
   configured);
3. ``chat-backup``: committed offset = high watermark on ``chat.cdc``.

Exit status 0 when drained; 1 when the time ran out, after saying how many records were left.

``--spill DIR`` (after a timeout, with the consumers stopped) writes the records the storing groups
have not committed, per partition from the lowest committed offset to the high watermark, to
``DIR/<topic>.jsonl``; ``--restore DIR`` produces them again (the next start, once the topics exist
and before the consumers run). The embedded broker keeps its log in memory, so this is how a stop
that ran out of time keeps what it held. Replaying a record that was stored is harmless: every
consumer is idempotent.
"""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from pathlib import Path

from confluent_kafka import KafkaException
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string

from streams.pipeline import kafka
from streams.pipeline.broker import Broker

# The consumer groups that store what they read (KAFKA_CONSUMERS names), in drain order.
STORING = ("persist", "index", "backup")
CAPTURE_SLOT_DEFAULT = "chat_backup"
PROGRESS_EVERY_S = 2.0


def storing_groups() -> list[tuple[str, tuple[str, ...]]]:
    """(group id, full topic names) of each storing group; ``chat-backup`` only with a backup configured."""
    groups = []
    for name in STORING:
        if name not in settings.KAFKA_CONSUMERS or (name == "backup" and "backup" not in settings.DATABASES):
            continue
        worker = import_string(settings.KAFKA_CONSUMERS[name])
        groups.append((kafka.topic(worker.group_id), tuple(kafka.topic(t) for t in worker.topics)))
    return groups


def messages_group_last(groups) -> str | None:
    """The last group reading chat.messages (change capture is reported after it)."""
    names = [g for g, topics in groups if kafka.topic(kafka.MESSAGES) in topics]
    return names[-1] if names else None


def capture_behind(target: str | None, timeout: float) -> tuple[int | str, str | None]:
    """Bytes of WAL up to ``target`` (an LSN; None: the current one, returned) that change
    capture has not confirmed, or why they could not be counted in time.

    Asked from a thread: a paused (SIGSTOP) server accepts the connection and never answers, and
    the drain must keep its deadline. A missing slot counts as nothing left (capture never ran);
    a new slot's snapshot being published (its temporary slot, named as backup/slot.py's
    ``snapshot_slot_name``) counts as at least one byte, whatever its position.
    """
    name = getattr(settings, "CHAT_CAPTURE_SLOT", CAPTURE_SLOT_DEFAULT)
    result: list = []

    def ask() -> None:
        from django.db import connection

        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT coalesce(%s, pg_current_wal_lsn()::text)", [target])
                lsn = cursor.fetchone()[0]
                cursor.execute(
                    "SELECT max(greatest(pg_wal_lsn_diff(%s::pg_lsn, confirmed_flush_lsn), temporary::int))::bigint"
                    " FROM pg_replication_slots WHERE slot_name IN (%s, %s)",
                    [lsn, name, f"{name[:54]}_snapshot"],
                )
                result.append((cursor.fetchone()[0] or 0, lsn))
        except Exception as exc:  # noqa: BLE001 - down or paused: the caller asks again
            result.append(
                (f"PostgreSQL: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}", target)
            )
        finally:
            connection.close()

    thread = threading.Thread(target=ask, daemon=True)
    thread.start()
    thread.join(timeout)
    return result[0] if result else (f"PostgreSQL did not answer in {timeout:g} s", target)


# Exit codes: 0 drained, 1 timed out (what is left is counted), 3 a spill could not keep everything.
SPILL_INCOMPLETE = 3


class Command(BaseCommand):
    help = "Wait until the consumer groups that store data have caught up with the broker (exit 1: timed out)."

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=settings.DRAIN_TIMEOUT_S, help="seconds (DRAIN_TIMEOUT_S)")
        parser.add_argument(
            "--spill", type=Path, metavar="DIR", help="write what is left uncommitted to DIR/<topic>.jsonl"
        )
        parser.add_argument("--restore", type=Path, metavar="DIR", help="produce the records spilled in DIR again")

    def handle(self, *args, timeout, spill, restore, **options):
        if restore is not None:
            self._restore(restore)
            return
        broker = Broker()
        try:
            left = self._drain(broker, timeout)
            if left and spill is not None:
                self._spill(broker, spill)
        finally:
            broker.close()
        if left:
            raise SystemExit(1)

    # -- waiting ---------------------------------------------------------------------------------
    def _say(self, text: str) -> None:
        self.stdout.write(text)
        self.stdout.flush()

    def _drain(self, broker: Broker, timeout: float) -> int:
        """Wait for each step in order; returns how many records or changes were left (0: drained)."""
        started = time.monotonic()
        deadline = started + timeout
        groups = storing_groups()
        backup = "backup" in settings.DATABASES
        messages_groups = [(g, t) for g, t in groups if kafka.topic(kafka.CDC) not in t]
        cdc_groups = [(g, t) for g, t in groups if kafka.topic(kafka.CDC) in t]
        if timeout > 0:
            self._say(
                f"drain: waiting up to {timeout:g} s for {', '.join(g for g, _ in groups)} to store what the broker holds"
            )
        steps = [lambda: self._lags(broker, messages_groups)]
        if backup:
            steps += [self._capture, lambda: self._lags(broker, cdc_groups)]
        said = 0.0
        for step in steps:
            while True:
                try:
                    remaining, what = step()
                except KafkaException as exc:  # the broker is down or restarting: ask again
                    remaining, what = 1, f"the broker to answer ({exc.args[0].str() if exc.args else exc})"
                if remaining == 0:
                    break
                now = time.monotonic()
                if now >= deadline:
                    headline = f"timed out after {timeout:g} s" if timeout > 0 else "not drained"
                    self._say(f"drain: {headline}: {self._left_total(broker, groups, backup)}")
                    return max(remaining, 1)
                if now - said >= PROGRESS_EVERY_S:
                    self._say(f"drain: waiting for {what}")
                    said = now
                time.sleep(0.2)
        self._say(f"drain: everything the broker holds is stored ({time.monotonic() - started:.1f} s)")
        return 0

    def _lags(self, broker: Broker, groups) -> tuple[int, str]:
        parts = []
        total = 0
        for group, topics in groups:
            for topic in topics:
                count = sum(high - start for start, high in broker.lag(group, topic).values())
                if count:
                    total += count
                    noun = "changes" if topic == kafka.topic(kafka.CDC) else "messages"
                    parts.append(f"{group}: {count} {noun} left on {topic}")
        return total, "; ".join(parts)

    def _capture(self) -> tuple[int, str]:
        # The target is where the WAL was when this step first asked: the web processes are
        # stopped, so every change worth capturing is before it.
        behind, self.capture_target = capture_behind(getattr(self, "capture_target", None), timeout=2.0)
        if isinstance(behind, str):
            return 1, f"the write-ahead log position to be readable ({behind})"
        return behind, f"capture_changes: {behind:,} bytes of WAL not yet published (up to {self.capture_target})"

    def _left_total(self, broker: Broker, groups, backup: bool) -> str:
        """What is left, e.g. "608 messages left unstored on chat.messages (chat-persist), ..."."""
        parts = []
        for group, topics in groups:
            for topic in topics:
                try:
                    count = str(sum(high - start for start, high in broker.lag(group, topic).values()))
                except KafkaException:
                    count = "?"
                noun = "changes" if topic == kafka.topic(kafka.CDC) else "messages"
                parts.append(f"{count} {noun} left unstored on {topic} ({group})")
                if topic == kafka.topic(kafka.MESSAGES) and backup and group == messages_group_last(groups):
                    behind, _ = capture_behind(getattr(self, "capture_target", None), timeout=2.0)
                    parts.append(
                        f"{'?' if isinstance(behind, str) else behind} bytes of WAL not yet captured"
                        " (kept by the replication slot in PostgreSQL)"
                    )
        return ", ".join(parts)

    # -- spill and restore -----------------------------------------------------------------------
    def _spill(self, broker: Broker, folder: Path) -> None:
        """Write every record some storing group has not committed, from the lowest committed offset."""
        from confluent_kafka import KafkaError, TopicPartition

        folder.mkdir(parents=True, exist_ok=True)
        ranges: dict[str, dict[int, tuple[int, int]]] = {}
        for group, topics in storing_groups():
            for topic in topics:
                for partition, (start, high) in broker.lag(group, topic).items():
                    have = ranges.setdefault(topic, {}).get(partition)
                    ranges[topic][partition] = (min(start, have[0]), high) if have else (start, high)
        reader = broker._consumer("chat-drain-spill", **{"enable.partition.eof": True, "fetch.wait.max.ms": 10})
        short: list[str] = []
        try:
            for topic, partitions in ranges.items():
                wanted = sum(high - start for start, high in partitions.values())
                path = folder / f"{topic}.jsonl"
                written = 0
                with open(path, "a", encoding="utf-8") as out:
                    for partition, (start, high) in sorted(partitions.items()):
                        reader.assign([TopicPartition(topic, partition, start)])
                        idle = time.monotonic() + 10
                        # Up to the end as a fetch sees it (records may have arrived since `high`).
                        while time.monotonic() < idle:
                            message = reader.poll(0.5)
                            if message is None:
                                continue
                            if message.error() is not None:
                                if message.error().code() == KafkaError._PARTITION_EOF and message.offset() >= high:
                                    break
                                continue
                            out.write(json.dumps(_line(message)) + "\n")
                            written += 1
                            idle = time.monotonic() + 10
                    out.flush()
                self._say(f"drain: spilled {written} of {wanted} unstored records of {topic} to {path}")
                if written < wanted:
                    short.append(f"{wanted - written} of {topic}")
        finally:
            reader.close()
        if short:
            # Said, never silent: the broker keeps nothing once it stops. Exit 3 (1 means only
            # "not drained", which is what a spill is for).
            self.stderr.write(f"drain: could not spill {', '.join(short)}: they are lost when the broker stops")
            sys.exit(SPILL_INCOMPLETE)

    def _restore(self, folder: Path) -> None:
        """Produce every spilled record again, to its partition when the topic still has it; then file them away."""
        from confluent_kafka import Producer

        files = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
        if not files:
            self._say("drain: nothing spilled to restore")
            return
        kafka.ensure_topics()
        producer = Producer(
            {
                "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
                "acks": "all",
                "allow.auto.create.topics": False,
                "partitioner": "murmur2_random",
                "message.timeout.ms": 30000,
                "max.in.flight.requests.per.connection": 1,
            }
        )
        broker = Broker()
        failures: list = []
        try:
            for path in files:
                topic = path.name.removesuffix(".jsonl")
                partitions = set(broker.partitions(topic))
                count = 0
                with open(path, encoding="utf-8") as lines:
                    for text in lines:
                        if not text.strip():
                            continue
                        row = json.loads(text)
                        extra = {"partition": row["partition"]} if row["partition"] in partitions else {}

                        def report(error, _message):
                            if error is not None:
                                failures.append(error)

                        producer.produce(
                            topic, key=_bytes(row, "key"), value=_bytes(row, "value"), on_delivery=report, **extra
                        )
                        producer.poll(0)
                        count += 1
                if producer.flush(60) or failures:
                    raise CommandError(f"restoring {path} failed ({failures[:1] or 'not acknowledged'}); it is kept")
                done = path.with_name(f"{path.name}.restored-{time.strftime('%Y%m%dT%H%M%S')}")
                path.rename(done)
                self._say(f"drain: restored {count} spilled records to {topic} (file kept as {done.name})")
        finally:
            broker.close()


def _line(message) -> dict:
    row = {"partition": message.partition(), "offset": message.offset()}
    for field, data in (("key", message.key()), ("value", message.value())):
        if data is None:
            row[field] = None
            continue
        try:
            row[field] = data.decode()
        except UnicodeDecodeError:
            row[field + "_b64"] = base64.b64encode(data).decode()
    return row


def _bytes(row: dict, field: str) -> bytes | None:
    if field + "_b64" in row:
        return base64.b64decode(row[field + "_b64"])
    return None if row.get(field) is None else row[field].encode()
