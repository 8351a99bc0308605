"""The five scenarios, each run against the tutorial and the product in the same run.

S1  10 rooms x 10 members, offered rate stepped up until p99 passes the limit: the highest
    deliveries/s held with zero loss.
S2  one room of 500 members: the same.
S3  durable ingest: rows/s stored by the persistence consumer vs one ORM insert per message
    (with ``--backup``, change capture and the backup consumer run meanwhile; then how long the
    backup took to catch up).
S4  1,000 idle connections: server memory per connection.
S5  500 clients connecting at the same instant (the product's with ``sync``): time until all
    are whole.
S6  attachments (the product only; the tutorial has none): upload throughput of photos and of
    1 MiB files, and S1's rooms at fixed rates with every tenth message carrying a photo: the
    latency of those beside the text-only ones of the same run.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import time
from dataclasses import dataclass, field
from pathlib import Path

from .stack import BenchStack, Server, redis_used_memory, rss_bytes

TUTORIAL, PRODUCT = "tutorial", "product"
# The processes `make run` supervises (BenchStack.start_shipped), and the bare websockets broadcast
# server (bench/ceiling.py); both measured in S1 and S2 only.
SHIPPED, CEILING = "shipped", "ceiling"
# The targets that speak the product's protocol and store what they accept.
STORING = (PRODUCT, SHIPPED)
FANOUT_ONLY = (SHIPPED, CEILING)


def protocol_of(target: str) -> str:
    """The load generator's protocol for a target: the ceiling speaks the tutorial's."""
    return PRODUCT if target in STORING else TUTORIAL


# Up to 20,000 deliveries/s: what a bare websockets broadcast server held on one core here.
S1_RATES = (500, 1000, 1500, 2000, 3000, 4000, 5000, 6000, 7500, 9000, 10000, 12500, 15000, 17500, 20000)


@dataclass
class Config:
    quick: bool = False
    duration: float = 10.0
    drain: float = 10.0
    payload: int = 100
    p99_ms: float = 100.0
    profile: str | None = None  # a folder: py-spy profiles of the servers during S1, S2 and S3
    # S1/S2: each offered rate on freshly started servers (and an empty broker), not after the
    # earlier steps (see BenchStack.fresh_broker). Off while profiling, which follows one process.
    fresh_per_step: bool = True
    # S1/S2: measure every offered rate, also after two failing steps (CPU per delivery at each).
    sweep_all: bool = False
    s1_rooms: int = 10
    s1_members: int = 10
    s1_rates: list[int] = field(default_factory=lambda: list(S1_RATES))
    s2_members: int = 500
    s2_rates: list[int] = field(
        default_factory=lambda: [250, 500, 1000, 1500, 2000, 3000, 4000, 6000, 8000, 10000, 12500, 15000, 20000]
    )
    s3_count: int = 100000
    s3_orm_count: int = 3000
    s4_connections: int = 1000
    s5_clients: int = 500
    s5_room_size: int = 10
    s5_history: int = 20
    s5_last_seen: int = 10
    s6_rates: list[int] = field(default_factory=lambda: [2000, 5000])
    s6_every: int = 10  # each sender's every Nth message carries an attachment
    s6_upload_concurrency: int = 8
    s6_files: int = 100  # 1 MiB files uploaded for the bytes/s figure

    @classmethod
    def quick_mode(cls) -> Config:
        """Small and short: the whole bench in about a minute, for smoke runs."""
        return cls(
            quick=True, duration=2.0, drain=5.0, s1_rates=[500, 1000], s2_members=100, s2_rates=[500, 1000],
            s3_count=2000, s3_orm_count=300, s4_connections=100, s5_clients=100, s6_rates=[500], s6_files=10,
        )  # fmt: skip


class Runner:
    """Runs scenarios against the servers and keeps every result."""

    def __init__(self, bench: BenchStack, config: Config, servers: dict[str, Server], log=print) -> None:
        self.bench = bench
        self.config = config
        self.servers = servers
        self.log = log
        self.results: dict = {}
        self.serial = itertools.count(1)

    # -- helpers -------------------------------------------------------------------------------------
    def _watch(self, server: Server) -> dict[str, int]:
        if server.name == CEILING:
            return server.named_pids  # it uses none of the services
        return {**server.named_pids, **self.bench.service_pids()}

    def _unique(self, prefix: str) -> str:
        """A name prefix not used before in this run (scenarios repeat; usernames are unique)."""
        return f"{prefix}n{next(self.serial)}"

    def _clients(self, target: str, prefix: str, rooms: int, members: int) -> tuple[list[dict], list]:
        """Clients for ``rooms`` x ``members``: product users with tokens, or tutorial room names."""
        prefix = self._unique(prefix)
        if target not in STORING:
            names = [f"{prefix}{r}" for r in range(rooms)]
            return [{"room": name} for name in names for _ in range(members)], names
        from .population import rooms_create, users_create

        users = users_create(prefix=f"{prefix}u", count=rooms * members)
        groups = [users[r * members : (r + 1) * members] for r in range(rooms)]
        room_ids = rooms_create(prefix=f"{prefix}r", member_ids=[[uid for uid, _ in g] for g in groups])
        clients = [{"room": room_id, "token": key} for room_id, g in zip(room_ids, groups, strict=True) for _, key in g]
        return clients, room_ids

    def fresh_start(self, target: str) -> None:
        """Each scenario starts on freshly started servers; the product's also on an empty broker.

        S4 measures memory per socket from here; S1, S2 and S5 would otherwise pay for what the
        broker kept from the scenarios before them (``BenchStack.fresh_broker``).
        """
        for other, server in self.servers.items():
            if other != target and other in STORING:
                self.bench.halt(server)
        self.servers[target] = self.bench.restart(self.servers[target], fresh_broker=target in STORING)

    # -- S1, S2 ------------------------------------------------------------------------------------------
    def fanout(self, name: str, target: str, *, rooms: int, members: int, rates: list[int]) -> dict:
        server = self.servers[target]
        clients, _ = self._clients(target, f"{name.lower()}{target[0]}", rooms, members)
        spec = {
            "mode": "fanout",
            "protocol": protocol_of(target),
            "url": server.ws,
            "clients": clients,
            "rates": rates,
            "duration": self.config.duration,
            "payload": self.config.payload,
            "drain": self.config.drain,
            "p99_limit_ms": self.config.p99_ms,
            "watch_pids": self._watch(server),
            "server_cpu": self.bench.server_cpu if self.bench.pin else None,
        }
        self.log(f"{name} {target}: {rooms} rooms x {members} members")

        profiler = None
        if self.config.profile:
            from .profile import Profiler

            profiler = Profiler(Path(self.config.profile), f"{name}-{target}", cpu=self.bench.client_cpu)

        def on_line(line: str, _process) -> None:
            if line.startswith("STEP "):
                self.log("   " + step_line(json.loads(line[5:])))
            elif line == "WARM" and profiler:
                profiler.start(server.named_pids)  # the steps only, not connecting and warming up

        try:
            if self.config.fresh_per_step and not profiler:
                result = self._steps_on_fresh_servers(target, spec, on_line)
            else:
                result = self.bench.client("bench.loadgen", spec, on_line=on_line)
        finally:
            if profiler:
                self._report_profiles(profiler.stop())
        if target in STORING:
            from .population import stored_check

            check = stored_check(accepted=result["accepted"])
            result["stored"] = check.__dict__ | {"exact": check.exact}
            self.log(f"   database: {check.__dict__}")
        result.pop("accepted", None)
        best = [s for s in result["steps"] if _ok(s, self.config.p99_ms)]
        result["best"] = max(best, key=lambda s: s["delivered_per_s"]) if best else None
        return result

    def _steps_on_fresh_servers(self, target: str, spec: dict, on_line) -> dict:
        """One load generator run per offered rate, each on restarted servers; the sweep ends
        after two failing steps in a row, as the generator's own does."""
        merged: dict = {"steps": [], "accepted": {}, "warmup_seconds": 0.0}
        for index, rate in enumerate(spec["rates"]):
            if index:
                if target in STORING:
                    self._stored_all(merged["accepted"])  # an emptied broker must lose nothing accepted
                self.fresh_start(target)
            server = self.servers[target]
            step_spec = {**spec, "rates": [rate], "url": server.ws, "watch_pids": self._watch(server)}
            result = self.bench.client("bench.loadgen", step_spec, on_line=on_line)
            for key, value in result.items():
                if key not in merged:
                    merged[key] = value
            merged["steps"] += result["steps"]
            merged["warmup_seconds"] += result.get("warmup_seconds", 0.0)
            for room, ids in result.get("accepted", {}).items():
                merged["accepted"].setdefault(room, []).extend(ids)
            if (
                not self.config.sweep_all
                and len(merged["steps"]) >= 2
                and not any(_ok(s, self.config.p99_ms) for s in merged["steps"][-2:])
            ):
                break
        return merged

    def _stored_all(self, accepted: dict, timeout: float = 60.0) -> None:
        """Wait until the persistence consumer has stored everything accepted so far."""
        from .population import stored_check

        deadline = time.monotonic() + timeout
        while stored_check(accepted=accepted).missing and time.monotonic() < deadline:
            time.sleep(0.5)

    def _report_profiles(self, files: dict) -> None:
        from .profile import hot_spots

        for name, path in files.items():
            samples, own, inclusive = hot_spots(path)
            self.log(f"   profile of {name} ({samples} busy samples, {path}):")
            for frame, share in own[:8]:
                self.log(f"      own {share:5.1%}  {frame}")
            for frame, share in inclusive[:12]:
                self.log(f"      incl {share:5.1%}  {frame}")

    def s1(self, target: str) -> dict:
        c = self.config
        return self.fanout("S1", target, rooms=c.s1_rooms, members=c.s1_members, rates=c.s1_rates)

    def s2(self, target: str) -> dict:
        c = self.config
        return self.fanout("S2", target, rooms=1, members=c.s2_members, rates=c.s2_rates)

    # -- S3 ------------------------------------------------------------------------------------------------
    def s3(self, target: str) -> dict:
        """Durable ingest; the tutorial stores nothing, so its column is the naive ORM insert."""
        from .population import orm_insert_per_row, rooms_create, stored_check, stored_rows, users_create

        c = self.config
        if target == TUTORIAL:
            users = users_create(prefix=self._unique("s3orm"), count=1)
            (room_id,) = rooms_create(prefix=self._unique("s3orm"), member_ids=[[users[0][0]]])
            seconds = orm_insert_per_row(
                room_id=room_id, sender_id=users[0][0], count=c.s3_orm_count, payload=c.payload
            )
            result = {"method": "Message.objects.create per message", "rows": c.s3_orm_count, "seconds": seconds}
            result["rows_per_s"] = round(c.s3_orm_count / seconds, 1)
            self.log(f"S3 per-row ORM insert: {result['rows_per_s']:,.0f} rows/s")
            return result
        server = self.servers[PRODUCT]
        persist = server.extra[0]
        users = users_create(prefix=self._unique("s3u"), count=100)
        ids = [uid for uid, _ in users]
        room_ids = rooms_create(prefix=self._unique("s3r"), member_ids=[ids[r * 10 : (r + 1) * 10] for r in range(10)])
        probe = self._persist_ready(room_ids[0], ids[0])
        base = stored_rows(room_ids=room_ids)
        # The consumer is paused while the envelopes are produced, then timed alone from resume
        # to the last row, so the producer's speed does not enter its figure.
        os.kill(persist.pid, signal.SIGSTOP)
        try:
            produced = self.bench.client(
                "bench.ingest",
                {"rooms": [[r, ids[i * 10 : (i + 1) * 10]] for i, r in enumerate(room_ids)], "count": c.s3_count,
                 "payload": c.payload},
            )  # fmt: skip
            profiler = None
            if self.config.profile:
                from .profile import Profiler

                profiler = Profiler(Path(self.config.profile), "S3-product", cpu=self.bench.client_cpu)
                profiler.start({"persist": persist.pid})
        finally:
            os.kill(persist.pid, signal.SIGCONT)
        from .loadgen import core_snapshot

        watched = self._watch(server)
        core0 = core_snapshot(watched, self.bench.server_cpu)
        start = time.perf_counter()
        deadline = start + 300
        while stored_rows(room_ids=room_ids) - base < c.s3_count and time.perf_counter() < deadline:
            time.sleep(0.02)
        seconds = time.perf_counter() - start
        core1 = core_snapshot(watched, self.bench.server_cpu)
        by_process, rest = self._core_shares(core0, core1, seconds)
        backup = self._backup_catch_up(watched, core1) if self.bench.backup else None
        if profiler:
            self._report_profiles(profiler.stop())
        stored = stored_rows(room_ids=room_ids) - base
        accepted = produced["client_msg_ids"]
        accepted.setdefault(str(room_ids[0]), []).append(probe)
        check = stored_check(accepted=accepted)
        result = {
            "method": "persist consumer (Kafka -> batched insert)",
            "rows": stored,
            "seconds": seconds,
            "rows_per_s": round(stored / seconds, 1),
            "produce_per_s": round(c.s3_count / produced["seconds"], 1),
            "core_share": by_process | rest,  # where the core went meanwhile
            "stored": check.__dict__ | {"exact": check.exact},
        }
        self.log(
            f"S3 persist consumer: {result['rows_per_s']:,.0f} rows/s ({stored} rows in {seconds:.2f} s;"
            f" produced at {result['produce_per_s']:,.0f}/s); database: {check.__dict__}"
        )
        self.log("   core: " + " ".join(f"{name} {share:.0%}" for name, share in result["core_share"].items()))
        if backup:
            result["backup"] = backup
            self.log(
                f"   backup: {backup['behind_at_end']:,} messages behind when persist was done; "
                + (
                    f"equal {backup['catch_up_s']:.1f} s later (its last backup_compare {backup['compare_s']:.1f} s)"
                    if backup["catch_up_s"] is not None
                    else f"NOT equal within the timeout ({', '.join(backup['differs'])} differ)"
                )
                + ";"
                " core meanwhile: " + " ".join(f"{name} {share:.0%}" for name, share in backup["core_share"].items())
            )
        return result

    def _backup_catch_up(self, watched: dict[str, int], core0) -> dict:
        """After S3's window: how far behind the backup was, and how long until it equalled the
        bench database (``backup_verify``'s comparison), with the core's use meanwhile."""
        from .loadgen import core_snapshot

        behind = self.bench.backup_behind()
        start = time.perf_counter()
        waited = self.bench.backup_wait()
        by_process, rest = self._core_shares(
            core0, core_snapshot(watched, self.bench.server_cpu), time.perf_counter() - start
        )
        return {
            "behind_at_end": behind,
            "catch_up_s": waited["seconds"],
            "compare_s": waited["compare_seconds"],
            "differs": waited.get("differs", []),
            "core_share": by_process | rest,
        }

    def _core_shares(self, before, after, seconds: float) -> tuple[dict[str, float], dict[str, float]]:
        """``loadgen.core_shares``, with "others" counted against the processes on the server core
        only (with ``--backup-cpu``, capture and the backup run on another)."""
        from .loadgen import core_shares

        by_process, rest = core_shares(before, after, seconds)
        apart = self.bench.off_server_core()
        if apart:
            busy = (after[1][0] - before[1][0]) / seconds
            ours = sum(share for name, share in by_process.items() if name not in apart)
            rest["others"] = round(max(0.0, busy - ours), 3)
        return by_process, rest

    def _persist_ready(self, room_id: int, sender_id: int, timeout: float = 90.0) -> str:
        """Wait until the persistence consumer stores a probe (it may still be joining its group).

        Returns the probe's client_msg_id.
        """
        import uuid

        from chat_messages.services import send_envelope
        from streams.pipeline import kafka
        from streams.realtime.hub import announced_positions, room_group

        from .population import stored_rows

        before = stored_rows(room_ids=[room_id])
        probe = uuid.uuid4()
        envelope = send_envelope(room_id=room_id, sender_id=sender_id, client_msg_id=probe, body="probe")
        kafka.produce(kafka.MESSAGES, key=room_id, value=envelope)
        deadline = time.monotonic() + timeout
        # Stored and announced: the first publish opens the consumer's Redis connection, which
        # must not land in S3's timed window.
        group = room_group(room_id)
        while announced_positions([group])[group] <= before:  # announced after it was stored
            if time.monotonic() > deadline:
                raise RuntimeError("the persistence consumer stored and announced nothing in 90 s")
            time.sleep(0.1)
        return str(probe)

    # -- S4 ------------------------------------------------------------------------------------------------
    def s4(self, target: str) -> dict:
        """Memory per idle connection, measured on a freshly started server."""
        server = self.servers[target]
        count = self.config.s4_connections
        clients, _ = self._clients(target, f"s4{target[0]}", max(1, count // 10), 10)
        warm, _ = self._clients(target, f"s4w{target[0]}", 2, 10)
        # A few sockets first, so the server has loaded its code and started its pools.
        self._hold(server, warm, lambda info: None)
        time.sleep(1.0)
        redis_url = self.bench.env["REDIS_URL"]
        before, redis_before = rss_bytes(server.web.pid), redis_used_memory(redis_url)
        measured: dict = {}

        def when_ready(info: dict) -> None:
            time.sleep(2.0)
            measured.update(info, rss_after=rss_bytes(server.web.pid), redis_after=redis_used_memory(redis_url))

        self._hold(server, clients, when_ready)
        opened = measured.get("open_after_1s", 0)
        result = {
            "connections": count,
            "open": opened,
            "failures": measured.get("failures"),
            "rss_before": before,
            "rss_after": measured.get("rss_after"),
            "bytes_per_connection": round((measured["rss_after"] - before) / max(1, opened)),
            "redis_bytes_per_connection": round((measured["redis_after"] - redis_before) / max(1, opened)),
        }
        self.log(
            f"S4 {target}: {opened}/{count} open, {result['bytes_per_connection'] / 1024:.1f} KB per connection"
            f" in daphne (+{result['redis_bytes_per_connection'] / 1024:.1f} KB in Redis)"
        )
        return result

    def _hold(self, server: Server, clients: list[dict], when_ready) -> None:
        spec = {"mode": "idle", "protocol": server.name, "url": server.ws, "clients": clients}

        def on_line(line: str, process) -> None:
            if line.startswith("READY "):
                when_ready(json.loads(line[6:]))
                process.stdin.write("release\n")
                process.stdin.flush()

        self.bench.client("bench.loadgen", spec, on_line=on_line)

    # -- S5 ------------------------------------------------------------------------------------------------
    def s5(self, target: str) -> dict:
        c = self.config
        server = self.servers[target]
        rooms = max(1, c.s5_clients // c.s5_room_size)
        clients, room_ids = self._clients(target, f"s5{target[0]}", rooms, c.s5_room_size)
        spec = {"mode": "reconnect", "protocol": target, "url": server.ws, "clients": clients}
        if target == PRODUCT:
            from rooms.models import Participant

            from .population import history_fill

            last_seq = {}
            for room_id in room_ids:
                senders = list(Participant.objects.filter(room_id=room_id).values_list("user_id", flat=True))
                last_seq[str(room_id)] = history_fill(
                    room_id=room_id, sender_ids=senders, count=c.s5_history, payload=c.payload
                )
            spec["last_seq"] = last_seq
            spec["last_seen"] = {room: c.s5_last_seen for room in last_seq}
        result = self.bench.client("bench.loadgen", spec)
        took = f"{result['all_whole_seconds']} s" if result["all_whole_seconds"] is not None else "never"
        self.log(
            f"S5 {target}: {result['accepted']}/{result['clients']} accepted, {result['whole']} whole,"
            f" all whole after {took}; failures {result['failures']}"
        )
        return result

    # -- S6 ------------------------------------------------------------------------------------------------
    def s6(self, target: str) -> dict:
        """Attachments: uploads/s and bytes/s, then fan-out with photos beside text-only messages."""
        if target == TUTORIAL:
            return {"skipped": "the tutorial chat has no attachments"}
        c = self.config
        clients, _ = self._clients(target, "s6p", c.s1_rooms, c.s1_members)
        server = self.servers[target]
        files = self._uploads(server, clients[: c.s6_files], kind="file", per_client=1)
        self.log(f"S6 files: {_upload_line(files)}")
        result: dict = {"files": files, "photos": [], "steps": [], "accepted": {}}
        for index, rate in enumerate(c.s6_rates):
            if index:
                self._stored_all(result["accepted"])
                self.fresh_start(target)
                server = self.servers[target]
            # Enough photos for each sender's every Nth message of the step, and one spare.
            sends_per_client = rate / c.s1_members * c.duration / len(clients)
            photos = self._uploads(server, clients, kind="image", per_client=int(sends_per_client / c.s6_every) + 1)
            self.log(f"S6 photos before {rate:,}/s: {_upload_line(photos)}")
            spec = {
                "mode": "fanout", "protocol": target, "url": server.ws, "clients": clients, "rates": [rate],
                "duration": c.duration, "payload": c.payload, "drain": c.drain, "p99_limit_ms": c.p99_ms,
                "watch_pids": self._watch(server), "server_cpu": self.bench.server_cpu if self.bench.pin else None,
                "attachments": photos.pop("ids"), "attachment_every": c.s6_every,
            }  # fmt: skip
            run = self.bench.client("bench.loadgen", spec, on_line=lambda line, _p: None)
            step = run["steps"][0]
            self.log(
                f"   {step_line(step)}\n   with a photo: {step['attachment_sent']} sent, p50"
                f" {step['attachment_p50_ms']} p99 {step['attachment_p99_ms']} ms; text only: p50"
                f" {step['text_p50_ms']} p99 {step['text_p99_ms']} ms"
            )
            result["photos"].append(photos)
            result["steps"].append(step)
            for room, ids in run["accepted"].items():
                result["accepted"].setdefault(room, []).extend(ids)
        from .population import stored_check

        check = stored_check(accepted=result.pop("accepted"))
        result["stored"] = check.__dict__ | {"exact": check.exact}
        self.log(f"   database: {check.__dict__}")
        return result

    def _uploads(self, server: Server, clients: list[dict], *, kind: str, per_client: int) -> dict:
        spec = {
            "url": f"http://127.0.0.1:{server.port}", "clients": clients, "per_client": per_client, "kind": kind,
            "concurrency": self.config.s6_upload_concurrency, "watch_pids": self._watch(server),
            "server_cpu": self.bench.server_cpu if self.bench.pin else None,
        }  # fmt: skip
        result = self.bench.client("bench.uploads", spec)
        if kind == "file":
            result.pop("ids")
        return result


def _upload_line(run: dict) -> str:
    failures = f", failures {run['failures']}" if run["failures"] else ""
    cpu = f", server {run['server_cpu_ms_per_upload']} ms CPU each" if run.get("server_cpu_ms_per_upload") else ""
    return (
        f"{run['uploads']} x {run['file_bytes'] / 1024:.0f} KB in {run['seconds']} s: {run['uploads_per_s']}/s,"
        f" {run['mb_per_s']} MB/s, p50 {run['p50_ms']} p99 {run['p99_ms']} ms{cpu}{failures}"
    )


def _s6_key(run: dict) -> float:
    photos = run.get("photos") or [{}]
    return photos[0].get("uploads_per_s", 0.0)


KEY_METRICS = {
    "S1": lambda run: (run.get("best") or {}).get("delivered_per_s", 0.0),
    "S2": lambda run: (run.get("best") or {}).get("delivered_per_s", 0.0),
    "S3": lambda run: run["rows_per_s"],
    "S4": lambda run: run["bytes_per_connection"],
    "S5": lambda run: run["whole"] - (run["all_whole_seconds"] or 1e6) / 1e6,
    "S6": _s6_key,
}


def round_figure(scenario: str, run: dict) -> str:
    """One round's key figure, as the README lists them."""
    if "error" in run:
        return "failed"
    if scenario in ("S1", "S2"):
        best = run.get("best")
        return f"{best['delivered_per_s']:,.0f}/s" if best else "none held"
    if scenario == "S3":
        backup = run.get("backup")
        return f"{run['rows_per_s']:,.0f} rows/s" + (f" (backup +{_seconds(backup['catch_up_s'])})" if backup else "")
    if scenario == "S4":
        return f"{run['bytes_per_connection'] / 1024:.1f} KB"
    if scenario == "S6":
        return "skipped" if "skipped" in run else f"{_s6_key(run):,.0f} photos/s"
    took = f"{run['all_whole_seconds']:.2f} s" if run["all_whole_seconds"] is not None else "not all"
    return f"{run['whole']}/{run['clients']} whole, {took}"


def median_run(scenario: str, runs: list[dict]) -> dict:
    """The run whose key figure is the median of the repeats (the lower one for an even count).

    Runs that failed outright are left out, unless every run failed.
    """
    finished = [run for run in runs if "error" not in run]
    if not finished:
        return runs[-1]
    ordered = sorted(finished, key=KEY_METRICS[scenario])
    return ordered[(len(ordered) - 1) // 2]


def _seconds(value: float | None) -> str:
    return "never" if value is None else f"{value:.1f} s"


def _ok(step: dict, p99_ms: float) -> bool:
    return (
        not step.get("closed_by_server")
        and step["lost"] == 0
        and step["duplicates"] == 0
        and not step["refused"]
        and step["sent"] > 0
        and step["p99_ms"] is not None
        and step["p99_ms"] <= p99_ms
    )


def step_line(step: dict) -> str:
    """One line per offered rate, for the live log."""
    refused = f" refused {step['refused']}" if step["refused"] else ""
    if step.get("refused_but_delivered"):
        refused += f" (of which {step['refused_but_delivered']} were delivered anyway)"
    if step.get("closed_by_server"):
        refused += f" sockets closed by server {step['closed_by_server']}"
    server = f" server cpu {step['server_cpu']:.0%}" if step.get("server_cpu") is not None else ""
    core = ""
    if step.get("server_core_others") is not None:
        core = (
            f" core: others {step['server_core_others']:.0%} irq {step['server_core_irq']:.0%}"
            f" steal {step['server_core_steal']:.0%}"
        )
    if step.get("cpu_by_process"):
        core += " (" + " ".join(f"{k} {v:.0%}" for k, v in step["cpu_by_process"].items()) + ")"
    accept = f" accept p99 {step['accept_p99_ms']} ms" if step.get("accept_p99_ms") is not None else ""
    return (
        f"offered {step['offered']:>6,}/s  delivered {step['delivered_per_s']:>9,.0f}/s"
        f"  p50 {step['p50_ms']} p99 {step['p99_ms']} max {step['max_ms']} ms"
        f"  lost {step['lost']} dup {step['duplicates']} unanswered {step['unanswered']}{refused}{accept}"
        f"  gen cpu {step['generator_cpu']:.0%}{server}{core}"
    )
