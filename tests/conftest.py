"""Shared fixtures: users, rooms, and a running server (daphne + consumers) for end-to-end tests.

The services are real: `make test` starts the embedded PostgreSQL, Valkey and Tansu once for the
session (or uses DATABASE_URL, REDIS_URL and KAFKA_BOOTSTRAP_SERVERS from the environment).
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from devstack.services import port_open
from devstack.stack import port_lock

ROOT = Path(__file__).resolve().parent.parent
_counter = itertools.count(1)


def pytest_configure(config):
    config.addinivalue_line("markers", "kafka: needs the broker (its topics are created once per session)")
    from django.db.backends.signals import connection_created

    connection_created.connect(_patient_deadlock_check, weak=False)


def _patient_deadlock_check(sender, connection, **kwargs) -> None:
    """The test process's sessions check for a deadlock after 10 s, the servers' after 1 s.

    A test's teardown empties the tables (TRUNCATE, table by table) while a server process of the
    session may still be storing what the test sent. When the two meet in a deadlock, PostgreSQL
    aborts the session that checked first: then it is the server's transaction, which its worker
    retries as a transient failure, and not the teardown, whose failure poisoned every later test
    of the worker (a clean-clone run failed so).
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET deadlock_timeout = '10s'")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items):
    """Give each schemathesis item the node id schemathesis meant: pytest-xdist tells tests apart by it.

    schemathesis names each operation's item ``test[GET /path]`` but sets its node id the way
    pytest 8 kept it (``_nodeid``); pytest 9 keeps ``_id``, so all thirty items had the test's
    bare id and the workers ran one of them.
    """
    from _pytest.nodeid import coerce_node_id

    for item in items:
        if getattr(item, "originalname", item.name) != item.name and "[" not in item.nodeid.rsplit("::", 1)[-1]:
            item._id = coerce_node_id(f"{item.nodeid}[{item.name[len(item.originalname) + 1 : -1]}]")


@pytest.fixture(scope="session")
def kafka_topics():
    """Create the Kafka topics once per session: requested by what needs the broker, never autouse.

    Tests that need no broker (the codec's, the REST reads', ...) must run with
    KAFKA_BOOTSTRAP_SERVERS pointing at nothing. The `server` fixture depends on this one; other
    tests ask for it with ``pytest.mark.kafka`` (or by naming the fixture).
    """
    from streams.pipeline import kafka

    kafka.ensure_topics()


@pytest.fixture(autouse=True)
def _kafka_marker(request):
    """Tests marked ``kafka`` get the topics (the way pytest-django's ``django_db`` marker works)."""
    if request.node.get_closest_marker("kafka") is not None:
        request.getfixturevalue("kafka_topics")


# A fast hasher first for the users tests make (the default costs a quarter of a CPU second each,
# hundreds of times); the default one after it still checks what it hashed. The servers the tests
# start get the same list, so they check the passwords the tests set.
TEST_PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.MD5PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = TEST_PASSWORD_HASHERS


@pytest.fixture(autouse=True)
def no_rate_limits(settings):
    """Rate limits off, as on the `server` fixture; tests of the limits turn them on."""
    settings.RATE_LIMITS_ENABLED = False


@pytest.fixture
def make_user(django_user_model):
    def make(username: str | None = None, password: str = "correct-horse-battery"):
        name = username or f"user{next(_counter)}"
        return django_user_model.objects.create_user(username=name, password=password)

    return make


@pytest.fixture
def api():
    """``api(user)``: a REST client authenticated by that user's token (``api(None)``: anonymous)."""
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    def client(user):
        c = APIClient()
        if user is not None:
            c.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
        return c

    return client


@pytest.fixture
def make_room(make_user):
    """A group room owned by ``owner`` (made if not given) with ``members``."""
    from rooms.services import room_create_group

    def make(owner=None, members=(), name: str = "general"):
        owner = owner or make_user()
        return room_create_group(owner=owner, name=name, member_ids=[m.pk for m in members])

    return make


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} before listening on {port}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {port} after {timeout} s")


class ServerProcesses:
    """Daphne and Kafka consumers as child processes, on the test database."""

    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.env = env
        self.log_dir = log_dir
        self.port = free_port()
        self.started_web = False
        self.processes: dict[str, subprocess.Popen] = {}

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws/chat/"

    def start(self, name: str, *, port: int | None = None, **env_overrides: str) -> subprocess.Popen:
        """Start a process by kind (web, persist, index); extra copies are named ``kind:suffix``."""
        kind = name.split(":")[0]
        port = port or self.port
        daphne = [
            sys.executable,
            "-m",
            "chatproject.serve",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "chatproject.asgi:application",
        ]
        argv = {
            "web": daphne,
            "persist": [sys.executable, "manage.py", "consume", "persist"],
            "index": [sys.executable, "manage.py", "consume", "index"],
        }[kind]
        log = open(self.log_dir / f"{name.replace(':', '-')}.log", "ab")  # noqa: SIM115 - open for the child's life
        env = {**self.env, **env_overrides}
        if kind != "web":
            process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            self.processes[name] = process
            return process
        # Another test worker may have been handed the same free port: bind under the machine's
        # port lock, and never mistake another worker's server for ours.
        with port_lock():
            if port_open("127.0.0.1", port):
                if port != self.port or self.started_web:
                    raise RuntimeError(f"port {port} is taken by another process")
                self.port = port = free_port()
                argv[argv.index("-p") + 1] = str(port)
            process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
            self.processes[name] = process
            wait_for_port(port, process=process)
        self.started_web = True
        return process

    def stop(self, name: str, sig: int = signal.SIGTERM) -> None:
        process = self.processes.pop(name, None)
        if process is None or process.poll() is not None:
            return
        process.send_signal(sig)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)

    def stop_all(self) -> None:
        for name in list(self.processes):
            self.stop(name)


