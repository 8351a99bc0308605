"""Sampling profiles of the server processes while a scenario runs (py-spy, on the client core).

``python -m bench --profile DIR`` records one collapsed-stack file per server process and
scenario (S1, S2; S3's persist consumer) (``DIR/<scenario>-<target>-<process>.txt``, loadable in speedscope or flamegraph.pl)
and prints the functions that cost most, by own time and by time including callees.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path


def py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed (it is pinned in requirements-dev.txt)")
    return found


class Profiler:
    """py-spy attached to each named process until :meth:`stop`."""

    def __init__(self, out_dir: Path, label: str, *, cpu: int | None, rate: int = 200) -> None:
        self.out_dir = Path(out_dir)
        self.label = label
        self.cpu = cpu
        self.rate = rate
        self.running: dict[str, tuple[subprocess.Popen, Path]] = {}

    def start(self, pids: dict[str, int]) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for name, pid in pids.items():
            out = self.out_dir / f"{self.label}-{name}.txt"
            argv = [py_spy(), "record", "--pid", str(pid), "--rate", str(self.rate), "--format", "raw",
                    "--nonblocking", "--threads", "--output", str(out)]  # fmt: skip
            if self.cpu is not None:
                argv = ["taskset", "-c", str(self.cpu), *argv]
            process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            self.running[name] = (process, out)

    def stop(self) -> dict[str, Path]:
        written = {}
        for name, (process, out) in self.running.items():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(5)
            if out.exists():
                written[name] = out
        self.running.clear()
        return written


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rpartition(" ")
    return stack.split(";"), int(count)


def hot_spots(path: Path, limit: int = 12) -> tuple[int, list[tuple[str, float]], list[tuple[str, float]]]:
    """(samples, [(frame, own share)], [(frame, inclusive share)]) of a collapsed-stack file.

    Idle samples (a thread waiting in select/epoll/poll, a lock or a sleep) are left out, so the
    shares are of the time the process spent working.
    """
    own: Counter = Counter()
    inclusive: Counter = Counter()
    total = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        frames, count = _frames(line)
        leaf = frames[-1]
        if any(word in leaf for word in ("select (", "poll (", "epoll", "wait (", "sleep (", "acquire (", "_worker (")):
            continue
        total += count
        own[leaf] += count
        for frame in set(frames):
            inclusive[frame] += count
    if not total:
        return 0, [], []
    top_own = [(frame, n / total) for frame, n in own.most_common(limit)]
    top_inclusive = [
        (frame, n / total) for frame, n in inclusive.most_common(limit * 3) if not frame.startswith("thread")
    ]
    return total, top_own, top_inclusive[:limit]
