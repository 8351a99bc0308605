"""Run several commands in the foreground with their output prefixed by name.

A child that dies is restarted with a growing delay (a crashed consumer must come back); SIGINT
or SIGTERM stops every child (SIGTERM, then SIGKILL after a grace period) and returns.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field

COLOURS = ["36", "33", "35", "32", "34", "31", "96", "93"]


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    buffer: bytes = field(default=b"")


class Supervisor:
    def __init__(self, commands: dict[str, list[str]], *, env: dict[str, str], grace: float = 15.0) -> None:
        self.children = [Child(name, argv) for name, argv in commands.items()]
        self.env = env
        self.grace = grace
        self.stopping = False
        self.selector = selectors.DefaultSelector()
        self.width = max(len(name) for name in commands)
        self.colour = sys.stdout.isatty()

    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not self.stopping:
                now = time.monotonic()
                for child in self.children:
                    if child.process is None and now >= child.next_start:
                        self._start(child)
                self._pump(timeout=0.2)
                self._reap()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our signal handling decides how each child is stopped
        )
        os.set_blocking(child.process.stdout.fileno(), False)
        self.selector.register(child.process.stdout, selectors.EVENT_READ, child)
        self._emit(child, f"started (pid {child.process.pid})".encode())

    def _pump(self, timeout: float) -> None:
        for key, _ in self.selector.select(timeout):
            child = key.data
            try:
                data = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                self.selector.unregister(key.fileobj)
                continue
            child.buffer += data
            *lines, child.buffer = child.buffer.split(b"\n")
            for line in lines:
                self._emit(child, line)

    def _reap(self) -> None:
        for child in self.children:
            if child.process is None or child.process.poll() is None:
                continue
            self._drain(child)
            code = child.process.returncode
            child.process = None
            if self.stopping:
                continue
            child.restarts += 1
            delay = min(30.0, 0.5 * 2 ** min(child.restarts, 6))
            child.next_start = time.monotonic() + delay
            self._emit(child, f"exited with code {code}; restarting in {delay:.1f} s".encode())

    def _drain(self, child: Child) -> None:
        stream = child.process.stdout
        try:
            rest = stream.read() or b""
        except (OSError, ValueError):
            rest = b""
        for line in (child.buffer + rest).split(b"\n"):
            if line:
                self._emit(child, line)
        child.buffer = b""
        try:
            self.selector.unregister(stream)
        except (KeyError, ValueError):
            pass
        stream.close()

    def _stop_all(self) -> None:
        running = [c for c in self.children if c.process and c.process.poll() is None]
        for child in running:
            self._emit(child, b"stopping")
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while any(c.process.poll() is None for c in running) and time.monotonic() < deadline:
            self._pump(timeout=0.1)
        for child in running:
            if child.process.poll() is None:
                self._emit(child, b"did not stop in time; killing")
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            # A child may have left helpers in its session (celery's pool): end them too.
            try:
                os.killpg(child.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._drain(child)
            self._emit(child, f"stopped (code {child.process.returncode})".encode())

    def _emit(self, child: Child, line: bytes) -> None:
        prefix = child.name.ljust(self.width)
        if self.colour:
            colour = COLOURS[self.children.index(child) % len(COLOURS)]
            prefix = f"\033[{colour}m{prefix}\033[0m"
        sys.stdout.write(f"{prefix} | {line.decode(errors='replace').rstrip()}\n")
        sys.stdout.flush()
