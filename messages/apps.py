from django.apps import AppConfig


class MessagesConfig(AppConfig):
    name = "messages"
    # `messages` would clash with django.contrib.messages.
    label = "chat_messages"
    verbose_name = "Messages"
