"""The fault script, on its cheapest scenario: kill -9 the persist consumer under a small load.

A real `python -m devstack run` (web and persist only, to stay short), real WebSocket clients that
follow the delivery rules of docs/protocol.md, a real SIGKILL; the database is read afterwards.
"""

from __future__ import annotations

import pytest

from bench import faults

pytestmark = pytest.mark.e2e


def test_killing_the_persist_consumer_under_load_loses_and_doubles_nothing(tmp_path):
    # Web and persist only: the drain at the final stop would wait its whole timeout for the groups
    # that do not run (index, backup), hence a 1 s one; the count is taken before that stop.
    args = faults.parse_args(
        ["--users", "4", "--rate", "20", "--seconds", "6", "--settle", "20", "--only", "web,persist",
         "--drain-timeout", "1"]
    )  # fmt: skip

    row = faults.run_scenario("persist", args, tmp_path / "persist")

    assert row.error is None, "\n".join(row.notes)
    assert row.offered >= 100
    assert row.accepted == row.offered
    assert (row.lost, row.doubled, row.seq_gaps, row.unsettled) == (0, 0, 0, 0), "\n".join(row.notes)
    assert row.stored == row.offered
    assert row.recovery_s is not None  # messages sent after the kill reached the other members
