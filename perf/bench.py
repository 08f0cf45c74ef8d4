"""The benchmark: Optima BI against PostgreSQL on one dataset, and perf/RESULTS.md.

    python -m perf.bench            # 10M orders (make bench)
    python -m perf.bench --quick    # ~200k orders, a few minutes (make bench-quick)

Steps: make sure the dataset exists on both sides (PostgreSQL seeded with
`optima-bi seed --target`, the store filled from it by `optima-bi backfill`,
fingerprints equal); pick merchants of different sizes; time every tool
through the in-memory MCP client, uncached and cached, and the same questions
on PostgreSQL (`perf.latency`, in its own process since it opens the store);
measure throughput over streamable HTTP; write perf/RESULTS.md. Raw figures
go to perf/out/ (ignored by git).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from dataclasses import asdict, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from loguru import logger

from optima_bi_mcp.logs import configure_logging
from perf import dataset, machine, plan, report, throughput

log = logger.bind(module=__name__)

ROOT = Path(__file__).resolve().parents[1]
OUT_DIR = ROOT / "perf" / "out"
RESULTS = ROOT / "perf" / "RESULTS.md"
PG_BUDGET_S = {"full": 30.0, "quick": 10.0}
# Calls per profiled case (timed, then again under cProfile).
PROFILE_CALLS = 10


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m perf.bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="~200k orders instead of 10M")
    parser.add_argument("--database", help="PostgreSQL database to use (seeded when missing)")
    parser.add_argument("--store", help="use this store (it must hold the source's rows)")
    parser.add_argument("--sessions", default="10,50,200", help="HTTP concurrency levels")
    parser.add_argument("--http-seconds", type=float, help="length of each HTTP run")
    parser.add_argument("--skip-http", action="store_true", help="no throughput runs")
    parser.add_argument("--out", type=Path, default=RESULTS, help="the report to write")
    return parser.parse_args(argv)


def pg_admin_dsn() -> str:
    """Start (or find) the cluster of infra/postgres/up and return its admin DSN."""
    done = subprocess.run(
        [str(ROOT / "infra" / "postgres" / "up")], check=True, capture_output=True, text=True
    )
    return done.stdout.strip().splitlines()[-1]


def prepare(profile: dataset.Profile, ns: argparse.Namespace) -> dict[str, Any]:
    """The dataset on both sides and the plan of cases."""
    source = dataset.ensure_source(profile, pg_admin_dsn())
    store, filled = dataset.ensure_store(profile, source, ns.store)
    merchants = plan.pick_merchants(source)
    end = date.fromisoformat(dataset.plan_dates(source)["end"])
    return {
        "source": source,
        "store": store,
        "filled": filled,
        "merchants": merchants,
        "end": end,
        "cases": plan.build_cases(merchants, end),
    }


def run_latency(profile: dataset.Profile, prepared: dict[str, Any]) -> dict[str, Any]:
    """perf.latency in its own process (it holds the store while it runs)."""
    plan_file, out_file = OUT_DIR / "plan.json", OUT_DIR / "latency.json"
    spec = {
        "store": prepared["store"],
        "source": prepared["source"],
        "cases": prepared["cases"],
        "rounds": profile.rounds,
        "pg_rounds": profile.pg_rounds,
        "pg_budget_s": PG_BUDGET_S[profile.name],
        "cached_calls": profile.cached_calls,
        "seed": profile.seed,
    }
    plan_file.write_text(json.dumps(spec, indent=1))
    log.info("timing {} cases (log: perf/out/latency.log)", len(prepared["cases"]))
    with (OUT_DIR / "latency.log").open("w") as err:
        subprocess.run(
            [sys.executable, "-m", "perf.latency", str(plan_file), str(out_file)],
            check=True,
            cwd=ROOT,
            stderr=err,
        )
    return json.loads(out_file.read_text())  # type: ignore[no-any-return]


def dataset_facts(prepared: dict[str, Any]) -> dict[str, Any]:
    merchants: plan.Merchants = prepared["merchants"]
    return {
        "source": prepared["source"].rsplit("/", 1)[1],
        "fingerprint": dataset.source_fingerprint(prepared["source"]),
        "merchants": merchants.sizes,
        "total_orders": merchants.total_orders,
        "largest_share": merchants.largest_share,
        "end": prepared["end"].isoformat(),
        "store_filled": prepared["filled"],
    }


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    ns = parse_args(argv)
    configure_logging(level="INFO")
    profile = dataset.QUICK if ns.quick else dataset.FULL
    if ns.http_seconds:
        profile = replace(profile, http_seconds=ns.http_seconds)
    if ns.database:
        profile = replace(profile, database=ns.database)
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    started = datetime.now(UTC)

    # Other work on the machine shows in the figures: the load average says how much.
    load = {"start": os.getloadavg()[0]}
    prepared = prepare(profile, ns)
    load["timing"] = os.getloadavg()[0]
    latency = run_latency(profile, prepared)
    profiles = run_profiles(prepared["store"], latency["cases"], [])
    store_info = json.loads(dataset.run_python("perf.store_probe", "info", prepared["store"]))
    load["http"] = os.getloadavg()[0]
    http = [] if ns.skip_http else run_http(profile, prepared, ns.sessions)
    load["end"] = os.getloadavg()[0]

    facts = machine.describe(prepared["source"]) | {"clickhouse (chDB)": latency["clickhouse"]}
    facts["load average (1 min)"] = ", ".join(f"{k} {v:.1f}" for k, v in load.items())
    results = {
        "command": " ".join(["python -m perf.bench", *argv]),
        "started_at": started.strftime("%Y-%m-%d %H:%M UTC"),
        "finished_at": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "profile": asdict(profile),
        "machine": facts,
        "dataset": dataset_facts(prepared),
        "store": store_info,
        "latency": latency,
        "http": http,
        "profiles": profiles,
    }
    (OUT_DIR / "results.json").write_text(json.dumps(results, indent=1, default=str))
    ns.out.write_text(report.render(results))
    print(summary(results))
    return 0


def run_profiles(
    store: str, cases: list[dict[str, Any]], http: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """perf.profile of the case that limits each missed target, each in its own process."""
    chosen = report.profile_targets(report.by_tool(cases), cases, http)
    profiles = []
    for target, case, cached in chosen:
        out = OUT_DIR / f"profile-{len(profiles)}.json"
        log.info("profiling {} {} for '{}'", case["tool"], report.label(case), target)
        args = ["--store", store, "--calls", str(PROFILE_CALLS), "--json", str(out)]
        args += ["--cached"] if cached else []
        dataset.run_python("perf.profile", *args, case["tool"], json.dumps(case["arguments"]))
        figures = json.loads(out.read_text())
        profiles.append(
            {"target": target, "tool": case["tool"], "label": report.label(case), "cached": cached}
            | figures
        )
    return profiles


def run_http(
    profile: dataset.Profile, prepared: dict[str, Any], sessions: str
) -> list[dict[str, Any]]:
    levels = [int(n) for n in sessions.split(",") if n.strip()]
    log.info("HTTP throughput at {} sessions, {:.0f} s each", levels, profile.http_seconds)
    merchants: plan.Merchants = prepared["merchants"]
    return throughput.measure(
        prepared["store"], levels, profile.http_seconds, merchants.all_ids, OUT_DIR
    )


def summary(results: dict[str, Any]) -> str:
    """The headline tables, for the terminal."""
    cases = results["latency"]["cases"]
    tools = report.by_tool(cases)
    lines = [results["command"], "", *report.tool_table(tools), ""]
    lines += report.targets_table(report.target_rows(tools, cases, results["http"]))
    if results["http"]:
        lines += ["", *report.http_table(results["http"])]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
