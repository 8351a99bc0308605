"""Process-wide settings for long-running server processes (ASGI servers, Kafka consumers)."""

import gc

# Python collects its youngest generation every 700 net allocations of container objects. A
# consumer batch or a burst of frames allocates tens of thousands, so most of them were still
# alive at a collection, got promoted, and dragged full collections over the whole process.
GC_YOUNG_THRESHOLD = 50_000


def gc_tune() -> None:
    """Freeze what is loaded at start-up out of the collector's sight and collect less often.

    Call once the process has imported its code: modules, classes and settings live for the
    whole process, so scanning them at every full collection only costs time. Reference cycles
    are still collected, in larger steps.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, 20, 20)
