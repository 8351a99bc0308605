"""Command line of the embedded stack.

``python -m devstack run``: start what the environment does not name, migrate, create the Kafka
topics and the demo admin, re-produce what a previous stop spilled, then supervise the server, the
consumers, Celery and the embedded services until Ctrl-C, which stops them without losing what
was accepted (devstack/supervisor.py, docs/reliability.md).
``python -m devstack exec -- CMD...``: run CMD with the services up (the test command uses this).
``python -m devstack up``: the services alone, until Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from .services import ServiceError
from .stack import Stack, unreachable
from .supervisor import Supervisor, Watched
from .topics import create_topics, topic_partitions

ROOT = Path(__file__).resolve().parent.parent


def _python() -> str:
    return sys.executable


def web_names(concurrency: int) -> tuple[str, ...]:
    """The supervisor's names of the web processes: ``web``, ``web:2``, ``web:3``..."""
    return ("web", *(f"web:{i}" for i in range(2, concurrency + 1)))


def web_concurrency(environ: dict[str, str]) -> int:
    """``WEB_CONCURRENCY``, the number of web processes (default 1); ValueError when it is not a positive integer."""
    raw = (environ.get("WEB_CONCURRENCY") or "1").strip()
    if not raw.isdigit() or int(raw) < 1:
        raise ValueError(f"WEB_CONCURRENCY must be a positive integer (the number of web processes), not {raw!r}")
    return int(raw)


def listening_socket(host: str, port: int) -> socket.socket:
    """The port the web processes share: bound and listening here, inherited by each of them.

    The kernel queues connections on it while a web process restarts and hands each to whichever
    process accepts first, so the load spreads over those that are not busy.
    """
    if ":" in host:
        # daphne's --fd adopts an IPv4 socket only (its twisted `fd:` endpoint's default family).
        raise ValueError(f"WEB_CONCURRENCY above 1 needs an IPv4 BIND address, not {host!r}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(socket.SOMAXCONN)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def process_commands(port: str, *, web_fd: int | None = None, concurrency: int = 1) -> dict[str, list[str]]:
    """Each supervised process's command line; with ``web_fd``, ``concurrency`` web processes
    serve the listening socket of that descriptor (daphne's ``--fd``) instead of binding the port."""
    manage = [_python(), str(ROOT / "manage.py")]
    bind = ["-b", os.environ.get("BIND", "127.0.0.1"), "-p", port]
    listen = bind if web_fd is None else ["--fd", str(web_fd)]
    web = [_python(), "-m", "chatproject.serve", *listen, "chatproject.asgi:application"]
    return {
        **dict.fromkeys(web_names(concurrency), web),
        "persist": [*manage, "consume", "persist"],
        "index": [*manage, "consume", "index"],
        "capture": [*manage, "capture_changes"],
        "backup": [*manage, "consume", "backup"],
        "worker": [_python(), "-m", "celery", "-A", "chatproject", "worker", "--loglevel=INFO",
                   "--concurrency=2", "--without-gossip", "--without-mingle"],
        "beat": [_python(), "-m", "celery", "-A", "chatproject", "beat", "--loglevel=INFO",
                 "--schedule", str(ROOT / ".devstack" / "celerybeat-schedule")],
    }  # fmt: skip


def _start(stack: Stack) -> dict[str, str]:
    configured = {
        k: v for k, v in stack.environ.items() if k in ("DATABASE_URL", "REDIS_URL", "KAFKA_BOOTSTRAP_SERVERS") and v
    }
    problems = unreachable(configured)
    if problems:
        for line in problems:
            print(f"error: {line}", file=sys.stderr)
        sys.exit(2)
    try:
        return stack.start()
    except ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)


