"""Create the project's Kafka topics with their partitions, and say which have another count."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streams.pipeline import kafka


class Command(BaseCommand):
    help = "Create the Kafka topics where missing; warn about topics whose partition count differs."

    def add_arguments(self, parser):
        parser.add_argument("--partitions", type=int, default=settings.KAFKA_PARTITIONS)

    def handle(self, *args, partitions, **options):
        from confluent_kafka.admin import AdminClient

        try:
            created = kafka.ensure_topics(partitions)
        except kafka.KafkaUnavailable as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"topics created: {', '.join(created) or 'none (all present)'}")
        wanted = {kafka.topic(name) for name in kafka.ALL_TOPICS}
        metadata = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}).list_topics(timeout=10)
        for name, topic in sorted(metadata.topics.items()):
            if name in wanted and len(topic.partitions) != partitions:
                # A broker auto-created it (a client wrote before the topics were made): rooms map to
                # other partitions than KAFKA_PARTITIONS says. Each room keeps one partition while the
                # count stays, so order holds; recreate the topic when it is empty to fix the count.
                self.stderr.write(
                    f"warning: topic {name} has {len(topic.partitions)} partitions, not {partitions} (KAFKA_PARTITIONS)"
                )
