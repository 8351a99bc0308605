"""The tables that change capture copies to the backup database (all have a bigint ``id``)."""

CAPTURED_TABLES = (
    "accounts_user",
    "rooms_room",
    "rooms_participant",
    "chat_messages_message",
    "chat_messages_reaction",
    "drawer_savedmessage",
    "attachments_attachment",
    "attachments_attachmenthold",
)
