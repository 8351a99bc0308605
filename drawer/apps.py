from django.apps import AppConfig


class DrawerConfig(AppConfig):
    name = "drawer"
    verbose_name = "Talk drawer"

    def ready(self) -> None:
        # The messages app sits below the drawer: it signals an expiry, the drawer follows.
        from chat_messages.signals import messages_expired

        messages_expired.connect(_expired_snapshots, dispatch_uid="drawer.snapshots_expire")


def _expired_snapshots(sender, *, message_ids: list[int], **kwargs) -> None:
    from .services import drawer_snapshots_expire

    drawer_snapshots_expire(message_ids=message_ids)
