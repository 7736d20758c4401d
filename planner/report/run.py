"""The report of one replay: policy totals, per-account tables, timelines and the graph."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd

from planner.report.doc import Document
from planner.report.plots import account_plot, graph_plot, totals_plot
from planner.simulate.output import RunTables

SUMMARY_COLUMNS = ("throttled_share", "idle_share", "violation_hours")


def _account_png(account: str, resource: str) -> str:
    """File name of an account's plot in a run report."""
    return f"account_{_safe(account)}_{_safe(resource)}.png"


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def choose_accounts(tables: RunTables, n: int = 3) -> list[tuple[str, str]]:
    """The ``n`` (account, resource) pairs where the policies differ most in throttled demand
    (ties: most throttled), so the timelines show where the policies part ways."""
    acc = tables.accounts
    if acc.empty:
        return []
    pairs = []
    for r in tables.organisation.resource_names:
        col = f"throttled_{r}"
        if col not in acc:
            continue
        wide = acc.pivot_table(index="account", columns="policy", values=col, aggfunc="sum")
        spread = (wide.max(axis=1) - wide.min(axis=1)).rename("spread").to_frame()
        spread["top"] = wide.max(axis=1)
        spread["resource"] = r
        pairs.append(spread)
    ranked = (
        pd.concat(pairs)
        .reset_index()
        .sort_values(["spread", "top", "account"], ascending=[False, False, True])
    )
    out: list[tuple[str, str]] = []
    for row in ranked.itertuples(index=False):
        if row.account not in {a for a, _ in out}:
            out.append((str(row.account), str(row.resource)))
        if len(out) == n:
            break
    return out


def render_run(
    tables: RunTables, out: Path, *, accounts: int = 3, graph_policy: str | None = None
) -> list[Path]:
    """Write ``report.md``, ``report.html`` and the PNGs of a replay under ``out``.

    Parameters
    ----------
    tables
        The replay (:func:`planner.simulate.output.run_tables` or ``read_run``).
    out
        Folder for the report.
    accounts
        How many accounts get a timeline (chosen by :func:`choose_accounts`).
    graph_policy
        Whose new accounts, moves and loans the graph highlights (default: ``mip`` when run,
        else the last policy).

    Returns
    -------
    list of Path
        Every file written.
    """
    out.mkdir(parents=True, exist_ok=True)
    cfg = tables.config
    org = tables.organisation
    units = {r.name: r.unit for r in org.resources}
    policies = [str(p) for p in tables.metrics["policy"]] if len(tables.metrics) else []
    doc = Document(f"Replay of {cfg.get('organisation', org.name)}")
    doc.para(
        f"{len(org.accounts)} accounts, {len(org.workloads)} workloads; replayed {cfg.get('start')} to "
        f"{cfg.get('end')}, replanning every {cfg.get('cycle_hours')} h over a "
        f"{cfg.get('horizon_hours')} h horizon. Every policy has the same parent capacity "
        + ", ".join(f"{r} {org.parent.capacity[r]:,.4g} {units[r]}" for r in org.resource_names)
        + "."
    )
    written: list[Path] = []
    from planner.simulate.policies import POLICIES

    doc.para(
        "Policies: "
        + "; ".join(f"{p}: {POLICIES[p].description}" for p in policies if p in POLICIES)
        + ". The Kueue-like policy sees each hour's actual usage (it reacts, it does not "
        "forecast): borrowing within limits from idle quota and the parent's unassigned "
        "capacity, highest priority first, lenders reclaiming at once."
    )
    doc.heading("Per policy")
    doc.para(
        "Throttled: unit-hours of usage above the effective quota (quota + shadow + borrowed - "
        "lent). Idle: unit-hours of effective quota unused. *_share: summed over resources, each "
        "divided by the parent's capacity. Violation hours: account-hours below the account's "
        "min_coverage. Churn: sum of |base quota change|."
    )
    if len(tables.metrics):
        doc.table(tables.metrics)
        written.append(totals_plot(tables.metrics, out / "totals.png"))
        doc.image(written[-1], "Throttled and idle per policy, as shares of parent capacity-hours")
    if len(tables.cycles) and "fallback" in tables.cycles:
        # a cycle without fallback has "" or, once through a frame, NaN: neither is one
        said = tables.cycles["fallback"].map(lambda v: "" if pd.isna(v) else str(v))
        fell = tables.cycles.assign(fallback=said)[said.str.len() > 0]
        if len(fell):
            msgs = [
                f"{policy}: {len(group)} cycle(s): " + " | ".join(sorted(set(group["fallback"])))
                for policy, group in fell.groupby("policy", sort=True)
            ]
            doc.para("Fallbacks: " + "; ".join(msgs))
    chosen = choose_accounts(tables, accounts)
    keep = {_account_png(a, r) for a, r in chosen}
    for stale in out.glob("account_*.png"):  # an earlier report's accounts, not this one's
        if stale.name not in keep:
            stale.unlink()
    if chosen:
        doc.heading("Accounts where the policies differ most")
        for account, resource in chosen:
            path = out / _account_png(account, resource)
            written.append(
                account_plot(
                    tables.series,
                    tables.events,
                    account,
                    resource,
                    policies,
                    path,
                    units.get(resource, ""),
                )
            )
            doc.image(path, f"{account} / {resource}: demand vs effective quota per policy")
        rows = tables.accounts[tables.accounts["account"].isin([a for a, _ in chosen])]
        doc.table(rows)
    worst = tables.accounts.copy()
    if len(worst):
        doc.heading("Most throttled accounts per policy")
        cols = [c for c in worst.columns if c.startswith("throttled_")]
        worst["_t"] = sum(
            worst[c] / max(org.parent.capacity.get(c.split("_", 1)[1], 1.0), 1e-12) for c in cols
        )
        top = worst.sort_values(["policy", "_t"], ascending=[True, False]).groupby("policy").head(5)
        doc.table(top.drop(columns="_t"))
    who = graph_policy or ("mip" if "mip" in policies else policies[-1] if policies else None)
    ev = (
        tables.events[tables.events["policy"] == who]
        if who and len(tables.events)
        else tables.events.iloc[0:0]
    )
    new = sorted(set(ev[ev["kind"] == "account_opened"]["account"].astype(str))) if len(ev) else []
    moves: list[tuple[str, str, str]] = []
    for row in ev[ev["kind"] == "workload_moved"].itertuples() if len(ev) else []:
        detail = json.loads(row.detail) if isinstance(row.detail, str) and row.detail else {}
        moves.append(
            (str(detail.get("workload", "")), str(detail.get("source", "")), str(row.account))
        )
    loans = []
    if len(ev):
        for row in ev[ev["kind"] == "loan"].itertuples():
            detail = json.loads(row.detail) if isinstance(row.detail, str) and row.detail else {}
            if detail.get("lender") and detail["lender"] != "cohort":
                loans.append((str(detail["lender"]), str(row.account)))
    doc.heading("Dependency graph")
    doc.para(
        f"Highlighted for policy {who}: {len(new)} new account(s), {len(moves)} workload move(s), {len(set(loans))} lender-borrower pair(s)."
    )
    path = out / "graph.png"
    written.append(
        graph_plot(
            org,
            path,
            new_accounts=new,
            moves=moves,
            loans=loans,
            title=f"Accounts ({who})",
        )
    )
    doc.image(path, "Account dependency graph with new accounts, workload moves and loans")
    written += doc.write(out)
    return written
