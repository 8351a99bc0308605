from django.apps import AppConfig


class DrawerConfig(AppConfig):
    name = "drawer"
    verbose_name = "Talk drawer"
