"""The last run of each task Celery beat schedules, noted in Redis by whichever process ran it.

Beat keeps its own ``last_run_at`` in a file beside the beat process, which the web process
cannot read; and beat only says a run was *sent*. So each worker notes when a scheduled task
finished, how (Celery's state: SUCCESS, FAILURE, RETRY) and how long it took, in one hash
(``HSET`` per run of a scheduled task; other tasks, pushes per message among them, cost nothing).
"""

from __future__ import annotations

import json
import logging
import time

from django.conf import settings

log = logging.getLogger(__name__)

KEY = "chat:ops:task-runs"
REDIS_TIMEOUT_S = 1.0

_started: dict[str, float] = {}  # task id -> monotonic start, between prerun and postrun


def scheduled_tasks() -> set[str]:
    """The task names ``CELERY_BEAT_SCHEDULE`` runs."""
    return {entry["task"] for entry in settings.CELERY_BEAT_SCHEDULE.values()}


def on_prerun(sender=None, task_id=None, task=None, **kwargs) -> None:
    if task is not None and task.name in scheduled_tasks():
        _started[task_id] = time.monotonic()


def on_postrun(sender=None, task_id=None, task=None, state=None, **kwargs) -> None:
    started = _started.pop(task_id, None)
    if started is None or task is None:
        return
    run = {"at": time.time(), "state": state or "?", "seconds": round(time.monotonic() - started, 3)}
    try:
        client = _client()
        client.hset(KEY, task.name, json.dumps(run))
        client.close()
    except Exception as exc:  # noqa: BLE001 - a note for operators must never fail the task
        log.warning("the last run of %s was not noted in Redis: %s", task.name, exc)


def task_runs(client) -> dict[str, dict]:
    """The last noted run of each task (``client``: a Redis client): ``{name: {at, state, seconds}}``."""
    runs = {}
    for name, raw in client.hgetall(KEY).items():
        try:
            runs[name.decode()] = json.loads(raw)
        except ValueError:
            continue
    return runs


def _client():
    import redis

    return redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=REDIS_TIMEOUT_S, socket_connect_timeout=REDIS_TIMEOUT_S
    )
