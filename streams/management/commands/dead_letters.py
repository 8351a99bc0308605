"""List what the consumer groups set aside on the dead-letter topic, newest last.

Each line: when, which group, the record's kind and room, where it came from (topic/partition/
offset) and why; a record an operator re-drove or discarded (the admin's Pipeline page) says so
in brackets. ``--json`` prints the whole entries (the record included) one per line, for a
script or for re-producing a record once its cause is fixed.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streams.pipeline import kafka
from streams.pipeline.dead_letters import dead_letters_list


class Command(BaseCommand):
    help = "List the records on the dead-letter topic (chat.messages.dlq) with their reasons."

    def add_arguments(self, parser):
        parser.add_argument("--last", type=int, default=50, help="at most this many per partition (default 50)")
        parser.add_argument(
            "--json", dest="as_json", action="store_true", help="one JSON entry per line, record included"
        )

    def handle(self, *args, last: int, as_json: bool, **options):
        try:
            letters = dead_letters_list(last=last, handled=True)
        except kafka.KafkaUnavailable as exc:
            raise CommandError(f"Kafka at {settings.KAFKA_BOOTSTRAP_SERVERS} is unavailable: {exc}") from exc
        if not letters:
            self.stdout.write("no dead letters")
            return
        for letter in letters:
            if as_json:
                self.stdout.write(_dumps(letter.entry or {"reason": letter.reason, "raw": letter.record}))
                continue
            at = letter.at
            when = datetime.fromtimestamp(at, UTC).isoformat(timespec="seconds") if at is not None else "?"
            origin = (
                f"{letter.origin or '?'}[{_or_unknown(letter.origin_partition)}]@{_or_unknown(letter.origin_offset)}"
            )
            handled = f" [{letter.handled}]" if letter.handled else ""
            self.stdout.write(
                f"{when} {letter.failed_group} {letter.kind} room={letter.room} from {origin}: {letter.reason}{handled}"
            )
        self.stdout.write(f"{len(letters)} dead letter(s)")


def _or_unknown(value) -> str:
    return "?" if value is None else str(value)


def _dumps(entry: dict) -> str:
    return json.dumps(entry, ensure_ascii=False, default=str)
