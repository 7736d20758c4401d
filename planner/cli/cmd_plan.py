"""``quota-planner plan ORG_DIR``: forecast, negotiate, verify, write the plan."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from models import Organisation
from planner.api import METHODS, plan
from planner.cli.common import console, load_folder, plan_table, print_report, progress
from planner.io import write_atomic

EXAMPLES = """\
examples:
  quota-planner plan ./my-org                       # greedy, print the table
  quota-planner plan ./my-org --method mip --out plan.json
  quota-planner plan ./my-org --method mip --solver scip --time-limit 30
"""


def add_plan_options(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``plan`` and ``demo``."""
    parser.add_argument(
        "--method", choices=METHODS, default="greedy", help="how to arbitrate (default: greedy)"
    )
    parser.add_argument("--solver", default=None, help="MIP backend (default: OR-Tools HiGHS)")
    parser.add_argument("--time-limit", type=float, default=None, help="seconds for the solver")
    parser.add_argument("--gap", type=float, default=1e-4, help="relative MIP gap to stop at")
    parser.add_argument("--threads", type=int, default=None, help="solver threads")
    parser.add_argument("--seed", type=int, default=0, help="solver random seed")
    parser.add_argument(
        "--export-model", type=Path, default=None, help="write the MIP as STEM.mps and STEM.lp"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the plan as JSON here")
    parser.add_argument("--explain", action="store_true", help="print each account's explanation")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``plan`` command."""
    p = sub.add_parser(
        "plan",
        help="plan quotas for an organisation folder",
        description="Forecast needs, arbitrate bids and write a verified plan.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("org_dir", type=Path, help="organisation folder (organisation.yaml, usage.csv)")
    add_plan_options(p)
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``plan``."""
    with progress("loading the organisation") as stage:
        org, usage = load_folder(args.org_dir)
        return run_plan(org, usage, args, stage)


def run_plan(
    org: Organisation,
    usage: pd.DataFrame,
    args: argparse.Namespace,
    stage: Callable[[str], None],
) -> int:
    """Plan, print and write: shared by ``plan`` and ``demo``."""
    result = plan(
        org,
        usage,
        method=args.method,
        solver=args.solver,
        time_limit=args.time_limit,
        relative_gap=args.gap,
        threads=args.threads,
        seed=args.seed,
        export_model=args.export_model,
        on_stage=stage,
    )
    console.print(plan_table(result))
    print_report(result)
    if args.explain:
        for e in result.explanations:
            console.print(f"[bold]{e.account}[/]: {e.text}", highlight=False)
    if args.out is not None:
        write_atomic(args.out, result.model_dump_json(indent=2))
        console.print(f"Plan written to {args.out}")
    return 0
