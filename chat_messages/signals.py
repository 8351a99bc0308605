"""Signals of the messages app, for the apps above it (the layers forbid importing them here)."""

from django.dispatch import Signal

# Sent inside retention's transaction with ``message_ids``: messages deleted because they expired.
# The drawer blanks its saved copies' text then, unless CHAT_RETENTION_KEEPS_DRAWER.
messages_expired = Signal()
