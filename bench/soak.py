"""``python -m bench.soak``: the shipped process set under a steady load for a long time (issue 23).

Runs every process `make run` supervises (``BenchStack.start_shipped``: web, persist, index,
change capture, the backup consumer, Celery's worker and beat) on the bench's own embedded
PostgreSQL, Valkey and Tansu, and offers a steady rate on S1's layout (rooms x members,
``bench.loadgen``'s clients, one step a minute) while other sockets of the same rooms connect,
`sync`, listen a while and leave throughout (the churn, a second client process). Every minute it
samples the memory of every server process, the consumer groups' lag and that minute's p99
delivery latency, prints a table, and writes the figures as JSON and a plot (PNG).

Memory is each process's proportional set size (PSS) with its children (PostgreSQL's backends,
Celery's pool), so memory shared between them is counted once. The product's processes and the
services are kept apart: Tansu's memory storage keeps every batch (bench/README.md), so the broker
grows for as long as a soak runs whatever the product does; the product's own memory must not.

``python -m bench.soak SPEC.json OUT.json`` is the churn client itself (started by the soak).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import threading
import time
from pathlib import Path

from .loadgen import _descendants, cpu_ticks

ROOT = Path(__file__).resolve().parent.parent
# bench/README.md, "The shipped set and the ceiling": the shipped set held S1 at 4,000-6,000
# deliveries/s on the one server core (the stripped web + persist set alone held up to 20,000);
# a soak runs the shipped set at half of what it holds.
S1_HELD_PER_S = 5_000
SERVICES = ("postgres", "valkey", "tansu")


# -- the churn client ------------------------------------------------------------------------------
async def churn(spec: dict) -> dict:
    """``concurrent`` loops, each: connect a random churn client, `sync`, listen 5-30 s, leave."""
    from websockets import ConnectionClosed

    from .loadgen import Client, open_socket

    clients = [Client(**c) for c in spec["clients"]]
    deadline = time.monotonic() + spec["seconds"]
    counts = {"opened": 0, "synced": 0, "failed": 0, "closed_by_server": {}}

    async def loop(seed: int) -> None:
        rng = random.Random(seed)
        while time.monotonic() < deadline:
            client = rng.choice(clients)
            try:
                ws = await open_socket("product", spec["url"], client)
            except Exception:  # noqa: BLE001 - counted; the soak goes on
                counts["failed"] += 1
                await asyncio.sleep(1.0)
                continue
            counts["opened"] += 1
            try:
                await ws.send(json.dumps({"type": "sync", "rooms": {}, "req": "churn"}))
                stay = time.monotonic() + rng.uniform(5.0, 30.0)
                while time.monotonic() < min(stay, deadline):
                    try:
                        text = await asyncio.wait_for(ws.recv(), timeout=1.0)
                    except TimeoutError:
                        continue
                    if '"sync.done"' in text:
                        counts["synced"] += 1
                await ws.close()
            except ConnectionClosed as exc:
                code = str(exc.rcvd.code if exc.rcvd else 1006)
                counts["closed_by_server"][code] = counts["closed_by_server"].get(code, 0) + 1

    await asyncio.gather(*(loop(seed) for seed in range(spec["concurrent"])))
    return counts


# -- sampling --------------------------------------------------------------------------------------
def pss_bytes(pid: int) -> int:
    """PSS of a process and its descendants (RSS where smaps_rollup cannot be read)."""
    total = 0
    for each in _descendants(pid):
        try:
            lines = Path(f"/proc/{each}/smaps_rollup").read_text().splitlines()
            key = "Pss:"
        except OSError:
            try:
                lines = Path(f"/proc/{each}/status").read_text().splitlines()
            except OSError:
                continue
            key = "VmRSS:"
        for line in lines:
            if line.startswith(key):
                total += int(line.split()[1]) * 1024
                break
    return total


def move_to_core(pid: int, cpu: int) -> None:
    """Run every thread of ``pid`` on ``cpu`` from now on (an affinity is per thread)."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        os.sched_setaffinity(int(task.name), {cpu})


def cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of a process and its descendants, those that ended included
    (PostgreSQL's backends that ended count in the postmaster's reaped children's time)."""
    ticks = (cpu_ticks(each, reaped=True) for each in _descendants(pid))
    return sum(t for t in ticks if t is not None) / os.sysconf("SC_CLK_TCK")


def lag_by_group() -> dict[str, int]:
    """Records each consumer group has not committed yet, all its topics together."""
    from ops.selectors import consumer_lag

    totals: dict[str, int] = {}
    for row in consumer_lag():
        totals[row["group"]] = totals.get(row["group"], 0) + row["lag"]
    return totals


def sample(product: dict[str, int], services: dict[str, int]) -> dict:
    memory = {name: pss_bytes(pid) for name, pid in {**product, **services}.items()}
    try:
        lag = lag_by_group()
    except Exception as exc:  # noqa: BLE001 - the broker too busy to answer is a finding, not a crash
        lag = {"error": str(exc)[:200]}
    return {
        "at": time.monotonic(),
        "cpu_s": {name: cpu_seconds(pid) for name, pid in {**product, **services}.items()},
        "memory": memory,
        "product_bytes": sum(memory[name] for name in product),
        "broker_bytes": sum(v for name, v in memory.items() if name.startswith("tansu")),
        "lag": lag,
    }


def cpu_shares(row: dict, before: dict) -> dict[str, float]:
    """Each process's share of a core between two samples, in %."""
    seconds = row["at"] - before["at"]
    return {name: 100 * (row["cpu_s"][name] - before["cpu_s"].get(name, 0.0)) / seconds for name in row["cpu_s"]}


# -- the soak ----------------------------------------------------------------------------------------
def mb(value: int | None) -> str:
    return "-" if value is None else f"{value / 1e6:.0f}"


def table(rows: list[dict], names: list[str]) -> str:
    head = ["min", "deliv/s", "p99 ms", "lost", "lag", "product CPU %", "broker CPU %", "product MB", "broker MB",
            *names]  # fmt: skip
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for row in rows:
        lag = row["lag"]
        lag_text = "?" if "error" in lag else str(sum(lag.values()))
        step = row.get("step") or {}
        cells = [
            str(row["minute"]),
            f"{step.get('delivered_per_s', 0):,.0f}",
            "-" if step.get("p99_ms") is None else f"{step['p99_ms']:.0f}",
            str(step.get("lost", "-")),
            lag_text,
            "-" if row.get("product_cpu") is None else f"{row['product_cpu']:.0f}",
            "-" if row.get("broker_cpu") is None else f"{row['broker_cpu']:.0f}",
            mb(row["product_bytes"]),
            mb(row["broker_bytes"]),
            *(mb(row["memory"].get(name)) for name in names),
        ]
        lines.append(" | ".join(cells))
    return "\n".join(lines)


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = result["samples"]
    minutes = [row["minute"] for row in rows]
    fig, (mem, cpu, lag, lat) = plt.subplots(4, 1, figsize=(10, 14), sharex=True)
    for name in result["product_processes"]:
        mem.plot(minutes, [row["memory"].get(name, 0) / 1e6 for row in rows], label=name)
    for name in result["services"]:
        mem.plot(minutes, [row["memory"].get(name, 0) / 1e6 for row in rows], "--", label=f"{name} (service)")
    mem.set_ylabel("PSS, MB")
    mem.set_title("memory per process (solid: the product's, dashed: the services')")
    mem.legend(fontsize="small", ncol=3)
    timed = [row for row in rows if "cpu" in row]
    for name in [*result["product_processes"], *result["services"]]:
        style = "-" if name in result["product_processes"] else "--"
        cpu.plot([row["minute"] for row in timed], [row["cpu"].get(name, 0) for row in timed], style, label=name)
    cpu.set_ylabel("% of a core")
    cpu.set_title("CPU per process, each minute (dashed: the services')")
    cpu.legend(fontsize="small", ncol=3)
    groups = sorted({g for row in rows for g in row["lag"] if g != "error"})
    for group in groups:
        lag.plot(minutes, [row["lag"].get(group, 0) for row in rows], label=group)
    lag.set_ylabel("records behind")
    lag.set_title("consumer lag")
    if groups:
        lag.legend(fontsize="small")
    lat.plot(minutes, [(row.get("step") or {}).get("p99_ms") for row in rows], marker="o", label="p99")
    lat.plot(minutes, [(row.get("step") or {}).get("p50_ms") for row in rows], marker=".", label="p50")
    lat.set_ylabel("delivery latency, ms")
    lat.set_xlabel("minute")
    lat.set_title("message.new latency, send to receipt")
    lat.legend(fontsize="small")
    fig.suptitle(result["label"])
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def run(args: argparse.Namespace) -> dict:
    from .stack import BenchStack

    rate = args.rate or S1_HELD_PER_S // 2
    bench = BenchStack(Path(args.data), server_cpu=args.server_cpu, client_cpu=args.client_cpu, pin=not args.no_pin,
                       shipped=True)  # fmt: skip
    started_at = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    rows: list[dict] = []
    try:
        bench.start()
        server = bench.start_shipped()
        from .population import rooms_create, users_create

        per_room = args.members + args.churn_members
        users = users_create(prefix="soak", count=args.rooms * per_room)
        groups = [users[r * per_room : (r + 1) * per_room] for r in range(args.rooms)]
        room_ids = rooms_create(prefix="soak", member_ids=[[uid for uid, _ in g] for g in groups])
        steady = [
            {"room": room, "token": key}
            for room, g in zip(room_ids, groups, strict=True)
            for _, key in g[: args.members]
        ]
        churners = [
            {"room": room, "token": key}
            for room, g in zip(room_ids, groups, strict=True)
            for _, key in g[args.members :]
        ]
        product = server.named_pids
        services = {name: pid for name, pid in bench.service_pids().items()}
        if args.broker_cpu is not None:
            for name, pid in services.items():
                if name.startswith("tansu"):
                    move_to_core(pid, args.broker_cpu)
        names = [*product, *services]
        print(f"soak | {args.minutes} min at {rate:,}/s offered, {args.rooms} rooms x {args.members}, "
              f"{len(churners)} churning sockets ({args.churn_concurrent} at a time); processes {names}", flush=True)  # fmt: skip

        steps: list[dict] = []
        warm = threading.Event()

        def on_line(line: str, _process) -> None:
            if line == "WARM":
                warm.set()
            elif line.startswith("STEP "):
                steps.append(json.loads(line[5:]))

        spec = {
            "mode": "fanout", "protocol": "product", "url": server.ws, "clients": steady,
            "rates": [rate] * args.minutes, "duration": 60.0 - args.drain, "drain": args.drain,
            "payload": 100, "stop_on_fail": False, "p99_limit_ms": 100.0,
        }  # fmt: skip
        outcome: dict = {}

        def fanout() -> None:
            try:
                outcome["fanout"] = bench.client(
                    "bench.loadgen", spec, on_line=on_line, timeout=args.minutes * 90 + 600
                )
            except Exception as exc:  # noqa: BLE001 - reported with the samples taken so far
                outcome["error"] = str(exc)
            finally:
                warm.set()

        def churning() -> None:
            # It ends with the last step: sockets still open then would close against a stopping server.
            churn_spec = {"url": server.ws, "clients": churners, "seconds": args.minutes * 60 - args.drain - 30,
                          "concurrent": args.churn_concurrent}  # fmt: skip
            try:
                outcome["churn"] = bench.client("bench.soak", churn_spec, timeout=args.minutes * 60 + 300)
            except Exception as exc:  # noqa: BLE001
                outcome["churn_error"] = str(exc)

        load = threading.Thread(target=fanout, daemon=True)
        load.start()
        warm.wait()
        churn_thread = threading.Thread(target=churning, daemon=True)
        churn_thread.start()
        t0 = time.monotonic()
        rows.append({"minute": 0, **sample(product, services)})
        print(table(rows, names), flush=True)
        for minute in range(1, args.minutes + 1):
            while time.monotonic() < t0 + minute * 60 and load.is_alive():
                time.sleep(0.5)
            row = {"minute": minute, **sample(product, services)}
            row["cpu"] = cpu_shares(row, rows[-1])
            row["product_cpu"] = sum(row["cpu"][name] for name in product)
            row["broker_cpu"] = sum(v for name, v in row["cpu"].items() if name.startswith("tansu"))
            row["step"] = steps[minute - 1] if len(steps) >= minute else None
            rows.append(row)
            print(table(rows, names).splitlines()[-1], flush=True)
            if not load.is_alive():
                break
        load.join(timeout=120)
        # Steps end a little after their minute (the drain): late ones join the rows they belong to.
        for index, row in enumerate(rows[1:]):
            if row.get("step") is None and index < len(steps):
                row["step"] = steps[index]
        # A loop ends within its listen (at most 30 s) plus a close the server may be slow to answer.
        churn_thread.join(timeout=120)
    finally:
        # The lag check's broker client, kept between calls, would retry the stopped broker forever.
        from ops import selectors

        for broker in selectors._brokers.values():
            broker.close()
        selectors._brokers.clear()
        bench.stop()
    first, last = rows[0], rows[-1]
    # From minute 1: the first minute is the processes' warm-up (Celery's pool forks, caches fill).
    warmed = rows[1] if len(rows) > 1 else first
    return {
        "label": args.label or f"soak: {args.minutes} min at {rate:,} deliveries/s offered, started {started_at}",
        "started_at": started_at,
        "minutes": args.minutes,
        "rate": rate,
        "rooms": args.rooms,
        "members": args.members,
        "product_processes": list(product),
        "services": list(services),
        "samples": rows,
        "growth": {
            "product_bytes": last["product_bytes"] - first["product_bytes"],
            "broker_bytes": last["broker_bytes"] - first["broker_bytes"],
            "by_process": {n: last["memory"].get(n, 0) - first["memory"].get(n, 0) for n in names},
            "product_bytes_since_minute_1": last["product_bytes"] - warmed["product_bytes"],
            "broker_bytes_since_minute_1": last["broker_bytes"] - warmed["broker_bytes"],
        },
        "churn": outcome.get("churn"),
        "errors": {k: v for k, v in outcome.items() if k.endswith("error")},
    }


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and all(a.endswith(".json") for a in argv):  # the churn client (BenchStack.client)
        spec = json.loads(Path(argv[0]).read_text())
        Path(argv[1]).write_text(json.dumps(asyncio.run(churn(spec))))
        return
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument(
        "--rate",
        type=int,
        default=0,
        help=f"offered deliveries/s (default {S1_HELD_PER_S // 2:,}, half of the shipped set's held S1 rate)",
    )
    parser.add_argument("--rooms", type=int, default=10)
    parser.add_argument("--members", type=int, default=10, help="steady members per room (S1's layout)")
    parser.add_argument("--churn-members", type=int, default=5, help="further members per room that connect and leave")
    parser.add_argument("--churn-concurrent", type=int, default=10, help="churning sockets open at once")
    parser.add_argument("--drain", type=float, default=3.0, help="seconds of each minute spent draining its step")
    parser.add_argument("--data", default=str(ROOT / ".devstack" / "soak"))
    parser.add_argument("--server-cpu", type=int, default=0)
    parser.add_argument("--client-cpu", type=int, default=1)
    parser.add_argument(
        "--broker-cpu",
        type=int,
        default=None,
        help="move the broker (Tansu) to this core: its memory storage costs more the longer it runs, and on "
        "the server core that cost would be read as the product's",
    )
    parser.add_argument("--no-pin", action="store_true")
    parser.add_argument("--label", default="")
    parser.add_argument("--json", default=str(ROOT / "bench" / "soak.json"))
    parser.add_argument("--png", default=str(ROOT / "bench" / "soak.png"))
    args = parser.parse_args(argv)
    result = run(args)
    Path(args.json).write_text(json.dumps(result, indent=1))
    plot(result, Path(args.png))
    names = [*result["product_processes"], *result["services"]]
    print(table(result["samples"], names))
    growth = result["growth"]
    print(f"soak | product memory {growth['product_bytes'] / 1e6:+.1f} MB "
          f"({growth['product_bytes_since_minute_1'] / 1e6:+.1f} MB since minute 1), broker "
          f"{growth['broker_bytes'] / 1e6:+.1f} MB ({growth['broker_bytes_since_minute_1'] / 1e6:+.1f} MB since minute 1) "
          f"over {len(result['samples']) - 1} min; churn {result['churn']}; errors {result['errors'] or 'none'}")  # fmt: skip
    print(f"soak | wrote {args.json} and {args.png}")


if __name__ == "__main__":
    main()
