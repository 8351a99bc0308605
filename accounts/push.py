"""Push notifications: the interface a platform sender implements, and the default one.

A sender turns one notification for one device into a call to FCM, APNs or a Web Push service.
``settings.PUSH_SENDER`` names the class (dotted path); the default writes each notification to
the log, so a deployment without push credentials loses nothing and shows what would have gone.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache

from django.conf import settings
from django.utils.module_loading import import_string

log = logging.getLogger(__name__)


class DeviceGone(Exception):
    """The push service says the device no longer exists (uninstalled, token expired): forget it."""


@dataclass(frozen=True)
class Notification:
    """What a device shows: a title, a body, and where a tap leads (``room`` and ``seq``)."""

    title: str
    body: str
    room: int
    seq: int
    kind: str  # "mention" or "direct"


class PushSender(ABC):
    """Send one notification to one device (``device.platform``, ``device.token``).

    Raise :class:`DeviceGone` when the service reports the token dead; any other exception is a
    passing failure, and the Celery task retries it.
    """

    @abstractmethod
    def send(self, device, notification: Notification) -> None:
        """Deliver ``notification`` to ``device`` through the platform's push service."""


class LogPushSender(PushSender):
    """The default: each notification becomes a log line (no push service configured)."""

    def send(self, device, notification: Notification) -> None:
        log.info(
            "push to %s device %s of user %s: %s: %s (room %s, seq %s)",
            device.platform, device.pk, device.user_id, notification.title, notification.body,
            notification.room, notification.seq,
        )  # fmt: skip


@cache
def _sender_class(path: str) -> type[PushSender]:
    return import_string(path)


def push_sender() -> PushSender:
    """The configured sender (``PUSH_SENDER``)."""
    return _sender_class(settings.PUSH_SENDER)()
