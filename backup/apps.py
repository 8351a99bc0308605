from django.apps import AppConfig
from django.db.models.signals import post_migrate


def capture_follow_configuration(sender, using, **kwargs) -> None:
    """After ``migrate``: capture changes if and only if a backup database is configured.

    ``migrate`` runs at every deploy with the deploy's settings, so the primary captures exactly
    while a deploy has a backup; ``capture_changes`` switches it on too when it starts.
    """
    from . import services

    if using == "default":
        services.capture_set(enabled=services.backup_configured())


class BackupConfig(AppConfig):
    name = "backup"
    verbose_name = "Backup (change capture)"

    def ready(self) -> None:
        post_migrate.connect(capture_follow_configuration, sender=self)
