"""The Pipeline page has no table of its own: it hangs from the dead letters operators dealt with.

``Pipeline`` is a proxy of :class:`streams.models.DeadLetterMark` (no table is made) so that the
admin lists "Operations > Pipeline" and its permissions say who may see the page (view) and who
may re-drive or discard dead letters (change).
"""

from streams.models import DeadLetterMark


class Pipeline(DeadLetterMark):
    class Meta:
        proxy = True
        verbose_name = "pipeline"
        verbose_name_plural = "pipeline"
