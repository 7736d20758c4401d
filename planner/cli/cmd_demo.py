"""``quota-planner demo``: plan the embedded demo organisation (real Bitbrains VMs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from planner.cli.cmd_plan import add_plan_options, run_plan
from planner.cli.common import console, progress

EXAMPLES = """\
examples:
  quota-planner demo                         # greedy plan of the demo organisation
  quota-planner demo --method mip --explain  # the optimisation program, with explanations
  quota-planner demo --write-demo ./my-org   # copy the demo folder to edit it
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``demo`` command."""
    p = sub.add_parser(
        "demo",
        help="plan the embedded demo organisation",
        description="Plan the embedded demo organisation: 12 sub-accounts of real Bitbrains "
        "VMs (see planner/demo_data/README.md). Takes the same options as 'plan'.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_plan_options(p)
    p.add_argument(
        "--write-demo", type=Path, default=None, metavar="DIR", help="copy the demo folder to DIR"
    )
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``demo``."""
    from planner.demo import demo_path, load_demo, write_demo

    if args.write_demo is not None:
        target = write_demo(args.write_demo)
        console.print(f"Demo organisation copied to {target}; plan it with:")
        console.print(f"  quota-planner plan {target}")
        return 0
    with progress("loading the demo organisation") as stage:
        org, usage = load_demo()
        console.print(
            f"Demo organisation '{org.name}' from {demo_path()}: {len(org.accounts)} accounts, "
            f"{len(org.workloads)} workloads, {len(usage):,} usage rows.",
            highlight=False,
        )
        return run_plan(org, usage, args, stage)
