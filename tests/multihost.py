"""Hosts of their own on one machine: Linux network namespaces on a bridge, for multi-host tests.

``Network`` makes a bridge in a namespace of its own (the "switch": the machine's firewall rules,
which a Docker host applies to bridged traffic, are not in it) and one namespace per host, each
joined to the bridge by a veth pair and given an address of a private /24 that no route of the
machine uses; the root namespace has a veth into the bridge too, so the test process reaches every
host. Every name carries the run's id, so runs (and leftovers of a killed run) never meet.
``Network.teardown`` kills what still runs in the namespaces and deletes them (their veth ends, and
the bridge, go with them).

``python -m tests.multihost services --host IP --subnet CIDR --data DIR``, run inside a namespace
with ``ip netns exec``, starts devstack's embedded PostgreSQL, Valkey and Tansu listening on the
namespace's address as well as its loopback (the services' own readiness checks use the loopback),
prints their URLs as ``NAME=url`` lines and stops them on SIGTERM.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from devstack.services import Postgres, Tansu, Valkey

ROOT = Path(__file__).resolve().parent.parent


def netns_unavailable() -> str | None:
    """Why namespaces cannot be made here (the reason a test skips with), or None when they can."""
    if os.geteuid() != 0:
        return "network namespaces need root (ip netns add)"
    if shutil.which("ip") is None:
        return "the `ip` command (iproute2) is not installed"
    probe = f"mhprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if made.returncode:
        return f"`ip netns add` was refused: {made.stderr.strip() or made.returncode}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True, check=False)
    return None


def _ip(*args: str, ns: str | None = None) -> None:
    argv = ["ip", "netns", "exec", ns, "ip", *args] if ns else ["ip", *args]
    done = subprocess.run(argv, capture_output=True, text=True, check=False)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip()}")


def _free_subnet() -> ipaddress.IPv4Network:
    """A 10.x.y.0/24 that overlaps none of the machine's routes."""
    routes = subprocess.run(["ip", "-4", "route", "show", "table", "all"], capture_output=True, text=True).stdout
    used = []
    for line in routes.splitlines():
        word = line.split()[0] if line.split() else ""
        if word[:1].isdigit():
            used.append(ipaddress.ip_network(word if "/" in word else f"{word}/32", strict=False))
    for _ in range(100):
        subnet = ipaddress.ip_network(f"10.{random.randint(100, 250)}.{random.randint(0, 255)}.0/24")
        if not any(subnet.overlaps(u) for u in used if u.prefixlen > 0):
            return subnet
    raise RuntimeError("no free 10.x.y.0/24 for the test network")


