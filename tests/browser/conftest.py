"""Fixtures of the browser tests: Debian's Chromium driven by Playwright against the running server.

Chromium comes from Debian (`/usr/bin/chromium`), never from `playwright install` (which
downloads a browser build and fails offline). `make test` installs it once with apt-get where it
runs as root; when it is missing the tests skip with the reason in the summary.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from django.db.models import F
from django.utils import timezone

from tests.conftest import ROOT

CHROMIUM = Path("/usr/bin/chromium")
SCREENSHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "correct-horse-battery"  # make_user's default
LAUNCH_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ASYNC_UNSAFE = "DJANGO_ALLOW_ASYNC_UNSAFE"


def _chromium_missing_reason() -> str | None:
    """None when /usr/bin/chromium exists, else why the browser tests cannot run."""
    if CHROMIUM.exists():
        return None
    if shutil.which("apt-get") is None:
        return f"{CHROMIUM} is missing and there is no apt-get to install it (Debian's chromium package provides it)"
    return f"{CHROMIUM} is missing; `make test` installs it as root, or run `sudo apt-get install chromium`"


@pytest.fixture(scope="module")
def chromium(request):
    """A headless Chromium for the module's tests (closed before other modules' async tests run)."""
    reason = _chromium_missing_reason()
    if reason:
        pytest.skip(f"BROWSER TESTS SKIPPED: {reason}")
    request.getfixturevalue("server")  # started first, without the variable set below
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=15_000)
    # Playwright's sync API keeps an event loop running in this thread, which Django takes for
    # an async context and refuses ORM calls in; the tests' ORM calls are plain sync code, so
    # allow them while the browser runs. (The session's `server` processes were started
    # before this module fixture, with their own environment, and keep the check.)
    previous = os.environ.get(ASYNC_UNSAFE)
    os.environ[ASYNC_UNSAFE] = "true"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=LAUNCH_ARGS)
            yield browser
            browser.close()
    finally:
        if previous is None:
            os.environ.pop(ASYNC_UNSAFE, None)
        else:
            os.environ[ASYNC_UNSAFE] = previous


class Browsers:
    """One browser context (its own cookies: one person) per user, logged in through /login/."""

    def __init__(self, chromium, server) -> None:
        self.chromium = chromium
        self.server = server
        self.contexts = []
        self.errors: list[str] = []

    def open_as(self, user, *, width: int = 1280, height: int = 800, **context_options):
        """A page of a new context, logged in as ``user`` through the real login form, on the room list.

        ``context_options`` go to Playwright's ``new_context`` (``permissions=["notifications"]``, ...).
        """
        context = self.chromium.new_context(
            base_url=self.server.http, viewport={"width": width, "height": height}, **context_options
        )
        self.contexts.append(context)
        page = context.new_page()
        page.on("pageerror", lambda error: self.errors.append(f"{user.username}: {error}"))
        page.goto("/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("main button[type=submit]")
        page.wait_for_url(self.server.http + "/")
        return page

    def open_room_as(self, user, room):
        """A page of a new context logged in as ``user`` (:meth:`open_as`), then on ``room``'s page."""
        page = self.open_as(user)
        page.goto(room_url(room))
        return page

    def close(self) -> None:
        for context in self.contexts:
            context.close()


@pytest.fixture
def browsers(chromium, server):
    """Open pages as users with ``browsers.open_as(user)``; fails the test on any script error."""
    opened = Browsers(chromium, server)
    yield opened
    opened.close()
    assert opened.errors == [], "the pages raised script errors"


@pytest.fixture
def alice_and_bob(make_user, make_room):
    """``alice, bob, room``: two people, and Alice's group room "general" with Bob in it."""
    alice, bob = make_user("alice"), make_user("bob")
    return alice, bob, make_room(owner=alice, members=[bob], name="general")


def room_url(room) -> str:
    """The room's page."""
    return f"/rooms/{room.pk}/"


def screenshot(page, name: str) -> Path:
    """Keep a screenshot of the page as a test artifact (artifacts/ is ignored by git)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def store_history(room, senders, bodies):
    """Store messages directly (the Kafka path has its own tests), senders taking turns.

    Keeps the room's last seq, last message and the senders' read positions as the persistence
    consumer would.
    """
    from chat_messages.models import Message
    from rooms.models import Participant, Room

    room.refresh_from_db(fields=["last_seq"])
    now = timezone.now()
    rows = []
    for i, body in enumerate(bodies, start=1):
        sender = senders[(i - 1) % len(senders)]
        rows.append(
            Message(
                room_id=room.pk,
                seq=room.last_seq + i,
                sender=sender,
                client_msg_id=uuid.uuid4(),
                body=body,
                created_at=now - timedelta(minutes=len(bodies) - i),
            )
        )
    Message.objects.bulk_create(rows)
    Room.objects.filter(pk=room.pk).update(
        last_seq=F("last_seq") + len(rows), last_message_at=now, last_message_preview=rows[-1].body[:140]
    )
    for row in rows:
        Participant.objects.filter(room_id=room.pk, user_id=row.sender_id, last_read_seq__lt=row.seq).update(
            last_read_seq=row.seq
        )
    room.refresh_from_db()
    return rows


def send_live(user, room, body: str) -> str:
    """Send a message the way the REST API does: through Kafka, stored and fanned out by `persist`."""
    from chat_messages.services import message_send

    return str(message_send(user=user, room_id=room.pk, client_msg_id=uuid.uuid4(), body=body))


def wait_until(condition, timeout: float = 20.0, what: str = "condition"):
    """Poll ``condition`` (a database check, typically) until it is truthy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"{what}: not met after {timeout} s")
