"""``quota-planner validate ORG_DIR``: check an organisation folder without planning."""

from __future__ import annotations

import argparse
from pathlib import Path

from planner.cli.common import console, load_folder


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``validate`` command."""
    p = sub.add_parser(
        "validate",
        help="check an organisation folder and report every problem",
        description="Check organisation.yaml, the usage table and dependencies.csv: each record, "
        "then the cross-references. Exit code 0 when valid, 2 with every problem listed.",
        epilog="example:\n  quota-planner validate ./my-org",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("org_dir", type=Path, help="organisation folder")
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``validate``."""
    org, usage = load_folder(args.org_dir)
    series = usage.groupby(["account", "resource"]).ngroups
    console.print(
        f"[green]valid:[/] {len(org.accounts)} accounts, {len(org.resources)} resources, "
        f"{len(org.workloads)} workloads, {len(org.edges)} dependency edges, "
        f"{len(org.templates)} templates; usage: {len(usage):,} rows in {series} series from "
        f"{usage['ts'].min()} to {usage['ts'].max()}.",
        highlight=False,
    )
    return 0
