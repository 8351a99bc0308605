"""Celery tasks of the messages app."""

from __future__ import annotations

import logging

from celery import shared_task

from . import services

log = logging.getLogger(__name__)


@shared_task(name="messages.tasks.redrive_retries", ignore_result=True)
def redrive_retries(max_records: int = 1000) -> int:
    """Move what failed in `chat-persist` from the retry topic back onto chat.messages."""
    moved = services.retries_redrive(max_records=max_records)
    if moved:
        log.info("re-drove %d records from the retry topic", moved)
    return moved
