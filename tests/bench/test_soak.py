"""bench.soak's own parts that need no stack: memory of a process tree, the table, the plot."""

from __future__ import annotations

import os

from bench.soak import plot, pss_bytes, table


def _result() -> dict:
    rows = [
        {"minute": m, "memory": {"web": (90 + m) * 10**6, "tansu": (5 + 40 * m) * 10**6},
         "product_bytes": (90 + m) * 10**6, "broker_bytes": (5 + 40 * m) * 10**6,
         "lag": {"chat-persist": 10 * m}, "step": {"delivered_per_s": 2000, "p99_ms": 40.0, "p50_ms": 5.0, "lost": 0}}
        for m in range(3)
    ]  # fmt: skip
    rows[0]["step"] = None
    return {"label": "test", "samples": rows, "product_processes": ["web"], "services": ["tansu"]}


def test_memory_of_this_process_is_measured():
    assert 1_000_000 < pss_bytes(os.getpid()) < 10**11


def test_the_table_keeps_the_products_memory_apart_from_the_brokers():
    lines = table(_result()["samples"], ["web", "tansu"]).splitlines()
    assert lines[0].split(" | ")[5:] == ["product MB", "broker MB", "web", "tansu"]
    assert lines[-1].split(" | ") == ["2", "2,000", "40", "0", "20", "92", "85", "92", "85"]


def test_the_plot_is_written(tmp_path):
    plot(_result(), tmp_path / "soak.png")
    assert (tmp_path / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
