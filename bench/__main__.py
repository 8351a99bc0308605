"""``python -m bench``: the product against the Channels tutorial chat, side by side, in one run.

Starts its own embedded PostgreSQL, Valkey and Tansu (in .devstack/bench, fresh database every
run), both servers pinned to one core and the load generator to the other, runs the scenarios,
prints the table and the ratios, and with ``--readme`` writes them into bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from .report import cost_section, markdown, summary_rows, table
from .scenarios import CEILING, FANOUT_ONLY, PRODUCT, SHIPPED, TUTORIAL, Config, Runner, median_run, round_figure
from .stack import ROOT, BenchStack

SCENARIOS = ("S1", "S2", "S3", "S4", "S5", "S6")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short (about a minute): a smoke run")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated, e.g. S1,S2")
    parser.add_argument(
        "--targets",
        default=f"{TUTORIAL},{PRODUCT},{SHIPPED},{CEILING}",
        help="comma-separated: tutorial, product (web + persist), shipped (every process `make run` supervises),"
        " ceiling (a bare websockets broadcast server); shipped and ceiling run S1 and S2 only",
    )
    parser.add_argument("--duration", type=float, help="seconds per offered rate (default 10; quick 2)")
    parser.add_argument("--payload", type=int, default=100, help="message body bytes (default 100)")
    parser.add_argument("--p99-ms", type=float, default=100.0, help="the latency limit of a held rate")
    parser.add_argument(
        "--asgi", choices=["daphne", "uvicorn"], default="daphne", help="the ASGI server of both targets (daphne)"
    )
    parser.add_argument(
        "--backup",
        action="store_true",
        help="the product with a backup database configured: change capture and the backup consumer run beside"
        " persist (S3 also reports how long the backup took to catch up)",
    )
    parser.add_argument(
        "--backup-cpu",
        type=int,
        help="with --backup: the core of change capture, the backup consumer and a PostgreSQL of the backup's"
        " own (default: the server core, the backup database then on the primary's PostgreSQL)",
    )
    parser.add_argument(
        "--web-concurrency",
        help="comma-separated daphne process counts, e.g. 1,2: S1 on the product with each (processes sharing one"
        " listening socket, as WEB_CONCURRENCY does), side by side; nothing pinned, every process shares the cores",
    )
    parser.add_argument("--s1-rates", help="comma-separated offered deliveries/s for S1")
    parser.add_argument("--s2-rates", help="comma-separated offered deliveries/s for S2")
    parser.add_argument(
        "--sweep-all", action="store_true", help="S1/S2: every offered rate, also after two failing steps in a row"
    )
    parser.add_argument("--repeat", type=int, default=1, help="run everything N times; report the median runs")
    parser.add_argument("--server-cpu", type=int, default=0, help="the core of every server-side process (0)")
    parser.add_argument("--client-cpu", type=int, default=1, help="the core of the load generator (1)")
    parser.add_argument(
        "--nice",
        type=int,
        default=0,
        help="niceness of every bench process (e.g. -10 on a machine shared with other work; below 0 needs root)",
    )
    parser.add_argument(
        "--data", type=Path, default=ROOT / ".devstack" / "bench", help="the bench's own embedded services"
    )
    parser.add_argument("--json", type=Path, help="also write every result to this file")
    parser.add_argument("--profile", type=Path, help="py-spy the servers during S1, S2 and S3 into this folder")
    parser.add_argument("--readme", action="store_true", help="write the results into bench/README.md")
    parser.add_argument("--from-json", type=Path, help="run nothing: print (and --readme) a saved run's results")
    return parser.parse_args(argv)


def config_from(args: argparse.Namespace) -> Config:
    config = Config.quick_mode() if args.quick else Config()
    config.payload = args.payload
    config.p99_ms = args.p99_ms
    if args.duration:
        config.duration = args.duration
    if args.s1_rates:
        config.s1_rates = [int(r) for r in args.s1_rates.split(",")]
    if args.profile:
        config.profile = str(args.profile.resolve())
    if args.s2_rates:
        config.s2_rates = [int(r) for r in args.s2_rates.split(",")]
    config.sweep_all = args.sweep_all
    return config


def in_own_session(argv: list[str]) -> int:
    """Run the bench again as the leader of a new session, so that raising its priority raises
    only its own processes (Linux schedules whole sessions against each other)."""
    child = subprocess.Popen([sys.executable, "-m", "bench", *argv], cwd=ROOT, start_new_session=True)
    try:
        return child.wait()
    except KeyboardInterrupt:
        child.send_signal(signal.SIGINT)
        return child.wait()


def report_saved(path: Path, readme: bool) -> int:
    results = json.loads(path.read_text())
    for scenario, targets in results.get("spread", {}).items():
        for target in targets:
            runs = [run[scenario][target] for run in results["runs"] if target in run.get(scenario, {})]
            targets[target] = [round_figure(scenario, run) for run in runs]
    config = Config(**{k: v for k, v in results["config"].items() if k in Config.__dataclass_fields__})
    rows = summary_rows(results, config)
    print(table(rows))
    if readme:
        write_readme(ROOT / "bench" / "README.md", markdown(results, rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    if args.from_json:
        return report_saved(args.from_json, args.readme)
    if args.nice and os.getsid(0) != os.getpid():
        return in_own_session(sys.argv[1:] if argv is None else argv)
    config = config_from(args)
    if args.web_concurrency:
        return web_concurrency_main(args, config)
    scenarios = [s.strip().upper() for s in args.scenarios.split(",") if s.strip()]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    pin = (os.cpu_count() or 1) >= 2 and args.server_cpu != args.client_cpu
    if not pin:
        print("warning: fewer than two cores; nothing is pinned and results will not compare", file=sys.stderr)
    bench = BenchStack(
        args.data,
        server_cpu=args.server_cpu,
        client_cpu=args.client_cpu,
        pin=pin,
        nice=args.nice,
        asgi=args.asgi,
        backup=args.backup,
        backup_cpu=args.backup_cpu,
        shipped=SHIPPED in targets,
    )
    started = datetime.now(UTC)
    command = "python -m bench " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    results: dict = {
        "command": command.strip(),
        "started": started.isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "layout": {
            "asgi": args.asgi,
            "server_cpu": args.server_cpu,
            "client_cpu": args.client_cpu,
            "pinned": pin,
            "nice": args.nice,
            "backup": args.backup,
            "backup_cpu": bench.backup_cpu if args.backup else None,
        },
        "config": config.__dict__,
        "repeat": args.repeat,
        "runs": [],
        "scenarios": {},
    }
    print(f"bench | {command.strip()}", flush=True)
    clock = time.monotonic()
    try:
        bench.start()
        servers = {}
        if TUTORIAL in targets:
            servers[TUTORIAL] = bench.start_tutorial()
        if PRODUCT in targets:
            servers[PRODUCT] = bench.start_product()
        if SHIPPED in targets:
            servers[SHIPPED] = bench.start_shipped()
        if CEILING in targets:
            servers[CEILING] = bench.start_ceiling()
        runner = Runner(bench, config, servers, log=lambda line: print(line, flush=True))
        for repeat in range(args.repeat):
            if args.repeat > 1:
                print(f"bench | round {repeat + 1} of {args.repeat}", flush=True)
            outcomes: dict = {}
            for scenario in scenarios:
                # Alternate which target goes first, so neither always gets the warmer machine.
                for target in targets if repeat % 2 == 0 else list(reversed(targets)):
                    if target in FANOUT_ONLY and scenario not in ("S1", "S2"):
                        continue
                    try:
                        runner.fresh_start(target)
                        outcome = getattr(runner, scenario.lower())(target)
                    except Exception as exc:  # noqa: BLE001 - one failed scenario must not lose the others
                        outcome = {"error": f"{type(exc).__name__}: {exc}"}
                        print(f"{scenario} {target}: FAILED: {outcome['error']}", flush=True)
                    outcomes.setdefault(scenario, {})[target] = outcome
            results["runs"].append(outcomes)
    finally:
        bench.stop()
    for scenario in scenarios:
        for target in targets:
            runs = [run[scenario][target] for run in results["runs"] if target in run.get(scenario, {})]
            if runs:
                results["scenarios"].setdefault(scenario, {})[target] = median_run(scenario, runs)
                results.setdefault("spread", {}).setdefault(scenario, {})[target] = [
                    round_figure(scenario, run) for run in runs
                ]
    results["seconds"] = round(time.monotonic() - clock, 1)
    rows = summary_rows(results, config)
    print()
    print(table(rows))
    print("\n" + cost_section(results, p99_ms=config.p99_ms))
    out = args.json or args.data / "results" / f"{started:%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nbench | every figure: {out}")
    if args.readme:
        readme = ROOT / "bench" / "README.md"
        write_readme(readme, markdown(results, rows))
        print(f"bench | results written to {readme}")
    return 0


def web_concurrency_main(args: argparse.Namespace, config: Config) -> int:
    """S1 on the product with each daphne process count of ``--web-concurrency``, alternating which
    count goes first per round; prints the median best held rate of each and its ratio to the first.

    Nothing is pinned: more web processes are only worth having when they can use more cores, so the
    load generator, the daphne processes, the consumer and the services share every core.
    """
    try:
        counts = [int(c) for c in args.web_concurrency.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or args.asgi != "daphne":
        print("error: --web-concurrency takes positive integers, e.g. 1,2 (with daphne)", file=sys.stderr)
        return 2
    bench = BenchStack(args.data, server_cpu=args.server_cpu, client_cpu=args.client_cpu, pin=False, nice=args.nice)
    started = datetime.now(UTC)
    command = "python -m bench " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    results: dict = {
        "command": command,
        "started": started.isoformat(timespec="seconds"),
        "commit": _commit(),
        "machine": {"cores": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()},
        "layout": {"pinned": False, "web_concurrency": counts},
        "config": config.__dict__,
        "runs": {str(count): [] for count in counts},
    }
    print(f"bench | {command}", flush=True)
    try:
        bench.start()
        bench.web_concurrency = counts[0]
        runner = Runner(bench, config, {PRODUCT: bench.start_product()}, log=lambda line: print(line, flush=True))
        for repeat in range(args.repeat):
            for count in counts if repeat % 2 == 0 else list(reversed(counts)):
                print(f"bench | round {repeat + 1} of {args.repeat}: {count} daphne process(es)", flush=True)
                bench.web_concurrency = count
                try:
                    runner.fresh_start(PRODUCT)
                    outcome = runner.s1(PRODUCT)
                except Exception as exc:  # noqa: BLE001 - one failed round must not lose the others
                    outcome = {"error": f"{type(exc).__name__}: {exc}"}
                    print(f"S1 x{count}: FAILED: {outcome['error']}", flush=True)
                results["runs"][str(count)].append(outcome)
    finally:
        bench.stop()
    rows = []
    base = None
    for count in counts:
        runs = results["runs"][str(count)]
        best = median_run("S1", runs).get("best") or {}
        rate = best.get("delivered_per_s")
        base = rate if base is None else base
        ratio = f"{rate / base:.2f}x" if rate and base else "-"
        spread = ", ".join(round_figure("S1", run) for run in runs)
        p99 = f"{best['p99_ms']:.0f} ms" if best.get("p99_ms") is not None else "-"
        held = f"{rate:,.0f}/s" if rate else "none held"
        rows.append(f"| {count} | {held} | {p99} | {ratio} | {spread} |")
    print("\n| daphne processes | S1 best held (median) | p99 there | ratio | rounds |")
    print("| --- | --- | --- | --- | --- |")
    print("\n".join(rows))
    out = args.json or args.data / "results" / f"web-concurrency-{started:%Y%m%dT%H%M%S}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"\nbench | every figure: {out}")
    return 0


def _commit() -> str | None:
    """The commit measured (plus "+changes" when the working tree differs from it)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return head.stdout.strip() + ("+changes" if dirty.stdout.strip() else "")


START, END = "<!-- results:start -->", "<!-- results:end -->"


def write_readme(path: Path, section: str) -> None:
    """Replace the results section of the README (between its markers) with ``section``."""
    text = path.read_text()
    head, _, rest = text.partition(START)
    _, _, tail = rest.partition(END)
    path.write_text(f"{head}{START}\n{section}\n{END}{tail}")


if __name__ == "__main__":
    sys.exit(main())