def _env(urls: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(urls)
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


# The consumer groups that keep a position on the broker: stopped when the broker dies and started
# again once the restarted (empty) broker has its topics, so none of them carries a position or a
# group membership from the old broker into the new one.
CONSUMERS = ("persist", "index", "backup")
BROKER_LIMITS = (
    "the embedded broker keeps its log in memory: a stop stores (or spills to disk) what it holds,"
    " a crash of the broker loses what it held unstored (clients re-send it, docs/reliability.md)"
)


def _watch(stack: Stack, supervisor_ref: list, manage: list[str]) -> list[Watched]:
    """The embedded services, each restarted by the supervisor when it dies."""
    watched = []
    for variable, service in stack.services.items():
        if variable == "KAFKA_BOOTSTRAP_SERVERS":
            watched.append(
                Watched(
                    service,
                    after=_broker_back(stack, supervisor_ref, manage),
                    down=lambda: supervisor_ref[0].hold(CONSUMERS, "the broker died; back once it is"),
                )
            )
        else:
            watched.append(Watched(service, after=stack.save_state))
    return watched


def _broker_back(stack: Stack, supervisor_ref: list, manage: list[str]):
    """After a broker restart: re-create the topics at once (before a producer makes the broker
    auto-create one with its default partition count, if we can), start the consumers again, and
    run `kafka_topics` as a check (or, when the quick creation failed, to create them first)."""

    def consumers_start() -> None:
        supervisor_ref[0].release(CONSUMERS, "the broker is back with its topics")

    def topics(*, then=None, attempt: int = 1) -> None:
        def done(code: int) -> None:
            supervisor = supervisor_ref[0]
            if code == 0:
                if then is not None:
                    then()
            elif attempt < 5 and not supervisor.stopping:
                topics(then=then, attempt=attempt + 1)

        supervisor_ref[0].oneshot("topics", [*manage, "kafka_topics"], on_exit=done)

    def after() -> None:
        stack.save_state()
        supervisor = supervisor_ref[0]
        try:
            if not stack.topics:
                raise RuntimeError("their partition counts are not known")
            created = create_topics(stack.urls["KAFKA_BOOTSTRAP_SERVERS"], stack.topics)
        except Exception as exc:  # noqa: BLE001 - kafka_topics below makes them, then the consumers start
            supervisor.say(f"could not re-create the topics at once ({exc}); running kafka_topics")
            topics(then=consumers_start)
            return
        supervisor.say(f"re-created the topics {', '.join(sorted(created)) or '(none missing)'}")
        consumers_start()
        topics()

    return after


def cmd_run(args: argparse.Namespace) -> int:
    try:
        concurrency = web_concurrency(os.environ)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    stack = Stack(args.data)
    urls = _start(stack)
    env = _env(urls)
    manage = [_python(), str(ROOT / "manage.py")]
    exit_code = 0
    shared: socket.socket | None = None
    try:
        for name, url in urls.items():
            print(f"devstack | {name}={url}", flush=True)
        subprocess.run([*manage, "bootstrap"], env=env, check=True)
        if any(stack.spill_dir.glob("*.jsonl")):
            # A stop that ran out of time left these; the topics exist now and no consumer runs yet.
            subprocess.run([*manage, "drain", "--restore", str(stack.spill_dir)], env=env, check=True)
        if stack.broker_embedded:
            stack.topics = topic_partitions(urls["KAFKA_BOOTSTRAP_SERVERS"])
        port = env.get("PORT", "8000")
        if concurrency > 1:
            try:
                shared = listening_socket(env.get("BIND", "127.0.0.1"), int(port))
            except (OSError, ValueError) as exc:
                print(f"error: cannot listen on port {port}: {exc}", file=sys.stderr)
                return 2
            print(f"devstack | {concurrency} web processes share port {port} (WEB_CONCURRENCY)", flush=True)
        commands = process_commands(port, web_fd=shared.fileno() if shared else None, concurrency=concurrency)
        if not env.get("BACKUP_DATABASE_URL"):
            commands = {k: v for k, v in commands.items() if k not in ("capture", "backup")}
        only = set(args.only.split(",")) if args.only else None
        if only:
            commands = {k: v for k, v in commands.items() if k.split(":")[0] in only}
        webs = tuple(name for name in commands if name.split(":")[0] == "web")
        if stack.broker_embedded:
            print(f"devstack | note: {BROKER_LIMITS}", flush=True)
        print(f"devstack | serving on http://127.0.0.1:{port}/  (Ctrl-C stops everything)", flush=True)
        supervisor_ref: list[Supervisor] = []
        supervisor = Supervisor(
            commands,
            env=env,
            drain=[*manage, "drain"],
            spill=[*manage, "drain", "--timeout", "0", "--spill", str(stack.spill_dir)]
            if stack.broker_embedded
            else None,
            services=_watch(stack, supervisor_ref, manage),
            first=webs,
            # Every web process has the socket: closed once they stopped, new connections are refused.
            pass_fds=dict.fromkeys(webs, (shared.fileno(),)) if shared else None,
            after_first=shared.close if shared else None,
        )
        supervisor_ref.append(supervisor)
        supervisor.run()
        if supervisor.lost:
            exit_code = 3
    except subprocess.CalledProcessError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    finally:
        if shared is not None:
            shared.close()
        print("devstack | stopping the services", flush=True)
        stack.stop()
        print("devstack | stopped", flush=True)
    return exit_code


def cmd_exec(args: argparse.Namespace) -> int:
    stack = Stack(args.data, fixed_ports=False)
    urls = _start(stack)
    child = None
    try:
        child = subprocess.Popen(args.command, env=_env(urls))
        return child.wait()
    except KeyboardInterrupt:
        if child is not None:
            child.send_signal(signal.SIGINT)
            child.wait()
        return 130
    finally:
        stack.stop()


def cmd_up(args: argparse.Namespace) -> int:
    stack = Stack(args.data)
    urls = _start(stack)
    for name, url in urls.items():
        print(f"{name}={url}", flush=True)
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        while not stopping:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stack.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    run = sub.add_parser("run", help="the whole chat server in the foreground")
    run.add_argument("--data", type=Path, default=ROOT / ".devstack" / "run")
    run.add_argument("--only", help="comma-separated process names to run (default: all)")
    run.set_defaults(func=cmd_run)
    ex = sub.add_parser("exec", help="run a command with the services up")
    ex.add_argument("--data", type=Path, default=ROOT / ".devstack" / "test")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_exec)
    up = sub.add_parser("up", help="the services alone")
    up.add_argument("--data", type=Path, default=ROOT / ".devstack" / "run")
    up.set_defaults(func=cmd_up)
    args = parser.parse_args(argv)
    if getattr(args, "command", None) and args.command[0] == "--":
        args.command = args.command[1:]
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
