"""Celery tasks of the shared infrastructure."""

from __future__ import annotations

import logging

from celery import shared_task

from .pipeline.retry import retries_redrive

log = logging.getLogger(__name__)


@shared_task(name="streams.tasks.redrive_retries", ignore_result=True)
def redrive_retries(max_records: int = 1000) -> int:
    """Move records parked on the retry topic back onto the topic they failed on."""
    moved = retries_redrive(max_records=max_records)
    if moved:
        log.info("re-drove %d records from the retry topic", moved)
    return moved
