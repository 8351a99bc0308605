"""bench.soak's own parts that need no stack: memory and CPU of a process tree, the table, the plot."""

from __future__ import annotations

import os

from bench.soak import cpu_seconds, cpu_shares, plot, pss_bytes, table


def _result() -> dict:
    rows = [
        {"minute": m, "memory": {"web": (90 + m) * 10**6, "tansu": (5 + 40 * m) * 10**6},
         "product_bytes": (90 + m) * 10**6, "broker_bytes": (5 + 40 * m) * 10**6,
         "lag": {"chat-persist": 10 * m}, "step": {"delivered_per_s": 2000, "p99_ms": 40.0, "p50_ms": 5.0, "lost": 0}}
        for m in range(3)
    ]  # fmt: skip
    rows[0]["step"] = None
    for m, row in enumerate(rows[1:], start=1):
        row.update(cpu={"web": 20.0 + m, "tansu": 40.0 * m}, product_cpu=20.0 + m, broker_cpu=40.0 * m)
    return {"label": "test", "samples": rows, "product_processes": ["web"], "services": ["tansu"]}


def test_memory_of_this_process_is_measured():
    assert 1_000_000 < pss_bytes(os.getpid()) < 10**11


def test_cpu_of_this_process_is_measured_and_shared_out_per_second():
    spent = cpu_seconds(os.getpid())
    assert 0 < spent < 10**6
    before = {"at": 10.0, "cpu_s": {"web": 1.0, "tansu": 5.0}}
    after = {"at": 70.0, "cpu_s": {"web": 13.0, "tansu": 50.0}}
    assert cpu_shares(after, before) == {"web": 20.0, "tansu": 75.0}


def test_the_table_keeps_the_products_memory_and_cpu_apart_from_the_brokers():
    lines = table(_result()["samples"], ["web", "tansu"]).splitlines()
    assert lines[0].split(" | ")[5:] == ["product CPU %", "broker CPU %", "product MB", "broker MB", "web", "tansu"]
    assert lines[2].split(" | ")[5:7] == ["-", "-"]  # minute 0: no minute to measure CPU over
    assert lines[-1].split(" | ") == ["2", "2,000", "40", "0", "20", "22", "80", "92", "85", "92", "85"]


def test_the_plot_is_written(tmp_path):
    plot(_result(), tmp_path / "soak.png")
    assert (tmp_path / "soak.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
