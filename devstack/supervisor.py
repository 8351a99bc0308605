"""Run several commands in the foreground with their output prefixed by name.

A child that dies is restarted with a growing delay (a crashed consumer must come back), and so
is a watched embedded service (same port, same data folder). SIGINT or SIGTERM stops everything
in an order that loses nothing:

1. the ``first`` children (the web servers: no new sends), waiting until they exited, then
   ``after_first`` (which closes the listening socket they shared, when they shared one);
2. the ``drain`` command, a bounded wait until the consumer groups that store data have caught
   up with the broker (a second Ctrl-C stops waiting);
3. every other child (consumers, Celery, capture): SIGTERM, then SIGKILL after a grace period;
4. when the drain did not finish, the ``spill`` command, which keeps what the broker still holds.

The caller stops the services afterwards.
"""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

COLOURS = ["36", "33", "35", "32", "34", "31", "96", "93"]
SERVICE_BACKOFF_MAX_S = 10.0
SERVICE_START_TIMEOUT_S = 30.0
# A service that ran this long before dying starts its back-off afresh.
SERVICE_STABLE_S = 60.0


@dataclass
class Child:
    name: str
    argv: list[str]
    process: subprocess.Popen | None = None
    restarts: int = 0
    next_start: float = 0.0
    buffer: bytes = field(default=b"")
    held: bool = False  # not (re)started: stopping, or stopped on purpose
    oneshot: bool = False  # runs once; on_exit gets its exit code
    on_exit: Callable[[int], None] | None = None
    code: int | None = None
    pass_fds: tuple[int, ...] = ()  # inherited open, e.g. the listening socket of the web processes


@dataclass
class Watched:
    """An embedded service (devstack.services.Service) restarted when its process dies."""

    service: object
    after: Callable[[], None] | None = None  # called each time it is back
    down: Callable[[], None] | None = None  # called each time it died
    state: str = "up"  # up | down | starting
    restarts: int = 0
    next_start: float = 0.0
    deadline: float = 0.0
    next_check: float = 0.0
    since: float = field(default_factory=time.monotonic)

    @property
    def name(self) -> str:
        return self.service.name


