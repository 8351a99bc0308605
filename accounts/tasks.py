"""Celery tasks of the accounts app. Thin: each calls a service."""

from __future__ import annotations

from celery import shared_task

from . import services


@shared_task(name="accounts.tasks.account_purge", acks_late=True)
def account_purge(deletion_id: int) -> dict:
    """Purge a deactivated account in chunks (see services.account_purge); safe to run again."""
    deletion = services.account_purge(deletion_id=deletion_id)
    return {"deletion": deletion.pk, "status": deletion.status, "messages": deletion.messages_done}
