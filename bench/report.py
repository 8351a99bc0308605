"""The summary table (text for the terminal, Markdown for the README) and the ratios."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Row:
    scenario: str
    measure: str
    tutorial: str
    product: str
    ratio: str
    target: str
    met: bool | None


def _fmt_best(run: dict | None) -> tuple[str, float | None, float | None]:
    """(text, best held deliveries/s or None, the lowest rate tried when none was held)."""
    if not run:
        return "-", None, None
    best = run.get("best")
    if not best:
        first = run["steps"][0] if run.get("steps") else None
        if not first:
            return "none held", None, None
        detail = f"p99 {first['p99_ms']:.0f} ms" if first["p99_ms"] is not None else "nothing delivered"
        if first["lost"]:
            detail += f", {first['lost']} lost"
        return f"none held ({detail} already at {first['offered']:,}/s)", None, float(first["offered"])
    return f"{best['delivered_per_s']:,.0f}/s (p99 {best['p99_ms']:.0f} ms)", best["delivered_per_s"], None


def _backup_note(s3: dict) -> str:
    """With ``--backup``: when the backup equalled the primary after S3's window."""
    backup = s3.get("backup")
    if not backup:
        return ""
    if backup["catch_up_s"] is None:
        return ", backup NOT caught up"
    return f", backup equal {backup['catch_up_s']:.1f} s later"


def _ratio(
    product: float | None, tutorial: float | None, tutorial_floor: float | None = None
) -> tuple[str, float | None]:
    """product / tutorial; a lower bound when the tutorial held nothing, even at its lowest rate."""
    if product is None:
        return "-", None
    if tutorial is None:
        if tutorial_floor:
            value = product / tutorial_floor
            return f"> {value:.1f}x", value
        return "-", None
    if tutorial == 0:
        return "-", None
    value = product / tutorial
    return f"{value:.1f}x", value


def summary_rows(results: dict, config) -> list[Row]:
    failed = {
        (name, target): run["error"]
        for name, runs in results["scenarios"].items()
        for target, run in runs.items()
        if "error" in run
    }
    scenarios = {
        name: {target: run for target, run in runs.items() if "error" not in run}
        for name, runs in results["scenarios"].items()
    }
    rows = _rows(scenarios, config)
    for row in rows:
        if (row.scenario, "tutorial") in failed:
            row.tutorial = "failed: " + failed[(row.scenario, "tutorial")]
        if (row.scenario, "product") in failed:
            row.product, row.met = "failed: " + failed[(row.scenario, "product")], False
    return rows


