"""Celery tasks of the accounts app. Thin: each calls a service."""

from __future__ import annotations

from dataclasses import asdict

from celery import shared_task

from . import services
from .push import Notification


@shared_task(name="accounts.tasks.account_purge", acks_late=True)
def account_purge(deletion_id: int) -> dict:
    """Purge a deactivated account in chunks (see services.account_purge); safe to run again."""
    deletion = services.account_purge(deletion_id=deletion_id)
    return {"deletion": deletion.pk, "status": deletion.status, "messages": deletion.messages_done}


@shared_task(name="accounts.push_messages", ignore_result=True)
def push_messages(messages: list[dict]) -> int:
    """From the persist consumer: one push task per notification its batch calls for."""
    pushes = services.push_recipients(messages=messages)
    for user_id, notification in pushes:
        push_notification.delay(user_id, asdict(notification))
    return len(pushes)


@shared_task(
    name="accounts.push_notification",
    ignore_result=True,
    autoretry_for=(Exception,),
    retry_backoff=True,
    max_retries=5,
)
def push_notification(user_id: int, notification: dict) -> int:
    """Send one notification to the user's devices (retried with back-off when the service fails)."""
    return services.push_send(user_id=user_id, notification=Notification(**notification))
