"""``manage.py capture_changes [--once]``: stream the WAL's row changes to chat.cdc until SIGTERM.

Creates the publication and the slot (with its snapshot) if they are missing. A failure (the
database or the broker gone) is logged and the stream restarts from the slot's confirmed
position after a pause, so nothing is skipped; SIGTERM stops after publishing and confirming
what was read.
"""

from __future__ import annotations

import logging
import signal
import time

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from backup.capture import Capture, capture_until_current

log = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Publish the chat tables' row changes from the write-ahead log on chat.cdc, continuously."

    def add_arguments(self, parser):
        parser.add_argument("--once", action="store_true", help="capture what is committed now, then exit")

    def handle(self, *args, once: bool, **options):
        if once:
            self.stdout.write(f"published {capture_until_current()} changes")
            return
        running = [True]
        signal.signal(signal.SIGTERM, lambda *_: running.clear())
        signal.signal(signal.SIGINT, lambda *_: running.clear())
        pause = 0.5
        while running:
            close_old_connections()
            capture = Capture()
            try:
                capture.connect()
                capture.prepare()
                capture.start()
                log.info("change capture: streaming slot changes to chat.cdc")
                pause = 0.5
                capture.run(running=lambda: bool(running))
                capture.flush()
            except Exception as exc:  # noqa: BLE001 - keep capturing once the broker or database is back
                log.warning("change capture: %s; restarting from the slot's confirmed position", exc)
                time.sleep(pause)
                pause = min(pause * 2, 10.0)
            finally:
                capture.close()