@dataclass
class Host:
    """One namespace with one address on the bridge; what runs in it is started by ``popen``."""

    name: str
    ns: str
    ip: str
    processes: list[subprocess.Popen] = field(default_factory=list)

    def popen(self, argv: list[str], *, log: Path, env: dict[str, str]) -> subprocess.Popen:
        """Start ``argv`` in this host's namespace (its own session), output appended to ``log``."""
        with open(log, "ab") as out:
            process = subprocess.Popen(
                ["ip", "netns", "exec", self.ns, *argv],
                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True,
            )  # fmt: skip
        self.processes.append(process)
        return process

    def pids(self) -> list[int]:
        """Every process running in this namespace (``ip netns exec`` becomes the command it runs)."""
        listed = subprocess.run(["ip", "netns", "pids", self.ns], capture_output=True, text=True, check=False)
        return [int(p) for p in listed.stdout.split()]

    def kill_all(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to every process of the host: a host lost at once when it is SIGKILL."""
        for pid in self.pids():
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        for process in self.processes:
            if sig == signal.SIGKILL:
                process.wait(10)

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM to what this host runs, SIGKILL to what is left after ``timeout``."""
        self.kill_all(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        while self.pids() and time.monotonic() < deadline:
            time.sleep(0.1)
        self.kill_all(signal.SIGKILL)
        for process in self.processes:
            try:
                process.wait(5)
            except subprocess.TimeoutExpired:
                pass


class Network:
    """A bridge in a switch namespace, the root namespace and namespaces ("hosts") attached to it."""

    def __init__(self) -> None:
        self.id = f"mh{uuid.uuid4().hex[:6]}"  # names up to 15 characters: "mh123456-br"
        self.subnet = _free_subnet()
        self._addresses = self.subnet.hosts()
        self.gateway = str(next(self._addresses))
        self.switch = f"{self.id}-sw"
        self.bridge = f"{self.id}-br"
        self.hosts: list[Host] = []
        self._switch_made = False

    def up(self) -> None:
        _ip("netns", "add", self.switch)
        self._switch_made = True
        _ip("link", "add", self.bridge, "type", "bridge", ns=self.switch)
        _ip("link", "set", self.bridge, "up", ns=self.switch)
        root, port = f"{self.id}-r0", f"{self.id}-r1"
        _ip("link", "add", root, "type", "veth", "peer", "name", port)
        _ip("link", "set", port, "netns", self.switch)
        _ip("link", "set", port, "master", self.bridge, "up", ns=self.switch)
        _ip("addr", "add", f"{self.gateway}/{self.subnet.prefixlen}", "dev", root)
        _ip("link", "set", root, "up")

    def add_host(self, name: str) -> Host:
        host = Host(name=name, ns=f"{self.id}-{name}", ip=str(next(self._addresses)))
        outer, inner = f"{self.id}-{name}0", f"{self.id}-{name}1"
        _ip("netns", "add", host.ns)
        self.hosts.append(host)
        _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
        _ip("link", "set", inner, "netns", host.ns)
        _ip("link", "set", outer, "netns", self.switch)
        _ip("link", "set", outer, "master", self.bridge, "up", ns=self.switch)
        _ip("addr", "add", f"{host.ip}/{self.subnet.prefixlen}", "dev", inner, ns=host.ns)
        _ip("link", "set", inner, "up", ns=host.ns)
        _ip("link", "set", "lo", "up", ns=host.ns)
        return host

    def teardown(self) -> None:
        """Stop every host's processes and remove the namespaces and the bridge (never raises)."""
        for host in self.hosts:
            try:
                host.stop()
            except Exception:  # noqa: BLE001 - the namespaces must go whatever happened
                pass
            subprocess.run(["ip", "netns", "del", host.ns], capture_output=True, check=False)
        if self._switch_made:
            subprocess.run(["ip", "netns", "del", self.switch], capture_output=True, check=False)
        # Gone with its peer in the switch already, unless the switch was never made.
        subprocess.run(["ip", "link", "del", f"{self.id}-r0"], capture_output=True, check=False)


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition librdkafka's ``murmur2_random`` partitioner (Java's) gives a non-empty key."""
    m, length = 0x5BD1E995, len(key)
    h = (0x9747B28C ^ length) & 0xFFFFFFFF
    for i in range(length // 4):
        k = int.from_bytes(key[4 * i : 4 * i + 4], "little")
        k = (k * m) & 0xFFFFFFFF
        k ^= k >> 24
        k = (k * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = key[length // 4 * 4 :]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h ^= tail[0]
        h = (h * m) & 0xFFFFFFFF
    h ^= h >> 13
    h = (h * m) & 0xFFFFFFFF
    h ^= h >> 15
    return (h & 0x7FFFFFFF) % partitions


# The services, listening on the namespace's address. The namespace is the host's own, so the
# well-known ports are free.


class HostPostgres(Postgres):
    host = subnet = ""

    @property
    def url(self) -> str:
        return f"postgres://postgres@{self.host}:{self.port}/{self.database}"

    def command(self) -> list[str]:
        argv = super().command()
        argv[argv.index("-h") + 1] = f"127.0.0.1,{self.host}"
        return argv

    def prepare(self) -> None:
        super().prepare()
        hba = self.pgdata / "pg_hba.conf"
        line = f"host all all {self.subnet} trust\n"
        if line not in hba.read_text():
            with open(hba, "a") as out:
                out.write(line)


class HostValkey(Valkey):
    host = ""

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def command(self) -> list[str]:
        argv = super().command()
        at = argv.index("--bind") + 2
        # Protected mode refuses every address but the loopback when no password is set; the
        # namespace's network is the test's own.
        return [*argv[:at], self.host, *argv[at:], "--protected-mode", "no"]


class HostTansu(Tansu):
    host = ""

    @property
    def url(self) -> str:
        return f"{self.host}:{self.port}"

    def command(self) -> list[str]:
        argv = super().command()
        argv[argv.index("--listener-url") + 1] = f"tcp://0.0.0.0:{self.port}"
        argv[argv.index("--advertised-listener-url") + 1] = f"tcp://{self.host}:{self.port}"
        return argv


def serve_services(host: str, subnet: str, data: Path) -> int:
    """Start the three services on ``host``, print their URLs, stop them on SIGTERM."""
    services = {}
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(1))
    try:
        for variable, cls, port in (
            ("DATABASE_URL", HostPostgres, 5432),
            ("REDIS_URL", HostValkey, 6379),
            ("KAFKA_BOOTSTRAP_SERVERS", HostTansu, 9092),
        ):
            cls.host, cls.subnet = host, subnet
            service = cls(data / cls.name, port)
            service.start()
            services[variable] = service
            print(f"{variable}={service.url}", flush=True)
        print("ready", flush=True)
        while not stopping:
            time.sleep(0.2)
    finally:
        for service in reversed(list(services.values())):
            service.stop()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.multihost")
    sub = parser.add_subparsers(dest="verb", required=True)
    services = sub.add_parser("services", help="PostgreSQL, Valkey and Tansu on --host")
    services.add_argument("--host", required=True)
    services.add_argument("--subnet", required=True)
    services.add_argument("--data", type=Path, required=True)
    args = parser.parse_args(argv)
    return serve_services(args.host, args.subnet, args.data)


if __name__ == "__main__":
    sys.exit(main())
