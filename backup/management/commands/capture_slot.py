"""``manage.py capture_slot create|drop|status``: the replication slot and publication of change capture.

``create`` makes the publication and the slot (with its initial snapshot published to
``chat.cdc``); ``capture_changes`` does the same when it starts. ``drop`` removes both, releasing
the WAL the slot retains: run it when the backup is retired, with ``capture_changes`` stopped.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from backup import slot
from backup.capture import Capture


class Command(BaseCommand):
    help = "Create, drop or show the change-capture slot and publication."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["create", "drop", "status"])
        parser.add_argument("--json", action="store_true", help="status as one JSON object")

    def handle(self, *args, action: str, **options):
        if action == "create":
            capture = Capture()
            capture.connect()
            try:
                made = capture.prepare()
            finally:
                capture.close()
            self.stdout.write(f"slot {slot.slot_name()}: {'created, snapshot published' if made else 'exists'}")
        elif action == "drop":
            try:
                dropped = slot.slot_drop()
            except Exception as exc:
                raise CommandError(f"slot {slot.slot_name()} not dropped: {exc}".strip()) from exc
            slot.publication_drop()
            self.stdout.write(
                f"slot {slot.slot_name()}: {'dropped' if dropped else 'did not exist'}; publication dropped"
            )
        else:
            status = slot.slot_status()
            if options["json"]:
                self.stdout.write(json.dumps(status.as_dict()))
                return
            if status.snapshot:
                self.stdout.write(
                    f"slot {status.slot}: none yet, a capture is publishing its snapshot;"
                    f" WAL retained {status.retained_bytes / 1e6:.2f} MB"
                )
                return
            if not status.exists:
                self.stdout.write(f"slot {status.slot}: none (capture_changes creates it)")
                return
            self.stdout.write(
                f"slot {status.slot}: {'active' if status.active else 'INACTIVE (no capture running)'};"
                f" confirmed {status.confirmed_flush_lsn}; lag {status.lag_bytes / 1e6:.2f} MB;"
                f" WAL retained {status.retained_bytes / 1e6:.2f} MB (warning above {status.warn_bytes / 1e6:.0f} MB)"
                + ("  <-- OVER THE LIMIT" if status.over_limit else "")
            )
