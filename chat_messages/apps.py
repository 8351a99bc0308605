from django.apps import AppConfig


class MessagesConfig(AppConfig):
    # The module carries the label's name, so `import chat_messages` never reads as
    # django.contrib.messages, and the tables (chat_messages_message) keep their names.
    name = "chat_messages"
    label = "chat_messages"
    verbose_name = "Messages"
