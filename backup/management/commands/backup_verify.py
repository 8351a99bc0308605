"""Compare the primary and backup databases; exit 0 only when every captured table matches."""

import sys

from django.core.management.base import BaseCommand, CommandError

from backup import services


class Command(BaseCommand):
    help = "Compare row counts and row digests of the captured tables on the primary and the backup."

    def handle(self, *args, **options):
        if not services.backup_configured():
            raise CommandError("no backup database: set BACKUP_DATABASE_URL")
        report = services.backup_compare()
        for row in report:
            state = "ok" if row["same"] else "DIFFERS"
            self.stdout.write(
                f"{row['table']:<24} primary {row['primary'][0]:>8} rows  backup {row['backup'][0]:>8} rows  {state}"
            )
        if not all(row["same"] for row in report):
            sys.exit(1)
