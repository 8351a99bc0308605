"""Create the project's Kafka topics with their partitions, and say which have another count."""

from django.conf import settings
from django.core.management.base import BaseCommand

from streams import kafka


class Command(BaseCommand):
    help = "Create the Kafka topics where missing; warn about topics whose partition count differs."

    def add_arguments(self, parser):
        parser.add_argument("--partitions", type=int, default=settings.KAFKA_PARTITIONS)

    def handle(self, *args, partitions, **options):
        created = kafka.ensure_topics(partitions)
        self.stdout.write(f"topics created: {', '.join(created) or 'none (all present)'}")
        for name, count in self._counts().items():
            if count != partitions:
                # A broker that auto-created it (a client wrote before the topics were made): a
                # room's partition is then not what KAFKA_PARTITIONS says. Order per room still
                # holds while the count stays; recreate the topic when it is empty to fix it.
                self.stderr.write(f"warning: topic {name} has {count} partitions, not {partitions} (KAFKA_PARTITIONS)")

    def _counts(self) -> dict[str, int]:
        from confluent_kafka.admin import AdminClient

        metadata = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}).list_topics(timeout=10)
        wanted = {kafka.topic(name) for name in kafka.ALL_TOPICS}
        return {name: len(t.partitions) for name, t in metadata.topics.items() if name in wanted}