def _rows(scenarios: dict, config) -> list[Row]:
    rows = []
    for name, label in (
        (
            "S1",
            f"{config.s1_rooms} rooms x {config.s1_members}: deliveries/s held, 0 loss, p99 <= {config.p99_ms:.0f} ms",
        ),
        ("S2", f"1 room x {config.s2_members}: deliveries/s held, 0 loss, p99 <= {config.p99_ms:.0f} ms"),
    ):
        if name not in scenarios:
            continue
        runs = scenarios[name]
        tutorial, t_value, t_floor = _fmt_best(runs.get("tutorial"))
        product, p_value, _ = _fmt_best(runs.get("product"))
        stored = (runs.get("product") or {}).get("stored")
        if stored:
            product += ", all stored once" if stored["exact"] else f", STORAGE {stored}"
            if stored.get("unacknowledged"):
                product += f", {stored['unacknowledged']} more stored after an `unavailable` answer"
        ratio, value = _ratio(p_value, t_value, t_floor)
        met = None if value is None else (value >= 5 and bool(stored and stored["exact"]))
        if p_value is None and "product" in runs:
            met = False
        rows.append(Row(name, label, tutorial, product, ratio, ">= 5x, every message stored", met))
    if "S3" in scenarios:
        runs = scenarios["S3"]
        orm, persist = runs.get("tutorial"), runs.get("product")
        ratio, value = _ratio(persist and persist["rows_per_s"], orm and orm["rows_per_s"])
        rows.append(
            Row(
                "S3",
                "durable ingest, rows/s (tutorial column: one ORM insert per message)",
                f"{orm['rows_per_s']:,.0f}/s" if orm else "-",
                f"{persist['rows_per_s']:,.0f}/s"
                + ("" if persist["stored"]["exact"] else " NOT EXACT")
                + _backup_note(persist)
                if persist
                else "-",
                ratio,
                ">= 10x",
                None if value is None else value >= 10 and persist["stored"]["exact"],
            )
        )
    if "S4" in scenarios:
        runs = scenarios["S4"]
        t, p = runs.get("tutorial"), runs.get("product")
        ratio, value = _ratio(p and p["bytes_per_connection"], t and t["bytes_per_connection"])

        def kb(run):
            if not run:
                return "-"
            return (
                f"{run['bytes_per_connection'] / 1024:.1f} KB (+{run['redis_bytes_per_connection'] / 1024:.1f} KB"
                f" Redis; {run['open']}/{run['connections']} open)"
            )

        rows.append(
            Row("S4", f"server memory per idle connection ({config.s4_connections} open)", kb(t), kb(p), ratio,
                "<= 1.0x", None if value is None else value <= 1.0)
        )  # fmt: skip
    if "S5" in scenarios:
        runs = scenarios["S5"]

        def storm(run):
            if not run:
                return "-"
            took = f"all in {run['all_whole_seconds']:.2f} s" if run["all_whole_seconds"] is not None else "not all"
            fails = f"; {run['failures']}" if run["failures"] else ""
            return f"{run['accepted']} accepted, {run['whole']} whole, {took}{fails}"

        p = runs.get("product")
        met = None
        if p:
            met = p["whole"] == p["clients"] and p["all_whole_seconds"] is not None and p["all_whole_seconds"] <= 5
        rows.append(
            Row("S5", f"{config.s5_clients} clients connecting at once (product: + sync)", storm(runs.get("tutorial")),
                storm(p), "-", "all whole within 5 s", met)
        )  # fmt: skip
    if "S6" in scenarios and scenarios["S6"].get("product"):
        rows += _s6_rows(scenarios["S6"]["product"], config)
    return rows


def _s6_rows(run: dict, config) -> list[Row]:
    """Upload throughput, and message.new's latency with a photo beside text-only messages."""
    files, photos = run["files"], run["photos"][0] if run["photos"] else None
    uploads = f"{files['mb_per_s']} MB/s of 1 MiB files ({files['uploads_per_s']}/s)"
    if photos:
        uploads = (
            f"{photos['uploads_per_s']} photos/s ({photos['file_bytes'] / 1024:.0f} KB JPEG, p99"
            f" {photos['p99_ms']:.0f} ms, {photos.get('server_cpu_ms_per_upload', '-')} ms server CPU each); " + uploads
        )
    rows = [Row("S6", f"uploads, {config.s6_upload_concurrency} at a time", "-", uploads, "-", "-", None)]
    for step in run["steps"]:
        with_photo, text = step["attachment_p99_ms"], step["text_p99_ms"]
        ratio = f"{with_photo / text:.2f}x" if with_photo and text else "-"
        rows.append(
            Row("S6", f"message.new p99 at {step['offered']:,} deliveries/s, every {config.s6_every}th with a photo",
                "-", f"with a photo {with_photo} ms, text only {text} ms (lost {step['lost']}, dup {step['duplicates']})",
                ratio, "nothing lost", step["lost"] == 0 and step["duplicates"] == 0)
        )  # fmt: skip
    stored = run.get("stored")
    if stored and not stored["exact"]:
        rows[-1].product += f", STORAGE {stored}"
        rows[-1].met = False
    return rows


def table(rows: list[Row]) -> str:
    header = ("", "measure", "tutorial", "product", "ratio", "target", "met")
    lines = [header] + [
        (r.scenario, r.measure, r.tutorial, r.product, r.ratio, r.target, {True: "yes", False: "NO", None: "-"}[r.met])
        for r in rows
    ]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    out.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(out)


