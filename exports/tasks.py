"""Celery tasks of the exports app. Thin: each calls a service."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="exports.build", ignore_result=True, acks_late=True)
def build(export_id: int) -> str:
    """Build one export's ZIP; a failure is recorded on the export, not raised (no retry loop)."""
    export = services.export_build(export_id=export_id)
    return export.status if export is not None else "missing"


@shared_task(name="exports.expire", ignore_result=True)
def expire() -> int:
    """Periodic (beat): delete expired exports' files in chunks, queueing itself again while more wait."""
    count, more = services.exports_expire()
    if more:
        expire.delay()
    return count
