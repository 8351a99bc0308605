"""Create the project's Kafka topics with their partitions, and say which have another count."""

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from streams import kafka


class Command(BaseCommand):
    help = "Create the Kafka topics where missing; warn about topics whose partition count differs."

    def add_arguments(self, parser):
        parser.add_argument("--partitions", type=int, default=settings.KAFKA_PARTITIONS)

    def handle(self, *args, partitions, **options):
        # confluent-kafka rather than kafka-python's admin client: `make run` runs this right after
        # a broker restart, and kafka-python backs off for up to 30 s after a refused connection.
        admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
        wanted = [kafka.topic(name) for name in kafka.ALL_TOPICS]
        try:
            existing = admin.list_topics(timeout=10).topics
        except KafkaException as exc:
            raise CommandError(f"Kafka at {settings.KAFKA_BOOTSTRAP_SERVERS} is unreachable: {exc}") from exc
        missing = [name for name in wanted if name not in existing]
        created = []
        if missing:
            futures = admin.create_topics(
                [NewTopic(name, partitions, settings.KAFKA_REPLICATION) for name in missing], operation_timeout=10
            )
            for name, future in futures.items():
                try:
                    future.result(15)
                    created.append(name)
                except KafkaException as exc:
                    if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                        raise CommandError(f"topic {name} could not be created: {exc}") from exc
        self.stdout.write(f"topics created: {', '.join(sorted(created, key=wanted.index)) or 'none (all present)'}")
        for name, topic in admin.list_topics(timeout=10).topics.items():
            if name in wanted and len(topic.partitions) != partitions:
                # A broker auto-created it (a client wrote before the topics were made): rooms map to
                # other partitions than KAFKA_PARTITIONS says. Each room keeps one partition while the
                # count stays, so order holds; recreate the topic when it is empty to fix the count.
                self.stderr.write(
                    f"warning: topic {name} has {len(topic.partitions)} partitions, not {partitions} (KAFKA_PARTITIONS)"
                )
