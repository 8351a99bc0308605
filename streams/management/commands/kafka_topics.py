"""Create the project's Kafka topics with their partitions."""

from django.conf import settings
from django.core.management.base import BaseCommand

from streams import kafka


class Command(BaseCommand):
    help = "Create the Kafka topics where missing."

    def add_arguments(self, parser):
        parser.add_argument("--partitions", type=int, default=settings.KAFKA_PARTITIONS)

    def handle(self, *args, partitions, **options):
        created = kafka.ensure_topics(partitions)
        self.stdout.write(f"topics created: {', '.join(created) or 'none (all present)'}")
