"""``manage.py search_status [--json]``: the search index's size and how far it lags.

Lag is counted in records of ``chat.messages`` that ``chat-index`` has not committed, beside
those ``chat-persist`` has not: the index trails persist by design (it reads what persist
stored), so its own share of the lag is the difference.
"""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand

from search import selectors


class Command(BaseCommand):
    help = "Show the search index's backend, size and lag behind the message topic."

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="One JSON object instead of text.")

    def handle(self, *args, **options):
        status = selectors.index_status()
        if options["json"]:
            self.stdout.write(json.dumps(status))
            return
        self.stdout.write(
            f"backend: {status['backend']}; documents: {status['documents']:,};"
            f" size: {status['size_bytes'] / 1e6:,.1f} MB"
        )
        if status["lag"] is None:
            self.stdout.write(f"lag: unknown ({status['lag_error']})")
            return
        self.stdout.write(
            f"lag: chat-index {status['lag']['chat-index']:,} records behind the topic,"
            f" chat-persist {status['lag']['chat-persist']:,}"
        )
