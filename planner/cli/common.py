"""What the commands share: the console, progress, loading with clean errors, plan tables."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pandas as pd
from rich.console import Console
from rich.table import Table

from models import Organisation, Plan
from planner.errors import InputError, PlannerError

console = Console()
err_console = Console(stderr=True)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2


def run_guarded(func: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    """Run a command handler; bad input becomes a readable message and exit code 2."""
    try:
        return func(args)
    except InputError as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
        return EXIT_BAD_INPUT
    except (FileNotFoundError, FileExistsError, IsADirectoryError, ValueError) as exc:
        err_console.print(f"[bold red]error:[/] {exc}", highlight=False)
        return EXIT_BAD_INPUT
    except PlannerError as exc:
        err_console.print(f"[bold red]failed:[/] {exc}", highlight=False)
        return EXIT_FAILED
    except KeyboardInterrupt:
        err_console.print("interrupted; nothing was written")
        return 130


@contextlib.contextmanager
def progress(label: str) -> Iterator[Callable[[str], None]]:
    """A spinner on stderr; the yielded function changes its label as stages start."""
    if not sys.stderr.isatty():
        yield lambda _text: None
        return
    with err_console.status(label) as status:
        yield lambda text: status.update(f"{text}...")


def load_folder(path: Path) -> tuple[Organisation, pd.DataFrame]:
    """Load an organisation folder (raises InputError on bad input)."""
    from planner.io import load

    return load(path)


def plan_table(plan: Plan, *, limit: int = 60) -> Table:
    """Quota before -> after, bid and grant per account and resource."""
    table = Table(title=f"Plan for {plan.organisation} ({plan.report.method})", show_lines=False)
    for col, justify in (
        ("account", "left"),
        ("resource", "left"),
        ("quota before -> after", "right"),
        ("bid", "right"),
        ("granted", "right"),
        ("outcome", "left"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    bids = {(b.account, b.resource): b for b in plan.bids}
    rows = sorted(
        plan.quotas,
        key=lambda q: (-abs(q.change) - bids.get((q.account, q.resource), _NO_BID).amount,),
    )
    shown = rows if len(rows) <= limit else rows[:limit]
    for q in shown:
        bid = bids.get((q.account, q.resource))
        arrow = f"{q.before:,.1f} -> {q.after:,.1f}"
        style = "green" if q.change > 1e-9 else "red" if q.change < -1e-9 else ""
        table.add_row(
            q.account,
            q.resource,
            f"[{style}]{arrow}[/]" if style else arrow,
            f"{bid.amount:,.1f}" if bid and bid.amount > 0 else "",
            f"{bid.granted:,.1f}" if bid and bid.amount > 0 else "",
            bid.outcome if bid else "",
        )
    if len(rows) > limit:
        table.caption = f"{len(rows) - limit} unchanged or smaller rows not shown"
    return table


class _NoBid:
    amount = 0.0


_NO_BID = _NoBid()


def print_report(plan: Plan) -> None:
    """The solver report and the verification, in a few lines."""
    r = plan.report
    parts = [f"method {r.method}", f"status {r.status.value}"]
    if r.solver:
        parts.append(f"solver {r.solver}")
    if r.objective is not None:
        parts.append(f"objective {r.objective:,.2f}")
    if r.bound is not None:
        parts.append(f"bound {r.bound:,.2f}")
    if r.gap is not None:
        parts.append(f"gap {r.gap:.3%}")
    parts.append(f"{r.wall_seconds:.2f} s")
    console.print(", ".join(parts), highlight=False)
    if r.fallback:
        console.print(f"[yellow]fallback:[/] {r.fallback}", highlight=False)
    for msg in r.messages:
        console.print(f"  {msg}", highlight=False)
    extras = []
    if plan.loans:
        extras.append(f"{len(plan.loans)} loans")
    if plan.shadow_quotas:
        extras.append(f"{len(plan.shadow_quotas)} shadow quotas")
    if plan.new_accounts:
        n = len(plan.new_accounts)
        extras.append(f"{n} new account{'s' if n > 1 else ''}")
    if plan.migrations:
        n = len(plan.migrations)
        extras.append(f"{n} migration{'s' if n > 1 else ''}")
    if extras:
        console.print("Also: " + ", ".join(extras), highlight=False)
    for na in plan.new_accounts:
        quota = ", ".join(f"{r} {v:,.1f}" for r, v in na.quota.items())
        console.print(
            f"New account [bold]{na.id}[/] from template {na.template} (quota {quota})",
            highlight=False,
        )
    for m in plan.migrations:
        console.print(
            f"  move {m.workload}: {m.source} -> {m.target}, cuts {m.traffic_cut:,.1f} of traffic",
            highlight=False,
        )
    unmet = sum(v for per in plan.unmet.values() for v in per.values())
    console.print(f"Unmet demand: {unmet:,.1f} unit-periods", highlight=False)
    if plan.violations:
        console.print(f"[bold red]{len(plan.violations)} rule(s) broken:[/]")
        for v in plan.violations:
            console.print(f"  - {v}", highlight=False)
    else:
        console.print("[green]Verified:[/] every rule holds.")
