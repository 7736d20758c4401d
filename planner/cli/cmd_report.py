"""``quota-planner report PLAN_OR_RUN``: render a replay folder or one plan as Markdown, HTML, PNGs."""

from __future__ import annotations

import argparse
from pathlib import Path

from planner.cli.common import console, load_folder


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``report`` command."""
    p = sub.add_parser(
        "report",
        help="render a replay folder or a plan.json as a report with plots",
        description=(
            "Render a replay folder (from 'simulate --out') or a plan (from 'plan --out') as "
            "report.md, report.html and PNG plots."
        ),
    )
    p.add_argument("source", type=Path, help="replay folder or plan JSON file")
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="output folder (default: the replay folder, or PLAN_report/ beside the plan)",
    )
    p.add_argument(
        "--org", type=Path, default=None, help="organisation folder of a plan (for its graph)"
    )
    p.set_defaults(func=handle)


def handle(args: argparse.Namespace) -> int:
    """Run ``report``."""
    from planner.report import render

    source: Path = args.source
    out = args.out
    if out is None:
        out = source if source.is_dir() else source.with_name(f"{source.stem}_report")
    org = load_folder(args.org)[0] if args.org is not None else None
    written = render(source, out, org=org)
    console.print(f"Report written to {out}: " + ", ".join(p.name for p in written))
    return 0
