"""``manage.py search_rebuild [--clear] [--batch N]``: index every message from the database.

For a new index (after upgrading, after switching CHAT_SEARCH_BACKEND) or one suspected of
drifting. Runs while chat goes on (see search.services.index_rebuild); prints a progress bar and
the final counts.
"""

from __future__ import annotations

import argparse
import time

from django.core.management.base import BaseCommand

from search import services
from search.backends.base import get_backend


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return number


class Command(BaseCommand):
    help = "Rebuild the message search index from the database (safe while chat goes on)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--clear", action="store_true", help="Empty the index first (searches find less until it is done)."
        )
        parser.add_argument("--batch", type=_positive, default=services.REBUILD_BATCH, help="Messages per batch.")

    def handle(self, *args, clear: bool, batch: int, **options):
        started = time.monotonic()
        tty = self.stderr.isatty()
        shown = {"tenth": -1}

        def progress(done: int, total: int) -> None:
            share = done / total if total else 1.0
            rate = done / max(time.monotonic() - started, 1e-6)
            bar = "#" * int(share * 30)
            line = f"[{bar:<30}] {done:,} / {total:,} messages ({share:.0%}), {rate:,.0f}/s"
            if tty:
                self.stderr.write("\r" + line, style_func=str, ending="")
                self.stderr.flush()
            elif int(share * 10) > shown["tenth"]:  # a log, not a terminal: a line per tenth
                shown["tenth"] = int(share * 10)
                self.stderr.write(line, style_func=str)

        backend = get_backend()
        self.stdout.write(f"Rebuilding the {backend.name} search index{' from empty' if clear else ''}...")
        result = services.index_rebuild(clear=clear, batch=batch, progress=progress)
        if tty:
            self.stderr.write("")
        stats = backend.stats()
        self.stdout.write(
            f"Indexed {result.indexed:,} messages in {result.seconds:.1f} s"
            f" ({result.indexed / max(result.seconds, 1e-6):,.0f}/s); removed {result.removed:,} stale documents;"
            f" the index holds {stats['documents']:,} documents, {stats['size_bytes'] / 1e6:,.1f} MB."
        )
