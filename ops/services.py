"""An operator's actions on dead letters: re-drive or discard one, each in the audit log.

Both name the record by its place on the dead-letter topic and the digest of what the operator
saw there, read it again from the broker, and refuse when it is gone, changed or already dealt
with. The mark (``streams.models.DeadLetterMark``) and the audit entry are written in one
transaction; a re-drive produces inside it, so a broker that does not acknowledge leaves neither.
"""

from __future__ import annotations

from django.db import transaction

from audit.services import audit_record
from streams.models import DeadLetterMark
from streams.pipeline import dead_letters
from streams.pipeline.dead_letters import DeadLetter


class DeadLetterRefused(Exception):
    """The action cannot be done on that dead letter (gone, changed, handled, not re-drivable)."""


def dead_letter_redrive(*, partition: int, offset: int, digest: str, actor, ip: str | None = None) -> DeadLetter:
    """Send the dead letter back onto the topic it failed on, mark it re-driven, audit it.

    Raises DeadLetterRefused, or KafkaUnavailable when the broker did not acknowledge it.
    """
    letter = _letter(partition=partition, offset=offset, digest=digest)
    if letter.target() is None:
        raise DeadLetterRefused(f"{letter.place} cannot be re-driven: its record or its topic is unknown")
    with transaction.atomic():
        _mark(letter, DeadLetterMark.Action.REDRIVEN)
        target = dead_letters.dead_letter_redrive(letter)
        audit_record(
            action="dead_letter.redriven",
            actor=actor,
            target_type="dead_letter",
            target_id=letter.place,
            before=letter.summary(),
            after={"handled": "redriven", "topic": target},
            detail=f"re-driven onto {target}: {letter.reason}",
            ip=ip,
        )
    return letter


def dead_letter_discard(*, partition: int, offset: int, digest: str, actor, ip: str | None = None) -> DeadLetter:
    """Mark the dead letter discarded (it stays on the topic, out of the listings) and audit it."""
    letter = _letter(partition=partition, offset=offset, digest=digest)
    with transaction.atomic():
        _mark(letter, DeadLetterMark.Action.DISCARDED)
        audit_record(
            action="dead_letter.discarded",
            actor=actor,
            target_type="dead_letter",
            target_id=letter.place,
            before=letter.summary(),
            after={"handled": "discarded"},
            detail=f"discarded: {letter.reason}",
            ip=ip,
        )
    return letter


def _letter(*, partition: int, offset: int, digest: str) -> DeadLetter:
    letter = dead_letters.dead_letter_get(partition=partition, offset=offset)
    if letter is None:
        raise DeadLetterRefused(f"there is no dead letter at partition {partition}, offset {offset}")
    if letter.digest != digest:
        raise DeadLetterRefused(f"{letter.place} holds another record than the one shown: reload the page")
    if letter.handled:
        raise DeadLetterRefused(f"{letter.place} was {DeadLetterMark.Action(letter.handled).label} already")
    return letter


def _mark(letter: DeadLetter, action: str) -> None:
    if not dead_letters.dead_letter_mark(letter, action=action):
        raise DeadLetterRefused(f"{letter.place} was dealt with meanwhile by someone else")
