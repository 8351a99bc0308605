"""What the pipeline looks like now, for /metrics and the admin's Pipeline page.

Each source (the broker, the dead letters, the search index, change capture, Redis) is asked in
a thread of its own with a deadline: a broker or a database that is down, or paused and never
answering, makes its figures unknown (``Source.ok`` False, with why) instead of hanging the
scrape. A source still busy from an earlier call is not asked again until it is done, so a
stuck service cannot pile up threads one scrape after another.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import connections
from django.utils.module_loading import import_string

from streams.pipeline import dead_letters, kafka
from streams.pipeline.broker import Broker
from streams.pipeline.kafka import KafkaUnavailable
from streams.pipeline.stats import consumer_stats
from streams.web.health import check_kafka

from . import task_runs

RETRY_GROUP = "chat-retry"  # streams.pipeline.retry: the Celery re-drive of the retry topic


@dataclass
class Source:
    """One source's answer: its value, or why it is unknown (a partial value may come with an error)."""

    name: str
    value: object = None
    error: str | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


# The thread still asking each source, by source and broker address (another broker is another source).
_busy: dict[tuple[str, str], threading.Thread] = {}
_busy_lock = threading.Lock()


def gather(asks: dict[str, object], *, timeout: float) -> dict[str, Source]:
    """Call each of ``asks`` (name -> function) in a thread of its own; wait ``timeout`` seconds at most."""
    results: dict[str, Source] = {}
    threads: dict[str, threading.Thread] = {}

    def run(name: str, ask) -> None:
        started = time.monotonic()
        try:
            results[name] = Source(name, value=ask())
        except Exception as exc:  # noqa: BLE001 - the service's own words, for the operator
            results[name] = Source(name, error=_first_line(exc))
        finally:
            results[name].seconds = time.monotonic() - started
            connections.close_all()  # this thread's; it ends here

    for name, ask in asks.items():
        key = (name, settings.KAFKA_BOOTSTRAP_SERVERS)
        with _busy_lock:
            previous = _busy.get(key)
            if previous is not None and previous.is_alive():
                results[name] = Source(name, error="still waiting for the answer to an earlier request")
                continue
            thread = threading.Thread(target=run, args=(name, ask), name=f"ops-{name}", daemon=True)
            _busy[key] = threads[name] = thread
        thread.start()
    deadline = time.monotonic() + timeout
    for thread in threads.values():
        thread.join(max(0.0, deadline - time.monotonic()))
    for name in threads:
        if name not in results:
            results[name] = Source(name, error=f"no answer within {timeout:g} s", seconds=timeout)
    # A copy: a thread that answers late must not change what the caller is reading.
    return dict(results)


def pipeline_status(*, timeout: float, dead_letter_list: int | None = None, handled: bool = False) -> dict[str, Source]:
    """Every source's figures (see the module's docstring); their names:

    - ``kafka``: :func:`consumer_lag`;
    - ``dead_letters``: :func:`dead_letter_counts`;
    - ``search``: ``search.selectors.index_status()`` (``lag_error`` makes it not ok);
    - ``capture``: ``backup.slot.slot_status()`` as a dict, only when a backup is configured;
    - ``redis``: ``{"consumers": [...], "tasks": {...}}`` (``consumer_stats``, ``task_runs``);
    - ``dead_letter_list`` (when asked, ``dead_letter_list`` per partition): the letters themselves.
    """
    asks = {
        "kafka": consumer_lag,
        "dead_letters": dead_letter_counts,
        "search": _search,
        "redis": _redis,
    }
    if _backup_configured():
        asks["capture"] = _capture
    if dead_letter_list is not None:
        asks["dead_letter_list"] = lambda: dead_letters.dead_letters_list(
            last=dead_letter_list, handled=handled, budget=timeout
        )
    sources = gather(asks, timeout=timeout)
    search = sources["search"]
    if search.ok and search.value.get("lag_error"):
        search.error = search.value["lag_error"]
    return sources


