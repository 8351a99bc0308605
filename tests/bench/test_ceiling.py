"""The bench's ceiling (a bare websockets broadcast server) driven by the load generator, and the
CPU-per-delivery figures the bench reports against it."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from bench.loadgen import TUTORIAL, Client, FanoutSpec, fanout
from bench.report import cost_section
from devstack.services import free_port, port_open


@pytest.fixture
def ceiling():
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "bench.ceiling", "--port", str(port)])
    try:
        deadline = time.monotonic() + 20
        while not port_open("127.0.0.1", port, timeout=0.2):
            assert process.poll() is None and time.monotonic() < deadline, "the ceiling did not start"
            time.sleep(0.1)
        yield port, process
    finally:
        process.terminate()
        process.wait(10)


async def test_every_member_of_a_room_gets_each_message_once_and_the_step_has_a_cpu_cost(ceiling):
    port, process = ceiling
    clients = [Client(room=f"r{i // 3}") for i in range(6)]
    spec = FanoutSpec(
        protocol=TUTORIAL, url=f"ws://127.0.0.1:{port}/ws/chat/", clients=clients, rates=[60], duration=1.0,
        drain=5.0, watch_pids={"websockets": process.pid},
    )  # fmt: skip

    result = await fanout(spec)

    (step,) = result.steps
    assert step.sent > 0
    assert (step.lost, step.duplicates, step.refused) == (0, 0, {})
    assert step.delivered == step.sent * 3  # each room's three members, the sender included, no one else
    assert step.server_cpu_seconds is not None and step.server_cpu_seconds >= 0


def test_cost_section_compares_each_target_with_the_ceiling_and_checks_the_shipped_targets():
    def step(offered, cost, p99=10.0):
        return {"offered": offered, "cpu_us_per_delivery": cost, "lost": 0, "refused": {}, "duplicates": 0,
                "p99_ms": p99, "delivered_per_s": offered}  # fmt: skip

    runs = [
        {"S1": {"ceiling": {"steps": [step(1000, 20)]}, "product": {"steps": [step(1000, 100)]},
                "shipped": {"steps": [step(1000, 50)]}}},
        {"S1": {"ceiling": {"steps": [step(1000, 30)]}, "product": {"steps": [step(1000, 120)]},
                "shipped": {"steps": [step(1000, 70)]}}},
    ]  # fmt: skip
    best = {"delivered_per_s": 1000}
    results = {
        "runs": runs,
        "scenarios": {"S1": {"product": {"best": best}, "shipped": {"best": best}, "ceiling": {"best": best}}},
    }

    text = cost_section(results, p99_ms=100.0)

    assert "| 1,000 | 25 | 110 (4.4x) | 60 (2.4x) |" in text
    assert "shipped 1,000/s, product (stripped) 1,000/s: 100% (target >= 80%: met)" in text
    assert "shipped 60 µs, ceiling 25 µs: 2.4x (target <= 3x: met)" in text