def _md_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _steps_md(run: dict) -> str:
    rows = []
    for s in run["steps"]:
        refused = ", ".join(f"{k} {v}" for k, v in s["refused"].items()) or "0"
        rows.append([
            f"{s['offered']:,}", f"{s['delivered_per_s']:,.0f}", s["p50_ms"], s["p99_ms"], s["max_ms"], s["lost"],
            s["duplicates"], refused, s["accept_p99_ms"] if s["accept_p99_ms"] is not None else "-",
            f"{s['generator_cpu']:.0%}",
            f"{s['server_cpu']:.0%}" if s.get("server_cpu") is not None else "-",
            f"{s['server_core_others']:.0%}" if s.get("server_core_others") is not None else "-",
            f"{s['cpu_us_per_delivery']:,.0f}" if s.get("cpu_us_per_delivery") is not None else "-",
        ])  # fmt: skip
    header = [
        "offered/s", "delivered/s", "p50 ms", "p99 ms", "max ms", "lost", "dup", "refused", "accept p99 ms",
        "generator cpu", "server cpu", "others on server core", "server µs/delivery",
    ]  # fmt: skip
    return _md_table(header, rows)


def markdown(results: dict, rows: list[Row]) -> str:
    parts = [
        f"Run of {results['started']} ({results['seconds']:.0f} s), {results['machine']['cores']} cores, Python"
        f" {results['machine']['python']}, servers pinned to CPU {results['layout']['server_cpu']}, load generator"
        f" to CPU {results['layout']['client_cpu']} (pinned: {results['layout']['pinned']},"
        f" niceness {results['layout'].get('nice', 0)}).",
        "",
        f"Command: `{results['command']}`" + (f", at commit {results['commit']}." if results.get("commit") else ""),
        "",
        _md_table(
            ["", "measure", "tutorial", "product", "ratio", "target", "met"],
            [
                [
                    r.scenario,
                    r.measure,
                    r.tutorial,
                    r.product,
                    r.ratio,
                    r.target,
                    {True: "yes", False: "**no**", None: "-"}[r.met],
                ]
                for r in rows
            ],
        ),  # fmt: skip
    ]
    if results.get("repeat", 1) > 1:
        parts += ["", f"Medians of {results['repeat']} rounds; the key figure of every round:", ""]
        for name, targets in results.get("spread", {}).items():
            parts.append(
                f"- {name}: " + "; ".join(f"{t} " + ", ".join(map(str, values)) for t, values in targets.items())
            )
    cost = cost_section(results, p99_ms=results.get("config", {}).get("p99_ms", 100.0))
    if cost:
        parts += ["", cost]
    for name in ("S1", "S2"):
        for target, run in results["scenarios"].get(name, {}).items():
            if "error" in run:
                continue
            parts += ["", f"**{name}, {target}** ({run['rooms']} rooms, {run['clients']} sockets)", "", _steps_md(run)]
    return "\n".join(parts)


# Cheapest first: the ceiling is what every other target's CPU per delivery is divided by.
COST_ORDER = ("ceiling", "tutorial", "product", "shipped")
SHIPPED_HELD_TARGET = 0.8  # the shipped set's S1 held rate, as a share of the stripped set's
CEILING_COST_TARGET = 3.0  # the shipped set's CPU per delivery, at most this many times the ceiling's


def _median(values: list[float]) -> float | None:
    values = sorted(v for v in values if v is not None)
    if not values:
        return None
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else (values[middle - 1] + values[middle]) / 2


