"""``quota-planner simulate ORG_DIR``: replay the usage through time under several policies."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.table import Table

from planner.cli.common import console, err_console, load_folder, progress
from planner.simulate import POLICIES, simulate
from planner.simulate.output import run_tables, write_run

EXAMPLES = """\
examples:
  quota-planner simulate ./my-org --out runs/week1
  quota-planner simulate ./my-org --policies static,greedy,kueue --cycle-hours 6 --horizon-hours 24
  quota-planner simulate ./my-org --start 2013-07-08 --end 2013-07-15 --checkpoint ckpt/ --out run/
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``simulate`` command."""
    p = sub.add_parser(
        "simulate",
        help="replay usage through time and compare quota policies",
        description=(
            "Every cycle: forecast from the history so far, plan, apply the plan, then play the "
            "actual usage of the next cycle against the effective quotas. Policies: "
            + "; ".join(f"{k}: {v.description}" for k, v in POLICIES.items())
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("org_dir", type=Path, help="organisation folder (organisation.yaml, usage.csv)")
    p.add_argument(
        "--policies",
        default="static,greedy,kueue,mip,oracle",
        help="comma-separated policies (default: all)",
    )
    p.add_argument("--cycle-hours", type=float, default=6.0, help="replan every (default 6)")
    p.add_argument("--horizon-hours", type=float, default=24.0, help="plan ahead (default 24)")
    p.add_argument("--start", default=None, help="first replayed hour (default: after a warm-up)")
    p.add_argument("--end", default=None, help="end of the replay, exclusive (default: the data's)")
    p.add_argument("--history-days", type=float, default=28.0, help="history given to forecasts")
    p.add_argument("--checkpoint", type=Path, default=None, help="checkpoint folder (resumes)")
    p.add_argument("--solver", default=None, help="backend for the program (mip, oracle)")
    p.add_argument("--time-limit", type=float, default=None, help="seconds per solve")
    p.add_argument(
        "--on-error",
        choices=("keep", "raise"),
        default="keep",
        help="a failing planning cycle keeps the policy's state and is logged (keep, default) "
        "or stops the replay (raise)",
    )
    p.add_argument("--out", type=Path, default=None, help="write tables and the report here")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``simulate``."""
    policies = [x.strip() for x in str(args.policies).split(",") if x.strip()]
    with progress("loading the organisation") as stage:
        org, usage = load_folder(args.org_dir)

        def tick(cycle: int, total: int, policy: str) -> None:
            stage(f"cycle {cycle + 1}/{total}: {policy}")

        replay = simulate(
            org,
            usage,
            policies=policies,
            cycle_hours=args.cycle_hours,
            horizon_hours=args.horizon_hours,
            start=args.start,
            end=args.end,
            history_days=args.history_days,
            checkpoint=args.checkpoint,
            solver=args.solver,
            time_limit=args.time_limit,
            on_cycle=tick,
            on_error=args.on_error,
        )
        tables = run_tables(replay)
    resources = org.resource_names
    table = Table(title=f"Replay of {org.name}: {replay.config['start']} to {replay.config['end']}")
    cols = [("policy", "policy"), ("throttled_share", "throttled")]
    cols += [(f"throttled_pct_{r}", f"% {r}") for r in resources]
    cols += [
        ("idle_share", "idle"),
        ("violation_hours", "viol. h"),
        ("churn_" + resources[0], "churn"),
    ]
    cols += [("loans", "loans"), ("shadows", "shadows"), ("accounts_opened", "opened")]
    cols += [("workloads_moved", "moved"), ("seconds_per_cycle", "s/cycle")]
    for key, label in cols:
        table.add_column(label, justify="left" if key == "policy" else "right")
    for row in tables.metrics.to_dict("records"):
        table.add_row(
            *(f"{row[k]:,.3g}" if isinstance(row[k], float) else str(row[k]) for k, _ in cols)
        )
    table.caption = (
        "throttled, idle: unit-hours / parent capacity, summed over resources; "
        f"% {resources[0]}: throttled share of demand; churn: |quota change| of {resources[0]}"
    )
    console.print(table)
    fb = tables.cycles[tables.cycles["fallback"].astype(str) != ""] if len(tables.cycles) else None
    if fb is not None and len(fb):
        for msg in sorted({f"{r.policy}: {r.fallback}" for r in fb.itertuples()}):
            err_console.print(f"[yellow]fallback[/] {msg}", highlight=False)
    if args.out is not None:
        from planner.report import render_run

        write_run(tables, args.out)
        render_run(tables, args.out)
        console.print(f"Tables and report written to {args.out} (report.md, report.html)")
    return 0