class Supervisor:
    def __init__(
        self,
        commands: dict[str, list[str]],
        *,
        env: dict[str, str],
        grace: float = 15.0,
        first: tuple[str, ...] = ("web",),
        drain: list[str] | None = None,
        spill: list[str] | None = None,
        services: list[Watched] | tuple = (),
        pass_fds: dict[str, tuple[int, ...]] | None = None,
        after_first: Callable[[], None] | None = None,
    ) -> None:
        pass_fds = pass_fds or {}
        self.children = [Child(name, argv, pass_fds=pass_fds.get(name, ())) for name, argv in commands.items()]
        self.after_first = after_first
        self.env = env
        self.grace = grace
        self.first = first
        self.drain = drain
        self.spill = spill
        # Set when a stop could neither store nor spill what the broker held: `make run` exits 3.
        self.lost = False
        self.services = list(services)
        self.signals = 0
        self.selector = selectors.DefaultSelector()
        names = [*commands, *(w.name for w in self.services), "devstack", "topics", "drain", "spill"]
        self.width = max(len(name) for name in names)
        self.colour = sys.stdout.isatty()
        self.palette = {name: COLOURS[i % len(COLOURS)] for i, name in enumerate(names)}

    @property
    def stopping(self) -> bool:
        return self.signals > 0

    # -- the loop --------------------------------------------------------------------------------
    def run(self) -> None:
        previous = {sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            while not self.stopping:
                self._tick()
        finally:
            self._shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, frame) -> None:
        self.signals += 1

    def _tick(self, timeout: float = 0.2) -> None:
        if any(w.state == "starting" for w in self.services):
            timeout = 0.01  # notice a restarted service at once: its hook races the clients
        now = time.monotonic()
        for child in list(self.children):
            if child.process is None and not child.held and now >= child.next_start:
                self._start(child)
        self._pump(timeout=timeout)
        self._reap()
        self._watch_services()

    def _start(self, child: Child) -> None:
        child.process = subprocess.Popen(
            child.argv,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # our signal handling decides how each child is stopped
            pass_fds=child.pass_fds,
        )
        os.set_blocking(child.process.stdout.fileno(), False)
        self.selector.register(child.process.stdout, selectors.EVENT_READ, child)
        if not child.oneshot:
            self._emit(child.name, f"started (pid {child.process.pid})")

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
                self._emit(child.name, line)

    def _reap(self) -> None:
        for child in list(self.children):
            if child.process is None or child.process.poll() is None:
                continue
            self._drain_output(child)
            code = child.process.returncode
            child.process = None
            child.code = code
            if child.oneshot:
                self.children.remove(child)
                if child.on_exit is not None:
                    child.on_exit(code)
                continue
            if child.held:
                continue
            child.restarts += 1
            delay = min(30.0, 0.5 * 2 ** min(child.restarts, 6))
            child.next_start = time.monotonic() + delay
            self._emit(child.name, f"exited with code {code}; restarting in {delay:.1f} s")

    def _drain_output(self, child: Child) -> None:
        stream = child.process.stdout
        try:
            rest = stream.read() or b""
        except (OSError, ValueError):
            rest = b""
        for line in (child.buffer + rest).split(b"\n"):
            if line:
                self._emit(child.name, line)
        child.buffer = b""
        try:
            self.selector.unregister(stream)
        except (KeyError, ValueError):
            pass
        stream.close()

    # -- one-shot commands and planned restarts --------------------------------------------------
    def oneshot(self, name: str, argv: list[str], on_exit: Callable[[int], None] | None = None) -> Child:
        """Run ``argv`` once beside the children, its output prefixed with ``name``."""
        child = Child(name, argv, oneshot=True, on_exit=on_exit)
        self.children.append(child)
        self._start(child)
        return child

    def _oneshot_wait(self, name: str, argv: list[str], *, interruptible: bool = False) -> int:
        """Run a one-shot command to its end, supervising meanwhile; returns its exit code."""
        signals = self.signals
        child = self.oneshot(name, argv)
        while child in self.children:
            self._tick(timeout=0.1)
            if interruptible and self.signals > signals and child.process is not None:
                self.say(f"stopped waiting for {name}")
                child.process.send_signal(signal.SIGTERM)
                signals = self.signals
        return child.code if child.code is not None else 1

    def hold(self, names: tuple[str, ...] | set[str], why: str) -> None:
        """Kill these children at once (SIGKILL) and keep them stopped until ``release()``.

        For consumers whose broker died: killed, they commit nothing (what they did is replayed
        and absorbed) and never join a group on the restarted broker with a position from the old one.
        """
        if self.stopping:
            return
        for child in self.children:
            if child.name in names and not child.oneshot and not child.held:
                child.held = True
                if child.process is not None:
                    self._emit(child.name, f"stopped: {why}")
                    try:
                        os.killpg(child.process.pid, signal.SIGKILL)
                    except (ProcessLookupError, PermissionError):
                        pass

    def release(self, names: tuple[str, ...] | set[str], why: str) -> None:
        """Start children stopped by ``hold()`` again."""
        if self.stopping:
            return
        for child in self.children:
            if child.name in names and not child.oneshot and child.held:
                child.held = False
                child.next_start = 0.0
                self._emit(child.name, f"starting again: {why}")

    # -- embedded services -----------------------------------------------------------------------
    def _watch_services(self) -> None:
        now = time.monotonic()
        for watched in self.services:
            service = watched.service
            process = service.process
            if watched.state == "up":
                if process is None or process.poll() is None:
                    continue
                self._service_down(watched, f"exited with code {process.returncode}", now)
                if watched.down is not None:
                    watched.down()
            elif watched.state == "down" and now >= watched.next_start:
                try:
                    service.spawn()
                except Exception as exc:  # noqa: BLE001 - report and try again later
                    self._service_down(watched, f"could not be started ({exc})", now)
                    continue
                watched.state = "starting"
                watched.deadline = now + SERVICE_START_TIMEOUT_S
            elif watched.state == "starting":
                if process.poll() is not None:
                    self._service_down(watched, f"exited with code {process.returncode} while starting", now)
                elif now > watched.deadline:
                    process.kill()
                    process.wait()
                    self._service_down(watched, f"not ready after {SERVICE_START_TIMEOUT_S:.0f} s", now)
                elif now < watched.next_check:
                    continue
                elif not service.ready():
                    watched.next_check = now + getattr(service, "ready_poll_s", 0.05)
                else:
                    watched.state = "up"
                    self._emit(
                        watched.name,
                        f"back on port {service.port} (pid {process.pid}) after {now - watched.since:.1f} s down",
                    )
                    watched.since = now
                    if watched.after is not None:
                        watched.after()

    def _service_down(self, watched: Watched, what: str, now: float) -> None:
        if watched.state == "up":
            if now - watched.since > SERVICE_STABLE_S:
                watched.restarts = 0
            watched.since = now
        watched.restarts += 1
        delay = min(SERVICE_BACKOFF_MAX_S, 0.25 * 2 ** (watched.restarts - 1))
        watched.state = "down"
        watched.next_start = now + delay
        self._emit(
            watched.name,
            f"{what}; restarting in {delay:.2f} s on port {watched.service.port} (data in {watched.service.datadir})",
        )

    # -- stopping --------------------------------------------------------------------------------
    def _shutdown(self) -> None:
        first = [c for c in self.children if c.name in self.first and not c.oneshot]
        if first:
            self.say(f"stopping {', '.join(c.name for c in first)} first: no new sends")
            self._stop(first)
        if self.after_first is not None:
            self.after_first()
        drained = 0
        if self.drain:
            self.say("waiting until the consumers stored what the broker holds (Ctrl-C again: stop waiting)")
            drained = self._oneshot_wait("drain", self.drain, interruptible=True)
        rest = [c for c in self.children if not c.oneshot and c not in first]
        if rest:
            self.say(f"stopping {', '.join(c.name for c in rest)}")
            self._stop(rest)
        for child in [c for c in self.children if c.oneshot and c.process is not None]:
            self._stop([child])  # e.g. a topic creation still running
        if drained != 0 and self.spill:
            self.say("the broker still holds unstored messages: spilling them to disk for the next start")
            # `drain --spill` exits 1 when it had to spill (not drained), 3 when it could not keep it all.
            if self._oneshot_wait("spill", self.spill) not in (0, 1):
                # Said loudly: the broker keeps nothing once it stops, and what it held is gone.
                self.say("ERROR: the spill failed: the messages left unstored (counted above) are LOST")
                self.lost = True

    def _stop(self, children: list[Child]) -> None:
        """SIGTERM each child, wait (supervising the rest), SIGKILL what is left after the grace period."""
        for child in children:
            child.held = True
        running = [c for c in children if c.process and c.process.poll() is None]
        for child in running:
            self._emit(child.name, "stopping")
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.grace
        while any(c.process and c.process.poll() is None for c in running) and time.monotonic() < deadline:
            self._pump(timeout=0.1)
            self._watch_services()
        for child in running:
            if child.process is None:
                continue
            if child.process.poll() is None:
                self._emit(child.name, "did not stop in time; killing")
                os.killpg(child.process.pid, signal.SIGKILL)
                child.process.wait()
            # A child may have left helpers in its session (celery's pool): end them too.
            try:
                os.killpg(child.process.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self._drain_output(child)
            self._emit(child.name, f"stopped (code {child.process.returncode})")
            child.code = child.process.returncode
            child.process = None
            if child.oneshot and child in self.children:
                self.children.remove(child)

    # -- output ----------------------------------------------------------------------------------
    def say(self, text: str) -> None:
        self._emit("devstack", text)

    def _emit(self, name: str, line: bytes | str) -> None:
        prefix = name.ljust(self.width)
        if self.colour:
            prefix = f"\033[{self.palette.get(name, '0')}m{prefix}\033[0m"
        text = line.decode(errors="replace") if isinstance(line, bytes) else line
        sys.stdout.write(f"{prefix} | {text.rstrip()}\n")
        sys.stdout.flush()
