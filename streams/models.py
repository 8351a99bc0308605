"""What the pipeline keeps in the database: which dead letters an operator has dealt with.

A record cannot be deleted from a Kafka topic, so re-driving or discarding a dead letter marks it
here; listings leave marked records out (``streams.pipeline.dead_letters``).
"""

from django.db import models


class DeadLetterMark(models.Model):
    """A dead letter an operator re-drove or discarded, by its place on the dead-letter topic.

    ``digest`` is a hash of the record's value: the embedded broker keeps its log in memory, so
    after a restart the same place may hold another record, which this mark must not hide.
    """

    class Action(models.TextChoices):
        REDRIVEN = "redriven", "re-driven"
        DISCARDED = "discarded", "discarded"

    topic = models.CharField(max_length=255)  # the dead-letter topic's full name (prefix included)
    partition = models.IntegerField()
    offset = models.BigIntegerField()
    digest = models.CharField(max_length=64)
    action = models.CharField(max_length=16, choices=Action.choices)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # One mark per record: two operators acting at once cannot both re-drive it.
            models.UniqueConstraint(fields=["topic", "partition", "offset", "digest"], name="dead_letter_mark_once"),
        ]
        verbose_name = "handled dead letter"
        verbose_name_plural = "handled dead letters"

    def __str__(self) -> str:
        return f"{self.topic}[{self.partition}]@{self.offset} {self.action}"