@pytest.fixture(scope="session")
def server(django_db_setup, django_db_blocker, tmp_path_factory, kafka_topics):
    """A running chat server (web + persist consumer) on the test database, for the session."""
    db = settings.DATABASES["default"]
    env = dict(os.environ)
    env.update(
        DATABASE_URL=f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        REDIS_URL=settings.REDIS_URL,
        BACKUP_DATABASE_URL="",  # change capture has tests of its own
        KAFKA_BOOTSTRAP_SERVERS=settings.KAFKA_BOOTSTRAP_SERVERS,
        PYTHONUNBUFFERED="1",
        # Load-style tests send thousands of messages; the limits have tests of their own.
        RATE_LIMITS="off",
        PASSWORD_HASHERS=",".join(TEST_PASSWORD_HASHERS),
    )
    log_dir = tmp_path_factory.mktemp("server-logs")
    servers = ServerProcesses(env, log_dir)
    servers.start("web")
    servers.start("persist")
    yield servers
    servers.stop_all()


@pytest.fixture
def indexing(server):
    """The session's server with the search index consumer (chat-index) running too, for the test.

    Stopped after it: left running, it polled the worker's embedded broker for the rest of the
    session beside persist, and Tansu's memory storage costs more per request the more batches it
    holds; late in a long run, the broker of that worker stopped acknowledging in time.
    """
    process = server.processes.get("index")
    if process is None or process.poll() is not None:
        server.start("index")
    yield server
    server.stop("index")


@pytest.fixture
def own_server(server, tmp_path):
    """A server of the test's own (web + persist), on Kafka topics and consumer groups of its own.

    For tests that kill, stop or restart its processes: the session's `server` stays as it was,
    and its persist consumer never takes this server's messages.
    """
    from django.test import override_settings

    from streams.pipeline import kafka

    prefix = f"own-{uuid.uuid4().hex[:8]}-"
    with override_settings(KAFKA_TOPIC_PREFIX=prefix):
        kafka.ensure_topics()
    own = ServerProcesses({**server.env, "KAFKA_TOPIC_PREFIX": prefix}, tmp_path)
    own.start("web")
    own.start("persist")
    yield own
    own.stop_all()


@pytest.fixture
def celery_eager():
    """Run Celery tasks in-process when enqueued (CELERY_TASK_ALWAYS_EAGER for this test)."""
    from chatproject.celery import app

    previous = app.conf.task_always_eager, app.conf.task_eager_propagates
    app.conf.task_always_eager, app.conf.task_eager_propagates = True, True
    yield app
    app.conf.task_always_eager, app.conf.task_eager_propagates = previous


class Feed:
    """Everything published to the real-time channels (real Redis) since the fixture started."""

    def __init__(self) -> None:
        import redis

        self.client = redis.Redis.from_url(settings.REDIS_URL)
        self.pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        from streams.realtime.hub import CHANNEL_PREFIX

        self.pubsub.psubscribe(CHANNEL_PREFIX + "*")
        self.pubsub.get_message(timeout=1.0)  # wait for the subscription to be in place
        self.seen: list[tuple[str, dict | None, dict | None]] = []

    def events(self, settle: float = 0.3) -> list[tuple[str, dict | None, dict | None]]:
        """(group, frame, control) of each event so far, in publish order."""
        from streams.realtime.hub import CHANNEL_PREFIX, parse_event

        deadline = time.monotonic() + settle
        while time.monotonic() < deadline:
            message = self.pubsub.get_message(timeout=0.05)
            if message and message["type"] == "pmessage":
                texts, control = parse_event(message["data"])
                group = message["channel"].decode()[len(CHANNEL_PREFIX) :]
                for index, text in enumerate(texts or [None]):
                    self.seen.append((group, json.loads(text) if text else None, None if index else control))
        return list(self.seen)

    def clear(self) -> None:
        """Forget what was published so far."""
        self.events()
        self.seen.clear()

    def frames(self, group: str, settle: float = 0.3) -> list[dict]:
        return [frame for g, frame, _ in self.events(settle) if g == group and frame is not None]

    def close(self) -> None:
        self.pubsub.close()
        self.client.close()


@pytest.fixture
def feed():
    feed = Feed()
    yield feed
    feed.close()
