"""Run one Kafka consumer group: ``python manage.py consume persist|index|backup``."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils.module_loading import import_string


class Command(BaseCommand):
    help = "Run a Kafka consumer group until SIGTERM. Names: " + ", ".join(settings.KAFKA_CONSUMERS)

    def add_arguments(self, parser):
        parser.add_argument("name", choices=sorted(settings.KAFKA_CONSUMERS))

    def handle(self, *args, name, **options):
        try:
            worker_class = import_string(settings.KAFKA_CONSUMERS[name])
        except ImportError as exc:
            raise CommandError(f"consumer {name!r} cannot be loaded: {exc}") from exc
        worker_class().run()
