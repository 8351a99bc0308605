"""Celery tasks of the messages app. Thin: each calls a service."""

from __future__ import annotations

from celery import shared_task

from . import retention


@shared_task(name="chat_messages.expire", ignore_result=True, acks_late=True)
def expire() -> int:
    """Periodic (beat): delete one chunk of messages past their retention (CHAT_RETENTION_CHUNK),
    and queue itself again while a full chunk went: a large backlog goes in bounded steps, and a
    crash between chunks loses nothing (the next run continues)."""
    count, more = retention.messages_expire()
    if more:
        expire.delay()
    return count
