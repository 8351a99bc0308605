"""/metrics: the pipeline's figures in Prometheus' text format, read when Prometheus scrapes.

A custom collector (prometheus_client's ``Collector``) asks every source on each scrape
(``ops.selectors.pipeline_status``, with ``METRICS_TIMEOUT_S`` as the deadline) rather than
keeping counters in this process: the figures live in the broker, the databases and the
consumer processes, and several web processes must all answer the same. docs/operations.md
lists every metric.
"""

from __future__ import annotations

from django.conf import settings
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from . import selectors

SOURCES = ("kafka", "dead_letters", "search", "capture", "redis")


class PipelineCollector(Collector):
    """Every figure of ``ops.selectors.pipeline_status`` as metric families."""

    def collect(self):
        sources = selectors.pipeline_status(timeout=settings.METRICS_TIMEOUT_S)
        up = GaugeMetricFamily(
            "chat_metric_up", "1 when every figure of the source was read on this scrape, else 0", labels=["source"]
        )
        took = GaugeMetricFamily(
            "chat_metric_collect_seconds", "How long the source took to answer on this scrape", labels=["source"]
        )
        for name in SOURCES:
            source = sources.get(name)
            if source is not None:
                up.add_metric([name], 1.0 if source.ok else 0.0)
                took.add_metric([name], source.seconds)
        yield up
        yield took
        yield from _lag(sources["kafka"])
        yield from _dead_letters(sources["dead_letters"])
        yield from _search(sources["search"])
        if "capture" in sources:
            yield from _capture(sources["capture"])
        yield from _consumers(sources["redis"])
        yield from _tasks(sources["redis"])


def _lag(source):
    lag = GaugeMetricFamily(
        "chat_consumer_lag_records",
        "Records on the topic the consumer group has not committed yet",
        labels=["group", "topic"],
    )
    for row in source.value or []:
        lag.add_metric([row["group"], row["topic"]], row["lag"])
    yield lag


def _dead_letters(source):
    if not source.ok:
        return
    value = source.value
    records = GaugeMetricFamily("chat_dead_letters_records", "Records on the dead-letter topic", labels=["topic"])
    records.add_metric([value["topic"]], value["records"])
    unhandled = GaugeMetricFamily(
        "chat_dead_letters_unhandled",
        "Records on the dead-letter topic that no operator re-drove or discarded",
        labels=["topic"],
    )
    unhandled.add_metric([value["topic"]], value["unhandled"])
    yield records
    yield unhandled


def _search(source):
    value = source.value
    if not value:
        return
    labels = [value.get("backend", "?")]
    documents = GaugeMetricFamily("chat_search_index_documents", "Documents in the search index", labels=["backend"])
    documents.add_metric(labels, value.get("documents") or 0)
    size = GaugeMetricFamily("chat_search_index_size_bytes", "Size of the search index", labels=["backend"])
    size.add_metric(labels, value.get("size_bytes") or 0)
    yield documents
    yield size
    lag = (value.get("lag") or {}).get("chat-index")
    if lag is not None:
        behind = GaugeMetricFamily(
            "chat_search_index_lag_records",
            "Records of chat.messages the index consumer (chat-index) has not committed yet",
            labels=["backend"],
        )
        behind.add_metric(labels, lag)
        yield behind


def _capture(source):
    value = source.value
    if not value:
        return
    labels = [value["slot"]]
    figures = (
        ("chat_capture_slot_exists", "1 when change capture's replication slot exists", float(value["exists"])),
        ("chat_capture_slot_active", "1 when a capture process is reading the slot", float(value["active"])),
        (
            "chat_capture_slot_lag_bytes",
            "WAL written since the slot's confirmed position: changes not yet published",
            value["lag_bytes"],
        ),
        ("chat_capture_slot_retained_bytes", "WAL PostgreSQL keeps for the slot", value["retained_bytes"]),
        ("chat_capture_wal_warn_bytes", "Retained WAL past which capture and the admin warn", value["warn_bytes"]),
    )
    for name, help_text, figure in figures:
        family = GaugeMetricFamily(name, help_text, labels=["slot"])
        family.add_metric(labels, figure)
        yield family


def _consumers(source):
    consumers = (source.value or {}).get("consumers")
    if consumers is None:
        return
    labels = ["group", "process"]
    processes = GaugeMetricFamily(
        "chat_consumer_processes", "Consumer processes of the group that wrote figures lately", labels=["group"]
    )
    batches = CounterMetricFamily(
        "chat_consumer_batches", "Batches processed and committed by the process", labels=labels
    )
    records = CounterMetricFamily("chat_consumer_records", "Records in those batches", labels=labels)
    busy = CounterMetricFamily(
        "chat_consumer_busy_seconds", "Time spent processing and committing batches", labels=labels
    )
    last = GaugeMetricFamily("chat_consumer_last_batch_records", "Records in the last batch", labels=labels)
    last_at = GaugeMetricFamily(
        "chat_consumer_last_batch_timestamp_seconds", "When the last batch was committed", labels=labels
    )
    rate = GaugeMetricFamily(
        "chat_consumer_records_per_second", "Records processed per second over the last minute", labels=labels
    )
    mean = GaugeMetricFamily(
        "chat_consumer_mean_batch_records", "Mean records per batch over the last minute", labels=labels
    )
    by_group: dict[str, int] = {}
    for entry in consumers:
        key = [entry["group"], f"{entry['host']}:{entry['pid']}"]
        by_group[entry["group"]] = by_group.get(entry["group"], 0) + 1
        batches.add_metric(key, entry["batches_total"])
        records.add_metric(key, entry["records_total"])
        busy.add_metric(key, entry["busy_seconds_total"])
        last.add_metric(key, entry["last_batch_records"])
        if entry["last_batch_at"]:
            last_at.add_metric(key, entry["last_batch_at"])
        rate.add_metric(key, entry["rate"])
        mean.add_metric(key, entry["mean_batch"])
    for group, count in sorted(by_group.items()):
        processes.add_metric([group], count)
    yield from (processes, batches, records, busy, last, last_at, rate, mean)


def _tasks(source):
    runs = (source.value or {}).get("tasks")
    entries = selectors.beat_schedule(runs)
    interval = GaugeMetricFamily(
        "chat_beat_interval_seconds",
        "How often Celery beat runs the entry (entries scheduled in seconds)",
        labels=["entry", "task"],
    )
    for entry in entries:
        if entry["every_s"] is not None:
            interval.add_metric([entry["name"], entry["task"]], entry["every_s"])
    yield interval
    if runs is None:
        return
    last = GaugeMetricFamily(
        "chat_task_last_run_timestamp_seconds", "When a run of the scheduled task last ended", labels=["task"]
    )
    ok = GaugeMetricFamily(
        "chat_task_last_run_success", "1 when the scheduled task's last run succeeded", labels=["task"]
    )
    took = GaugeMetricFamily(
        "chat_task_last_run_duration_seconds", "How long the scheduled task's last run took", labels=["task"]
    )
    for task, run in sorted(runs.items()):
        last.add_metric([task], run["at"])
        ok.add_metric([task], 1.0 if run.get("state") == "SUCCESS" else 0.0)
        took.add_metric([task], run.get("seconds") or 0.0)
    yield from (last, ok, took)


registry = CollectorRegistry()
registry.register(PipelineCollector())
