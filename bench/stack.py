"""The benchmark's machine layout: services and servers on one core, the load on the other.

The orchestrator pins itself to the server core before it starts anything, so the embedded
PostgreSQL, Valkey and Tansu (and every PostgreSQL backend they fork) inherit that core; the chat
servers are started under ``taskset -c <server core>`` too. The load generator runs as its own
process under ``taskset -c <client core>``. Results then compare across runs and machines.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from devstack.services import free_port, port_open
from devstack.stack import Stack

ROOT = Path(__file__).resolve().parent.parent
BENCH_DB = "bench"
# With ``--backup``: the backup database change capture keeps in sync, on the same server (as
# `make run` has it), fresh with the bench database.
BACKUP_DB = "bench_backup"


@dataclass
class Server:
    """A chat server under test: its daphne and, for the product, its persistence consumer."""

    name: str
    port: int
    web: subprocess.Popen
    extra: list[subprocess.Popen]
    extra_names: list[str]
    web_name: str = "daphne"
    # With web_concurrency above 1: the listening socket the daphne processes share.
    listener: socket.socket | None = None

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    @property
    def named_pids(self) -> dict[str, int]:
        return {
            self.web_name: self.web.pid,
            **{name: p.pid for name, p in zip(self.extra_names, self.extra, strict=True)},
        }


class BenchStack:
    """Embedded services in ``data`` (fresh database per run) and the servers under test."""

    def __init__(
        self,
        data: Path,
        *,
        server_cpu: int,
        client_cpu: int,
        pin: bool = True,
        nice: int = 0,
        asgi: str = "daphne",
        backup: bool = False,
        backup_cpu: int | None = None,
        shipped: bool = False,
    ) -> None:
        self.data = Path(data).resolve()
        self.backup = backup
        # The shipped process set (``start_shipped``) is measured too: it runs with a backup
        # database, so the bench database gets one (and change capture's slot) whatever --backup says.
        self.shipped = shipped
        # The core of change capture, the backup consumer and, when it is not the server core, of
        # a PostgreSQL of the backup's own (a backup server apart from the primary).
        self.backup_cpu = server_cpu if backup_cpu is None else backup_cpu
        self.backup_server = None
        self.asgi = asgi
        self.nice = nice
        self.server_cpu = server_cpu
        self.client_cpu = client_cpu
        self.pin = pin
        self.stack: Stack | None = None
        self.env: dict[str, str] = {}
        self.servers: list[Server] = []
        self.logs = self.data / "logs"
        # The product's daphne processes (``--web-concurrency``): above 1 they share one socket.
        self.web_concurrency = 1

    # -- services ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self.pin:
            os.sched_setaffinity(0, {self.server_cpu})
        if self.nice:
            set_niceness(os.getpid(), self.nice)
        # The bench's own services: never the ones in the environment (someone else's stack).
        environ = {
            k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS")
        }
        self.stack = Stack(self.data, environ=environ, fixed_ports=False)
        urls = self.stack.start()
        if self.nice:
            for pid in self.stack.pids().values():
                set_niceness(pid, self.nice)  # each service runs in its own session
        self.logs.mkdir(parents=True, exist_ok=True)
        database_url = urls["DATABASE_URL"].rsplit("/", 1)[0] + "/" + BENCH_DB
        backup_url = urls["DATABASE_URL"].rsplit("/", 1)[0] + "/" + BACKUP_DB
        self._fresh_database(urls["DATABASE_URL"])
        if self.backup_db and self.backup_apart:
            backup_url = self._backup_server_start()
        shutil.rmtree(self.data / "media", ignore_errors=True)
        self.env = {
            **environ,
            **urls,
            "DATABASE_URL": database_url,
            # web + persist only, unless --backup: then also change capture to a backup database
            # (its capture_changes and backup consumer run beside persist, start_product).
            "BACKUP_DATABASE_URL": backup_url if self.backup_db else "",
            "RATE_LIMITS": "off",
            # S6's uploads, in the bench's folder and emptied with its database.
            "MEDIA_ROOT": str(self.data / "media"),
            "PYTHONUNBUFFERED": "1",
            "DJANGO_SETTINGS_MODULE": "chatproject.settings",
        }
        os.environ.update(self.env)
        import django
        from django.core.management import call_command, get_commands

        django.setup()
        # With a backup configured, migrate switches capture on (the publication; before issue
        # 20, the outbox triggers), as `make run`'s bootstrap does, and the backup gets the schema.
        call_command("migrate", interactive=False, verbosity=0)
        if self.backup_db:
            call_command("migrate", database="backup", interactive=False, verbosity=0)
        from streams.pipeline import kafka

        kafka.ensure_topics()
        if self.backup_db and "capture_slot" in get_commands():
            # WAL capture (issue 20 on): the slot and its snapshot now, not whenever capture_changes
            # first gets to it, which could be in a timed window. The outbox needs nothing more.
            call_command("capture_slot", "create", verbosity=0)

    def _fresh_database(self, admin_url: str) -> None:
        import psycopg2

        conn = psycopg2.connect(admin_url.rsplit("/", 1)[0] + "/postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                # A replication slot of the last run (--backup) would refuse the DROP DATABASE and
                # hold WAL for good: drop it first (its capture process is gone with that run).
                cursor.execute(
                    "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE database = %s",
                    [BENCH_DB],
                )
                for name in (BENCH_DB, BACKUP_DB):
                    cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
                cursor.execute(f'CREATE DATABASE "{BENCH_DB}"')
                if self.backup_db and not self.backup_apart:
                    cursor.execute(f'CREATE DATABASE "{BACKUP_DB}"')
        finally:
            conn.close()

    @property
    def backup_db(self) -> bool:
        """Whether the bench database has a backup database (``--backup``, or the shipped set measured)."""
        return self.backup or self.shipped

    @property
    def backup_apart(self) -> bool:
        """Whether the backup side runs on a core of its own (``--backup-cpu``)."""
        return self.pin and self.backup_cpu != self.server_cpu

    def off_server_core(self) -> set[str]:
        """The watched processes that do not run on the server core."""
        return {"capture", "backup", "backup-postgres"} if self.backup and self.backup_apart else set()

    def _backup_server_start(self) -> str:
        """A PostgreSQL of the backup's own on the backup core, with a fresh backup database; its URL.

        Its backends inherit the core it is started on. The primary's side of capture (the
        outbox triggers before issue 20; the WAL sender decoding the slot after it) stays on the
        server core, where it costs the write path.
        """
        import psycopg2

        from devstack.services import Postgres

        server = Postgres(self.data / "postgres-backup", 0)
        server.prepare()
        server.port = free_port()
        os.sched_setaffinity(0, {self.backup_cpu})
        try:
            server.start()
        finally:
            os.sched_setaffinity(0, {self.server_cpu})
        self.backup_server = server
        if self.nice:
            set_niceness(server.pid, self.nice)
        admin = server.url.rsplit("/", 1)[0]
        conn = psycopg2.connect(admin + "/postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute(f'DROP DATABASE IF EXISTS "{BACKUP_DB}" WITH (FORCE)')
                cursor.execute(f'CREATE DATABASE "{BACKUP_DB}"')
        finally:
            conn.close()
        return admin + "/" + BACKUP_DB

    def settle_database(self) -> None:
        """Vacuum, analyse and checkpoint the bench database before the next measurement.

        Autovacuum wakes up after an insert-heavy step (S3 stores 100,000 rows) and would then
        run on the servers' core during whatever comes next; settling first makes each step
        start from the same state, for both targets.
        """
        from django.db import connections

        # autocommit: VACUUM cannot run in a transaction. The backup took every row too.
        for alias in ("backup", "default") if self.backup_db else ("default",):
            with connections[alias].cursor() as cursor:
                cursor.execute("VACUUM (ANALYZE)")
        with connections["default"].cursor() as cursor:
            cursor.execute("CHECKPOINT")

    def backup_wait(self, *, timeout: float = 600.0) -> dict:
        """Wait until the backup database equals the bench database, as ``backup_verify`` checks it.

        Polls both message counts (cheap) and runs the full comparison (row counts and a digest of
        every row of every captured table: PostgreSQL work on the server core) only once they
        agree, so that checking takes little from the catch-up it times. Returns ``seconds`` until
        the backup matched (None: not within ``timeout``) and ``compare_seconds``, the last full
        comparison's own time (included in ``seconds``).
        """
        from backup.services import backup_compare

        start = time.perf_counter()
        differs: list[str] = []
        compares = 0
        while time.perf_counter() < start + timeout:
            if _messages("backup") >= _messages("default"):
                began = time.perf_counter()
                report = backup_compare()
                compares += 1
                differs = [row["table"] for row in report if not row["same"]]
                if not differs:
                    end = time.perf_counter()
                    return {"seconds": end - start, "compare_seconds": end - began, "compares": compares}
            time.sleep(0.1)
        return {"seconds": None, "compare_seconds": None, "compares": compares, "differs": differs}

    def backup_behind(self) -> int:
        """How many messages the bench database holds that the backup does not yet."""
        return _messages("default") - _messages("backup")

    def stop(self) -> None:
        for server in self.servers:
            for process in [server.web, *server.extra]:
                _terminate(process)
            if server.listener is not None:
                server.listener.close()
        self.servers.clear()
        try:
            from django.db import connections

            from streams.pipeline import kafka

            kafka.reset_producer()
            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may never have been set up
            pass
        if self.stack is not None:
            self.stack.stop()
        if self.backup_server is not None:
            self.backup_server.stop()

    def fresh_broker(self) -> None:
        """Restart Tansu empty and create the topics again.

        Tansu's memory storage costs more CPU per request for every batch it holds and never
        drops one (no retention): measured here at a steady 400 messages/s, its share of the core
        went 10 %, 19 %, 29 % over three 10 s steps. A broker carrying every earlier scenario's
        messages would measure that history, not the chat server, so each product scenario
        starts on an empty one (Apache Kafka's cost per request does not grow with its log).
        """
        from streams.pipeline import kafka

        tansu = self.stack.services["KAFKA_BOOTSTRAP_SERVERS"]
        kafka.reset_producer()
        tansu.stop()
        tansu.start()
        if self.nice:
            set_niceness(tansu.pid, self.nice)
        kafka.ensure_topics()

    def service_pids(self) -> dict[str, int]:
        pids = self.stack.pids() if self.stack else {}
        if self.backup_server is not None:
            pids["backup-postgres"] = self.backup_server.pid
        return pids

    # -- servers under test ----------------------------------------------------------------------
    def _pinned(self, argv: list[str], cpu: int) -> list[str]:
        return ["taskset", "-c", str(cpu), *argv] if self.pin else argv

    def _spawn(
        self, name: str, argv: list[str], env: dict[str, str], cpu: int | None = None, pass_fds: tuple[int, ...] = ()
    ) -> subprocess.Popen:
        log = open(self.logs / f"{name}.log", "ab")  # noqa: SIM115 - kept open for the child's life
        return subprocess.Popen(
            self._pinned(argv, self.server_cpu if cpu is None else cpu),
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=pass_fds,
        )

    @staticmethod
    def _daphne(app: str) -> str:
        """The module that runs daphne for ``app``: the product's own server (``chatproject.serve``:
        daphne with its stop, its read and buffer bounds and its frame writer), as `make run` starts
        it, or daphne itself for the tutorial."""
        return "chatproject.serve" if app.startswith("chatproject.") else "daphne"

    def _web(self, name: str, app: str, env: dict[str, str]) -> tuple[int, subprocess.Popen]:
        """The ASGI server (``self.asgi``: daphne, or uvicorn for comparison) serving ``app``."""
        port = free_port()
        argv = [sys.executable, "-m", self._daphne(app), "-b", "127.0.0.1", "-p", str(port), app]
        if self.asgi == "uvicorn":
            argv = [
                sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port), "--lifespan", "off",
                "--ws", "websockets-sansio", "--loop", "uvloop", "--http", "httptools", "--no-access-log", app,
            ]  # fmt: skip
        web = self._spawn(name, argv, env)
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port, timeout=0.2):
            if web.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {self.logs / (name + '.log')}")
            time.sleep(0.1)
        return port, web

    def _shared_webs(
        self, name: str, app: str, env: dict[str, str]
    ) -> tuple[int, list[subprocess.Popen], socket.socket]:
        """``web_concurrency`` daphne processes on one listening socket, as `WEB_CONCURRENCY=N make
        run` starts them (devstack/__main__.py: bound here, handed down with ``--fd``)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(socket.SOMAXCONN)
        port, fd = listener.getsockname()[1], listener.fileno()
        argv = [sys.executable, "-m", self._daphne(app), "--fd", str(fd), app]
        # Each process says when it adopted the socket; the logs are appended to across restarts.
        logs = [self.logs / f"{name}-{i + 1}.log" for i in range(self.web_concurrency)]
        offsets = [log.stat().st_size if log.exists() else 0 for log in logs]
        webs = [self._spawn(log.stem, argv, env, pass_fds=(fd,)) for log in logs]
        deadline = time.monotonic() + 60
        while not all(
            b"Listening on TCP address" in log.read_bytes()[offset:] for log, offset in zip(logs, offsets, strict=True)
        ):
            if any(web.poll() is not None for web in webs) or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {logs}")
            time.sleep(0.1)
        return port, webs, listener

    def start_product(self) -> Server:
        """Daphne with the chat ASGI app and the ``persist`` consumer, as `make run` runs them;
        with ``--backup`` also ``capture_changes`` and the backup consumer, on the backup core (the
        server core unless ``--backup-cpu``); with ``web_concurrency`` above 1, that many daphne
        processes sharing the port (``daphne:2``... in ``extra``, after the consumers)."""
        listener, more = None, []
        # Without --backup, no backup database: the bench's has one only for the shipped set.
        env = self.env if self.backup else {**self.env, "BACKUP_DATABASE_URL": ""}
        if self.web_concurrency > 1:
            port, (web, *more), listener = self._shared_webs("product-web", "chatproject.asgi:application", env)
        else:
            port, web = self._web("product-web", "chatproject.asgi:application", env)
        persist = self._spawn("product-persist", [sys.executable, "manage.py", "consume", "persist"], env)
        extra, names = [persist], ["persist"]
        if self.backup:
            capture = [sys.executable, "manage.py", "capture_changes"]
            extra.append(self._spawn("product-capture", capture, env, self.backup_cpu))
            consume = [sys.executable, "manage.py", "consume", "backup"]
            extra.append(self._spawn("product-backup", consume, env, self.backup_cpu))
            names += ["capture", "backup"]
        extra += more
        names += [f"{self.asgi}:{i + 2}" for i in range(len(more))]
        server = Server("product", port, web, extra, names, self.asgi, listener)
        self.servers.append(server)
        return server

    def start_shipped(self) -> Server:
        """The processes `make run` supervises, by its own command lines (devstack's
        ``process_commands``): the web server (``chatproject.serve``), persist, index, change capture,
        the backup consumer, the Celery worker and beat, with a backup database (`make run`'s default)
        and ``RATE_LIMITS=off``, every one on the server core.

        Returns once the backup equals the bench database: capture first decodes what the other
        targets wrote since the shipped set last ran (the slot kept it), which is not this step's work.
        """
        from devstack.__main__ import process_commands

        port = free_port()
        commands = process_commands(str(port))
        # Beat's schedule file in the bench's folder, never the one of someone's `make run`.
        beat = commands["beat"]
        beat[beat.index("--schedule") + 1] = str(self.data / "celerybeat-schedule")
        env = {**self.env, "BIND": "127.0.0.1"}
        web = self._spawn("shipped-web", commands.pop("web"), env)
        deadline = time.monotonic() + 60
        while not port_open("127.0.0.1", port, timeout=0.2):
            if web.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the shipped web process did not start; see {self.logs / 'shipped-web.log'}")
            time.sleep(0.1)
        names = [name for name in commands if not name.startswith("web")]
        extra = [self._spawn(f"shipped-{name}", commands[name], env) for name in names]
        server = Server("shipped", port, web, extra, names, "web")
        self.servers.append(server)
        waited = self.backup_wait(timeout=180)
        if waited["seconds"] is None:
            print(f"bench | warning: the shipped set's backup still differs in {waited['differs']}", file=sys.stderr)
        return server

    def start_ceiling(self) -> Server:
        """The bare ``websockets`` broadcast server (bench/ceiling.py), on the server core."""
        port = free_port()
        web = self._spawn("ceiling", [sys.executable, "-m", "bench.ceiling", "--port", str(port)], self.env)
        deadline = time.monotonic() + 30
        while not port_open("127.0.0.1", port, timeout=0.2):
            if web.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the ceiling did not start; see {self.logs / 'ceiling.log'}")
            time.sleep(0.1)
        server = Server("ceiling", port, web, [], [], "websockets")
        self.servers.append(server)
        return server

    def start_tutorial(self) -> Server:
        """Daphne with the Channels tutorial chat, same flags, same core, same Redis."""
        env = {**self.env, "DJANGO_SETTINGS_MODULE": "bench.baseline.settings"}
        port, web = self._web("tutorial-web", "bench.baseline.asgi:application", env)
        server = Server("tutorial", port, web, [], [], self.asgi)
        self.servers.append(server)
        return server

    def restart(self, server: Server, *, fresh_broker: bool = False) -> Server:
        """A fresh server process (memory and caches as after a deploy), optionally on an empty
        broker (stopped first: a consumer that rejoins the new broker and is then killed in the
        middle of its group's rebalance left Tansu's group waiting for it for good)."""
        running = server.web.poll() is None
        if running and fresh_broker and ((self.backup and server.name == "product") or server.name == "shipped"):
            # What the old broker still holds for the backup consumer would go with it.
            waited = self.backup_wait(timeout=120)
            if waited["seconds"] is None:
                print(f"bench | warning: the backup still differs in {waited['differs']}", file=sys.stderr)
        self.servers.remove(server)
        for process in [server.web, *server.extra]:
            _terminate(process)
        if server.listener is not None:
            server.listener.close()
        if fresh_broker:
            self.fresh_broker()
        self.settle_database()
        starters = {"product": self.start_product, "shipped": self.start_shipped, "ceiling": self.start_ceiling}
        started = starters.get(server.name, self.start_tutorial)()
        waited = self.quiet(started)
        if waited > 10:
            print(f"bench | {server.name}: its processes settled only after {waited:.0f} s", flush=True)
        return started

    def halt(self, server: Server) -> None:
        """Stop a target's processes while another is measured (``restart`` starts them again).

        The product and the shipped set consume the same topics in the same consumer groups: left
        running, the idle one would take half the partitions of the measured one's steps.
        """
        if server.web.poll() is not None:
            return
        if server.name == "shipped" or (self.backup and server.name == "product"):
            self.backup_wait(timeout=120)  # what the broker holds for the backup goes with it
        for process in [server.web, *server.extra]:
            _terminate(process)

    def quiet(self, server: Server, *, below: float = 0.05, timeout: float = 60.0) -> float:
        """Wait until the target's own processes, just started, use less than ``below`` of a core
        over a second (Django's imports, Celery's start, consumer group joins): a step measures the
        running server, not its start. Returns the seconds waited."""
        from .loadgen import processes_cpu_seconds

        pids = list(server.named_pids.values())
        start = time.monotonic()
        before = sum(processes_cpu_seconds(pids).values())
        while time.monotonic() < start + timeout:
            time.sleep(1.0)
            after = sum(processes_cpu_seconds(pids).values())
            if after - before < below:
                break
            before = after
        return time.monotonic() - start

    # -- client side -------------------------------------------------------------------------------
    def client(self, module: str, spec: dict, *, on_line=None, timeout: float = 1800) -> dict:
        """Run ``python -m <module> SPEC OUT`` on the client core; returns OUT (JSON)."""
        with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
            spec_path, out_path = Path(tmp) / "spec.json", Path(tmp) / "out.json"
            spec_path.write_text(json.dumps(spec))
            process = subprocess.Popen(
                self._pinned([sys.executable, "-m", module, str(spec_path), str(out_path)], self.client_cpu),
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.PIPE,
                stdin=subprocess.PIPE,
                text=True,
            )
            deadline = time.monotonic() + timeout
            for line in process.stdout:
                if on_line:
                    on_line(line.rstrip("\n"), process)
                if time.monotonic() > deadline:
                    break
            try:
                code = process.wait(max(1.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                process.kill()
                raise RuntimeError(f"{module} ran over {timeout} s") from None
            if code != 0:
                raise RuntimeError(f"{module} exited with {code}")
            return json.loads(out_path.read_text())


def _messages(alias: str) -> int:
    """The stored messages in one database (``default``, or ``backup``)."""
    from django.db import connections

    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT count(*) FROM chat_messages_message")
        return cursor.fetchone()[0]


def _terminate(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(5)


def set_niceness(pid: int, nice: int) -> None:
    """Run a process (and its session: Linux schedules sessions as autogroups) at ``nice``.

    With autogroup scheduling a process's own niceness only weighs it against its own session;
    the session's autogroup niceness is what weighs it against the rest of the machine.
    """
    os.setpriority(os.PRIO_PROCESS, pid, nice)
    try:
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
    except OSError:
        pass  # no autogroup scheduling here: the process niceness is all there is


def rss_bytes(pid: int) -> int:
    """Resident memory of one process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def redis_used_memory(url: str) -> int:
    import redis

    client = redis.Redis.from_url(url)
    try:
        return int(client.info("memory")["used_memory"])
    finally:
        client.close()
