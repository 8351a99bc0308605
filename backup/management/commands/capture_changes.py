"""Publish captured row changes on chat.cdc until SIGTERM."""

import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from backup import services


class Command(BaseCommand):
    help = "Publish the change-capture outbox on the chat.cdc topic, continuously."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="publish what is waiting, then exit")

    def handle(self, *args, once, **options):
        # A primary migrated without a backup configured has capture off; publishing means on.
        services.capture_set(enabled=True)
        running = [True]
        signal.signal(signal.SIGTERM, lambda *_: running.clear())
        signal.signal(signal.SIGINT, lambda *_: running.clear())
        while running:
            close_old_connections()
            try:
                published = services.changes_publish()
            except Exception as exc:  # noqa: BLE001 - keep capturing once the broker or database is back
                self.stderr.write(f"capture: {exc}")
                published = 0
                time.sleep(1)
            if once and not published:
                return
            if not published:
                time.sleep(0.2)
