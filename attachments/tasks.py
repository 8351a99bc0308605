"""Celery tasks of the attachments app. Thin: each calls a service."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="attachments.purge", ignore_result=True, acks_late=True)
def purge() -> int:
    """Delete one chunk of released attachments' files (CHAT_ATTACHMENT_PURGE_CHUNK), and queue
    itself again while a full chunk went: a large account's files go in bounded steps."""
    count, more = services.attachments_purge()
    if more:
        purge.delay()
    return count


@shared_task(name="attachments.sweep", ignore_result=True)
def sweep() -> int:
    """Periodic (beat): release uploads never sent, then purge whatever nobody keeps any more
    (including the attachments of rooms deleted since)."""
    released = services.attachments_sweep()
    count, more = services.attachments_purge()
    if more:
        purge.delay()
    return released + count
