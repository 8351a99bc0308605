from django.apps import AppConfig


class StompConfig(AppConfig):
    name = "stomp"
    verbose_name = "STOMP endpoint"