def cost_per_rate(results: dict, scenario: str, p99_ms: float) -> dict[str, dict[int, tuple[float | None, bool]]]:
    """target -> offered rate -> (median server µs per delivery over the rounds, held in most rounds)."""
    out: dict = {}
    for run in results.get("runs", []):
        for target, outcome in run.get(scenario, {}).items():
            for step in outcome.get("steps", []):
                held = (
                    step["lost"] == 0 and not step["refused"] and not step.get("closed_by_server")
                    and step["duplicates"] == 0 and step["p99_ms"] is not None and step["p99_ms"] <= p99_ms
                )  # fmt: skip
                out.setdefault(target, {}).setdefault(step["offered"], []).append(
                    (step.get("cpu_us_per_delivery"), held)
                )
    return {
        target: {
            rate: (_median([cost for cost, _ in seen]), sum(held for _, held in seen) * 2 > len(seen))
            for rate, seen in sorted(rates.items())
        }
        for target, rates in out.items()
    }


def cost_section(results: dict, *, p99_ms: float) -> str:
    """Server CPU per delivery of every target at every offered rate (medians of the rounds), each
    against the bare websockets ceiling's, and the shipped set's targets; "" without S1/S2 costs."""
    parts = []
    for scenario in ("S1", "S2"):
        costs = cost_per_rate(results, scenario, p99_ms)
        targets = [t for t in COST_ORDER if t in costs]
        if not any(cost for t in targets for cost, _ in costs[t].values()):
            continue
        rates = sorted({rate for t in targets for rate in costs[t]})
        rows = []
        for rate in rates:
            base = costs.get("ceiling", {}).get(rate, (None, False))[0]
            row = [f"{rate:,}"]
            for target in targets:
                cost, held = costs[target].get(rate, (None, False))
                text = "-" if cost is None else f"{cost:,.0f}" + ("" if held else " (not held)")
                if cost is not None and base and target != "ceiling":
                    text += f" ({cost / base:.1f}x)"
                row.append(text)
            rows.append(row)
        parts += [
            f"**{scenario}: server CPU per delivery, µs** (every server-side process, the services' included, over"
            " each step; medians of the rounds; in brackets: times the ceiling's at the same rate)",
            "",
            _md_table(["offered/s", *targets], rows),
            "",
        ]
        if scenario == "S1":
            parts += [*_shipped_targets(results, costs), ""]
    return "\n".join(parts).rstrip()


def _shipped_targets(results: dict, costs: dict) -> list[str]:
    """The shipped set's two targets: its held S1 rate against the stripped set's, and its CPU per
    delivery against the ceiling's at the highest rate both held."""
    s1 = results["scenarios"].get("S1", {})
    held = {t: ((s1.get(t) or {}).get("best") or {}).get("delivered_per_s") for t in ("product", "shipped")}
    lines = []
    if "product" in s1 and "shipped" in s1:
        if held["product"] and held["shipped"]:
            share = held["shipped"] / held["product"]
            met = "met" if share >= SHIPPED_HELD_TARGET else "NOT met"
            lines.append(
                f"- S1 held: shipped {held['shipped']:,.0f}/s, product (stripped) {held['product']:,.0f}/s:"
                f" {share:.0%} (target >= {SHIPPED_HELD_TARGET:.0%}: {met})"
            )
        else:
            said = {t: f"{rate:,.0f}/s" if rate else "none held" for t, rate in held.items()}
            lines.append(f"- S1 held: shipped {said['shipped']}, product (stripped) {said['product']}")
    if "shipped" in costs and "ceiling" in costs:
        both = [
            rate for rate, (cost, ok) in costs["shipped"].items()
            if ok and cost and costs["ceiling"].get(rate, (None, False))[1] and costs["ceiling"][rate][0]
        ]  # fmt: skip
        if both:
            rate = max(both)
            ratio = costs["shipped"][rate][0] / costs["ceiling"][rate][0]
            met = "met" if ratio <= CEILING_COST_TARGET else "NOT met"
            lines.append(
                f"- S1 CPU per delivery at {rate:,}/s (the highest rate both held): shipped"
                f" {costs['shipped'][rate][0]:,.0f} µs, ceiling {costs['ceiling'][rate][0]:,.0f} µs:"
                f" {ratio:.1f}x (target <= {CEILING_COST_TARGET:.0f}x: {met})"
            )
    return lines
