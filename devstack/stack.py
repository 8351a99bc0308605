"""Start the services that the environment does not name, and remember where they are."""

from __future__ import annotations

import fcntl
import json
import os
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

from .services import Postgres, ServiceError, Tansu, Valkey, _pid_alive, free_port, port_open

# Environment variable -> (service class, human name, preferred port for `make run`).
SERVICES = {
    "DATABASE_URL": (Postgres, "PostgreSQL", 15432),
    "REDIS_URL": (Valkey, "Redis", 16379),
    "KAFKA_BOOTSTRAP_SERVERS": (Tansu, "Kafka", 19092),
}
STATE_FILE = "services.json"
BACKUP_DATABASE = "chat_backup"
PORT_LOCK_FILE = "chat-devstack-ports.lock"
# What tells a process where another stack's services are: a run that starts its own must not see it.
OTHER_STACK_VARIABLES = (*SERVICES, "BACKUP_DATABASE_URL", "DEVSTACK_STATE")


class Stack:
    """The embedded services of one data folder.

    ``start()`` leaves alone every service whose variable is set in ``environ`` and starts the
    others; ``urls`` then holds all three variables, and ``services.json`` in the data folder
    records them for processes started later by hand.
    """

    def __init__(self, root: Path, *, environ: dict | None = None, fixed_ports: bool = True) -> None:
        self.root = Path(root).resolve()
        self.environ = dict(os.environ if environ is None else environ)
        self.fixed_ports = fixed_ports
        self.services: dict[str, object] = {}
        self.urls: dict[str, str] = {}
        # The embedded broker's topics and partition counts, re-created when it is restarted.
        self.topics: dict[str, int] = {}

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def start(self) -> dict[str, str]:
        self.root.mkdir(parents=True, exist_ok=True)
        self._refuse_if_running()
        try:
            for variable, (cls, _label, preferred) in SERVICES.items():
                if self.environ.get(variable):
                    self.urls[variable] = self.environ[variable]
                    continue
                service = cls(self.root / cls.name, 0)
                service.prepare()  # initdb and the like take seconds and bind nothing: outside the lock
                with port_lock():
                    # A free port is only free until someone binds it: stacks starting at the same
                    # time (parallel test workers) pick and bind theirs one at a time.
                    service.port = free_port(preferred if self.fixed_ports else None)
                    service.start()
                self.services[variable] = service
                self.urls[variable] = service.url
                if variable == "DATABASE_URL" and not self.environ.get("BACKUP_DATABASE_URL"):
                    # The backup database that change capture keeps in sync, on the same server.
                    service.ensure_database(BACKUP_DATABASE)
                    self.urls["BACKUP_DATABASE_URL"] = service.url.rsplit("/", 1)[0] + "/" + BACKUP_DATABASE
        except BaseException:
            self.stop()
            raise
        self._write_state()
        return dict(self.urls)

    def stop(self) -> None:
        # Reverse order: the broker and cache go before the database they may feed.
        for variable in reversed(list(self.services)):
            self.services[variable].stop()
        self.services.clear()
        if self.state_path.exists():
            self.state_path.unlink()

    @property
    def broker_embedded(self) -> bool:
        """Whether the Kafka-protocol broker is ours (Tansu, whose log lives in memory only)."""
        return "KAFKA_BOOTSTRAP_SERVERS" in self.services

    @property
    def spill_dir(self) -> Path:
        """Where a stop that ran out of time keeps the records the broker held unstored."""
        return self.root / "spill"

    def save_state(self) -> None:
        """Record the services' current pids (after the supervisor restarted one)."""
        self._write_state()

    def pids(self) -> dict[str, int]:
        return {service.name: service.pid for service in self.services.values()}

    def _write_state(self) -> None:
        state = {"urls": self.urls, "pids": self.pids(), "supervisor": os.getpid()}
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state, indent=2))
        tmp.replace(self.state_path)

    def _refuse_if_running(self) -> None:
        state = read_state(self.root)
        if state and any(_pid_alive(pid) for pid in state.get("pids", {}).values()):
            raise ServiceError(
                f"the embedded services in {self.root} are already running"
                f" (pids {state['pids']}); stop that `make run` first"
            )


def run_argv(data: Path, only: str | None = None) -> list[str]:
    """The command line of `python -m devstack run` on the data folder ``data`` (``--only`` when given)."""
    return [sys.executable, "-m", "devstack", "run", "--data", str(data)] + (["--only", only] if only else [])


def run_env(port: int, **env: str) -> dict[str, str]:
    """The environment of a `python -m devstack run` driven from outside (the devstack tests, the fault table).

    It is this process's environment without another stack's addresses (the run starts its own
    services), serving on ``port`` with unbuffered output and rate limits off (the clients send
    faster than people do), plus ``env``.
    """
    environ = {k: v for k, v in os.environ.items() if k not in OTHER_STACK_VARIABLES}
    environ.update(PORT=str(port), PYTHONUNBUFFERED="1", RATE_LIMITS="off", **env)
    return environ


@contextmanager
def port_lock():
    """Hold this machine's lock on choosing ports, until the service has bound its port."""
    with open(Path(tempfile.gettempdir()) / PORT_LOCK_FILE, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def read_state(root: Path) -> dict | None:
    """Return the saved state of a stack, or None when it is not running."""
    path = Path(root) / STATE_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def unreachable(urls: dict[str, str]) -> list[str]:
    """One line per configured service that does not accept connections, naming it and its address."""
    problems = []
    for variable, url in urls.items():
        label = SERVICES[variable][1] if variable in SERVICES else "Backup PostgreSQL"
        for host, port in _addresses(variable, url):
            if not port_open(host, port, timeout=2.0):
                problems.append(f"{label} is unreachable at {host}:{port} ({variable}={url})")
    return problems


def _addresses(variable: str, url: str) -> list[tuple[str, int]]:
    if variable == "KAFKA_BOOTSTRAP_SERVERS":
        result = []
        for item in url.split(","):
            host, _, port = item.strip().rpartition(":")
            result.append((host or "127.0.0.1", int(port or 9092)))
        return result
    parts = urlsplit(url)
    default = 6379 if variable == "REDIS_URL" else 5432
    return [(parts.hostname or "127.0.0.1", parts.port or default)]


def readyz(port: int, host: str = "127.0.0.1") -> dict | None:
    """The chat server's /readyz answer on ``port`` (ready or not), or None when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://{host}:{port}/readyz", timeout=2) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # 503: a service is down; the body says which
        try:
            return json.loads(exc.read())
        except ValueError:
            return None
    except (OSError, ValueError):
        return None
