"""``quota-planner profile ORG_DIR``: the prioritised need profiles and the dependency analysis."""

from __future__ import annotations

import argparse
import json
from datetime import datetime
from pathlib import Path
from typing import Any

from rich.table import Table

from models import NeedProfile, Organisation
from planner.cli.common import console, load_folder, progress
from planner.dependency import Contention, DependencyAnalysis, analyse, find_contention
from planner.io import write_atomic

EXAMPLES = """\
examples:
  quota-planner profile ./my-org                          # print the ranked table
  quota-planner profile ./my-org --out profiles.json      # and write it
  quota-planner profile ./my-org --start 2013-07-24T00:00 # as the planner would have seen it then
"""


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``profile`` command."""
    p = sub.add_parser(
        "profile",
        help="predict and rank each sub-account's needs",
        description=(
            "Forecast each sub-account's demand at the quantile its performance threshold asks\n"
            "for, analyse the dependency graph (cycles, critical chains, contention) and rank\n"
            "the accounts by priority x criticality x shortfall."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("org_dir", type=Path, help="organisation folder (organisation.yaml, usage.csv)")
    p.add_argument("--out", type=Path, default=None, help="write the profiles as JSON here")
    p.add_argument(
        "--start",
        type=_parse_start,
        default=None,
        help="start of the first period, ISO 8601 (default: the period after the last usage)",
    )
    p.add_argument("--limit", type=int, default=40, help="rows of the table to print (default 40)")
    p.set_defaults(func=handle)


def _parse_start(text: str) -> datetime:
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO 8601 date-time such as 2013-07-24T00:00"
        ) from None


def handle(args: argparse.Namespace) -> int:
    """Run ``profile``."""
    from planner.profiles import build_need_profiles, plan_start

    with progress("loading the organisation") as stage:
        org, usage = load_folder(args.org_dir)
        stage("analysing dependencies")
        analysis = analyse(org)
        stage("forecasting demand")
        start = args.start if args.start is not None else plan_start(org, usage)
        profiles = build_need_profiles(org, usage, start=start, analysis=analysis)
        contention = find_contention(org, profiles, chains=analysis.chains)
    console.print(profile_table(org, profiles, limit=args.limit))
    print_reasons(profiles, limit=args.limit)
    print_analysis(analysis, contention)
    if args.out is not None:
        doc = profiles_document(org, profiles, analysis, contention, start=start)
        write_atomic(args.out, json.dumps(doc, indent=2))
        console.print(f"Profiles written to {args.out}")
    return 0


def profile_table(org: Organisation, profiles: list[NeedProfile], *, limit: int = 40) -> Table:
    """Rank, account, score, criticality, peak demand / quota per resource, critical dependencies.

    The reasons are long sentences, printed under the table by :func:`print_reasons`.
    """
    table = Table(title=f"Need profiles of {org.name} (highest priority first)")
    table.add_column("#", justify="right")
    table.add_column("account", no_wrap=True)
    table.add_column("score", justify="right")
    table.add_column("crit.", justify="right")
    for r in org.resource_names:
        table.add_column(f"{r} peak/quota", justify="right")
    table.add_column("critical deps")
    quota = {a.id: a.quota for a in org.accounts}
    for rank, p in enumerate(profiles[: max(limit, 0)], start=1):
        cells = []
        for r in org.resource_names:
            d = p.demand.get(r)
            q = quota[p.account].get(r, 0.0) if p.account in quota else 0.0
            if d is None:
                cells.append("")
                continue
            text = f"{d.peak:,.3g}/{q:,.3g}"
            cells.append(f"[red]{text}[/]" if d.peak > q + 1e-9 else text)
        deps = ", ".join(p.critical_dependencies[:3])
        if len(p.critical_dependencies) > 3:
            deps += f" +{len(p.critical_dependencies) - 3}"
        table.add_row(
            str(rank),
            p.account,
            f"{p.priority_score:.3g}",
            f"{p.criticality:.2f}",
            *cells,
            deps,
        )
    if len(profiles) > limit:
        table.caption = f"{len(profiles) - limit} lower-ranked accounts not shown (--limit)"
    return table


def print_reasons(profiles: list[NeedProfile], *, limit: int = 40) -> None:
    """One line per ranked account: why it stands where it does."""
    for rank, p in enumerate(profiles[: max(limit, 0)], start=1):
        console.print(f"{rank:>3}. [bold]{p.account}[/]: {p.reason}", highlight=False)


def print_analysis(analysis: DependencyAnalysis, contention: list[Contention]) -> None:
    """Cycles, the top critical chains and the contention, in a few lines."""
    if analysis.cycles:
        console.print(f"[yellow]{len(analysis.cycles)} dependency cycle(s):[/]")
        for cycle in analysis.cycles[:5]:
            console.print("  " + " <-> ".join(cycle), highlight=False)
    if analysis.chains:
        console.print(f"{len(analysis.chains)} critical chain(s); the most depended on:")
        for ch in analysis.chains[:5]:
            console.print(
                f"  {' -> '.join(ch.accounts)} (priority {ch.priority:g} depends on it)",
                highlight=False,
            )
    if not contention:
        console.print("[green]No contention:[/] predicted needs fit the parent's capacity.")
        return
    by_resource: dict[str, list[Contention]] = {}
    for c in contention:
        by_resource.setdefault(c.resource, []).append(c)
    for r, items in by_resource.items():
        worst = max(items, key=lambda c: c.excess)
        chains = {ch for c in items for ch in c.chains}
        console.print(
            f"[red]Contention on {r}:[/] {len(items)} period(s) over capacity; worst "
            f"{worst.period:%Y-%m-%d %H:%M}, {worst.demand:,.4g} needed of {worst.capacity:,.4g}"
            + (f"; {len(chains)} critical chain(s) hit" if chains else ""),
            highlight=False,
        )


def profiles_document(
    org: Organisation,
    profiles: list[NeedProfile],
    analysis: DependencyAnalysis,
    contention: list[Contention],
    *,
    start: datetime,
) -> dict[str, Any]:
    """The JSON written by ``--out``: ranked profiles plus the dependency analysis."""
    return {
        "organisation": org.name,
        "start": start.isoformat(),
        "period_minutes": org.rules.period_minutes,
        "horizon_periods": org.rules.horizon_periods,
        "profiles": [
            {"rank": i, **p.model_dump(mode="json")} for i, p in enumerate(profiles, start=1)
        ],
        "cycles": analysis.cycles,
        "critical_chains": [
            {"accounts": list(c.accounts), "priority": c.priority, "weight": c.weight}
            for c in analysis.chains
        ],
        "contention": [
            {
                "resource": c.resource,
                "period": c.period.isoformat(),
                "demand": c.demand,
                "capacity": c.capacity,
                "excess": c.excess,
                "short_accounts": list(c.short_accounts),
                "chains": [list(ch) for ch in c.chains],
            }
            for c in contention
        ],
    }
