from django.apps import AppConfig
from django.db.models.signals import post_migrate


def capture_follow_configuration(sender, using, **kwargs) -> None:
    """After ``migrate`` with a backup database configured: the publication change capture reads.

    Only the publication: it costs nothing by itself. The slot, which retains WAL, is made by
    ``capture_changes`` when it starts (backup/slot.py).
    """
    from . import services, slot

    if using == "default" and services.backup_configured():
        slot.publication_ensure()


class BackupConfig(AppConfig):
    name = "backup"
    verbose_name = "Backup (change capture)"

    def ready(self) -> None:
        post_migrate.connect(capture_follow_configuration, sender=self)
