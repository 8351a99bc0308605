"""First steps of `make run`: migrate, collect static files, create Kafka topics, the demo admin once."""

import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

DEMO_USERNAME = "admin"


class Command(BaseCommand):
    help = "Migrate, create the Kafka topics and, on the first run, a demo admin account."

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        if "backup" in settings.DATABASES:
            call_command("migrate", database="backup", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        call_command("kafka_topics")
        self._demo_admin()

    def _demo_admin(self):
        credentials = settings.BASE_DIR / ".devstack" / "admin-password"
        user_model = get_user_model()
        if not user_model.objects.filter(username=DEMO_USERNAME).exists():
            password = secrets.token_urlsafe(12)
            user_model.objects.create_superuser(DEMO_USERNAME, "", password)
            credentials.parent.mkdir(parents=True, exist_ok=True)
            credentials.write_text(password + "\n")
            credentials.chmod(0o600)
        password = credentials.read_text().strip() if credentials.exists() else "(set by you)"
        port = settings.PORT
        self.stdout.write(
            f"log in at http://127.0.0.1:{port}/admin/ as {DEMO_USERNAME!r} with password {password!r}"
            f" (kept in {credentials})"
        )