def consumer_groups() -> list[tuple[str, tuple[str, ...]]]:
    """(group, topics) of each consumer group the broker is asked about, full names.

    The groups of ``KAFKA_CONSUMERS`` (``chat-backup`` only with a backup configured) and the
    retry topic's re-drive.
    """
    groups = []
    for name, path in settings.KAFKA_CONSUMERS.items():
        if name == "backup" and not _backup_configured():
            continue
        worker = import_string(path)
        groups.append((kafka.topic(worker.group_id), tuple(kafka.topic(t) for t in worker.topics)))
    groups.append((kafka.topic(RETRY_GROUP), (kafka.topic(kafka.RETRY),)))
    return groups


def consumer_lag() -> list[dict]:
    """Per group and topic: records on the topic the group has not committed (``lag``), and per partition."""

    def ask(broker: Broker) -> list[dict]:
        rows = []
        for group, topics in consumer_groups():
            for topic in topics:
                behind = broker.lag(group, topic)
                partitions = {p: end - first for p, (first, end) in sorted(behind.items())}
                rows.append({"group": group, "topic": topic, "lag": sum(partitions.values()), "partitions": partitions})
        return rows

    return _with_broker("kafka", ask)


def dead_letter_counts() -> dict:
    """The records on the dead-letter topic, and those no operator re-drove or discarded yet."""
    counts = _with_broker("dead_letters", lambda broker: dead_letters.dead_letters_count(broker=broker))
    records = sum(end - first for first, end, _marked in counts.values())
    handled = sum(marked for _first, _end, marked in counts.values())
    return {"topic": kafka.topic(kafka.DLQ), "records": records, "unhandled": records - handled}


def beat_schedule(runs: dict[str, dict] | None) -> list[dict]:
    """``CELERY_BEAT_SCHEDULE``'s entries with their task's last noted run (None: none noted, or unknown).

    ``every_s`` is the interval of a schedule given in seconds (None for a crontab and the like,
    described in ``schedule``); ``late`` says the last run is older than two intervals.
    """
    now = time.time()
    entries = []
    for name, entry in sorted(settings.CELERY_BEAT_SCHEDULE.items()):
        schedule = entry["schedule"]
        every = schedule.total_seconds() if isinstance(schedule, timedelta) else schedule
        every = float(every) if isinstance(every, int | float) else None
        run = (runs or {}).get(entry["task"])
        entries.append(
            {
                "name": name,
                "task": entry["task"],
                "every_s": every,
                "schedule": f"every {every:g} s" if every is not None else str(schedule),
                "last_run": run,
                "ended": datetime.fromtimestamp(run["at"], UTC) if run else None,
                "late": bool(run and every and now - run["at"] > 2 * every),
            }
        )
    return entries


# One Broker kept per source between calls: a new one spends about a second per topic learning
# where its partitions are. gather() never runs a source twice at once, so each is used by one
# thread at a time; after a failure it is dropped and the next call starts afresh.
_brokers: dict[tuple[str, str], Broker] = {}


def _with_broker(name: str, ask):
    _kafka_reachable()
    key = (name, settings.KAFKA_BOOTSTRAP_SERVERS)
    broker = _brokers.pop(key, None) or Broker()
    try:
        answer = ask(broker)
    except BaseException:
        broker.close()
        raise
    previous, _brokers[key] = _brokers.get(key), broker
    if previous is not None:  # another caller's, kept meanwhile: one is enough
        previous.close()
    return answer


def _kafka_reachable() -> None:
    """Raise at once when no broker answers (an ApiVersions request, 2 s at most, as /readyz asks).

    A consumer asked about a broker that is down waits out its own 10 s timeouts and logs a
    failed connection every few milliseconds meanwhile: each scrape would leave one doing so.
    """
    state = check_kafka()
    if state["state"] != "ready":
        raise KafkaUnavailable(state.get("error") or "no answer")


def _search() -> dict:
    from search.backends.base import get_backend
    from search.selectors import index_status

    try:
        _kafka_reachable()
    except KafkaUnavailable as exc:
        # The index's own figures still count; only its lag is unknown (index_status's shape).
        return {**get_backend().stats(), "lag": None, "lag_error": str(exc)}
    return index_status()


def _backup_configured() -> bool:
    from backup.services import backup_configured

    return backup_configured()


def _capture() -> dict:
    from backup.slot import slot_status

    return slot_status().as_dict()


def _redis() -> dict:
    import redis

    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2.0, socket_connect_timeout=2.0)
    try:
        return {"consumers": consumer_stats(client), "tasks": task_runs.task_runs(client)}
    finally:
        client.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
