"""The report of one plan (a ``plan.json``): quota changes, demand vs effective quota, the graph."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from models import Organisation, Plan
from planner.report.doc import Document
from planner.report.plots import graph_plot
from planner.report.run import _safe


def plan_series(plan: Plan) -> pd.DataFrame:
    """Per account, resource and planned period: target demand, quota, shadow, borrowed, lent,
    effective quota (the same columns as a replay's series, ``usage`` being the target)."""
    start = pd.Timestamp(plan.start)
    step = pd.Timedelta(minutes=plan.period_minutes)
    times = pd.date_range(start, periods=plan.periods, freq=step)
    profiles = {p.account: p for p in plan.need_profiles}
    rows = []
    for q in plan.quotas:
        shadow, borrowed, lent = (np.zeros(len(times)) for _ in range(3))
        for s in plan.shadow_quotas:
            if s.account == q.account and s.resource == q.resource:
                shadow += s.amount * (
                    (times >= pd.Timestamp(s.start)) & (times < pd.Timestamp(s.until))
                )
        for loan in plan.loans:
            if loan.resource != q.resource:
                continue
            on = (times >= pd.Timestamp(loan.start)) & (times < pd.Timestamp(loan.until))
            if loan.borrower == q.account:
                borrowed += loan.amount * on
            if loan.lender == q.account:
                lent += loan.amount * on
        prof = profiles.get(q.account)
        target = np.full(len(times), np.nan)
        if prof is not None and q.resource in prof.demand:
            values = np.asarray(prof.demand[q.resource].target, dtype=float)[: len(times)]
            target[: len(values)] = values
        eff = q.after + shadow + borrowed - lent
        for k, t in enumerate(times):
            rows.append(
                (
                    plan.report.method,
                    q.account,
                    q.resource,
                    t,
                    target[k],
                    q.after,
                    shadow[k],
                    borrowed[k],
                    lent[k],
                    eff[k],
                )
            )
    cols = [
        "policy",
        "account",
        "resource",
        "ts",
        "usage",
        "quota",
        "shadow",
        "borrowed",
        "lent",
        "effective",
    ]
    return pd.DataFrame(rows, columns=cols)


def render_plan(
    plan: Plan, out: Path, *, org: Organisation | None = None, accounts: int = 4
) -> list[Path]:
    """Write ``report.md``, ``report.html`` and PNGs for one plan under ``out``.

    Parameters
    ----------
    plan
        The plan (as written by ``quota-planner plan --out``).
    out
        Folder for the report.
    org
        The organisation it was made for; without it the graph shows only the plan's accounts,
        moves, loans and peers (no dependency edges).
    accounts
        How many accounts get a timeline: those with the largest quota change or unmet demand.
    """
    from planner.report.plots import account_plot

    out.mkdir(parents=True, exist_ok=True)
    doc = Document(f"Plan for {plan.organisation} ({plan.report.method})")
    r = plan.report
    doc.para(
        f"Start {plan.start}, {plan.periods} periods of {plan.period_minutes} min. Status "
        f"{r.status.value}"
        + (f", objective {r.objective:,.6g}" if r.objective is not None else "")
        + (f", gap {r.gap:.3%}" if r.gap is not None else "")
        + f", {r.wall_seconds:.2f} s. "
        f"{len(plan.loans)} loans, {len(plan.shadow_quotas)} shadow quotas, {len(plan.new_accounts)} "
        f"new accounts, {len(plan.migrations)} migrations; "
        + (
            "every rule verified."
            if not plan.violations
            else f"{len(plan.violations)} rule(s) broken."
        )
    )
    if plan.violations:
        doc.para("Broken: " + "; ".join(plan.violations))
    series = plan_series(plan)
    units = {x.name: x.unit for x in org.resources} if org is not None else {}
    q = pd.DataFrame(
        [(x.account, x.resource, x.before, x.after, x.change) for x in plan.quotas],
        columns=["account", "resource", "before", "after", "change"],
    )
    unmet = pd.DataFrame(
        [(a, res, v) for a, per in plan.unmet.items() for res, v in per.items()],
        columns=["account", "resource", "unmet"],
    )
    q = q.merge(unmet, on=["account", "resource"], how="left").fillna({"unmet": 0.0})
    q["_rank"] = q["change"].abs() + q["unmet"]
    doc.heading("Quota changes")
    doc.table(
        q[q["_rank"] > 1e-9].sort_values("_rank", ascending=False).drop(columns="_rank").head(40)
    )
    written: list[Path] = []
    # pairs with loans or shadow quotas first: their timelines show the most
    marked = {(x.lender, x.resource) for x in plan.loans}
    marked |= {(x.borrower, x.resource) for x in plan.loans}
    marked |= {(x.account, x.resource) for x in plan.shadow_quotas}
    q["_marked"] = [(a, r) in marked for a, r in zip(q["account"], q["resource"], strict=True)]
    chosen = (
        q.sort_values(["_marked", "_rank", "account"], ascending=[False, False, True])
        .drop_duplicates("account")
        .head(accounts)
    )
    if len(chosen):
        doc.heading("Demand vs effective quota over the horizon")
        doc.para(
            "Demand is the target the plan provisions for (the forecast at the account's service level)."
        )
        empty_events = pd.DataFrame(columns=["policy", "ts", "kind", "account", "resource"])
        for row in chosen.itertuples(index=False):
            path = out / f"account_{_safe(str(row.account))}_{_safe(str(row.resource))}.png"
            written.append(
                account_plot(
                    series,
                    empty_events,
                    str(row.account),
                    str(row.resource),
                    [r.method],
                    path,
                    units.get(str(row.resource), ""),
                    demand_label="demand (target)",
                )
            )
            doc.image(path, f"{row.account} / {row.resource}: target demand vs effective quota")
    if plan.loans:
        doc.heading("Loans")
        doc.table(pd.DataFrame([x.model_dump() for x in plan.loans]))
    if plan.shadow_quotas:
        doc.heading("Shadow quotas")
        doc.table(pd.DataFrame([x.model_dump() for x in plan.shadow_quotas]))
    if plan.new_accounts or plan.migrations:
        doc.heading("New accounts and migrations")
        if plan.new_accounts:
            doc.table(
                pd.DataFrame(
                    [
                        {"id": a.id, "template": a.template, "quota": a.quota}
                        for a in plan.new_accounts
                    ]
                )
            )
        if plan.migrations:
            doc.table(
                pd.DataFrame(
                    [
                        {
                            "step": m.step,
                            "workload": m.workload,
                            "source": m.source,
                            "target": m.target,
                            "traffic_cut": m.traffic_cut,
                        }
                        for m in plan.migrations
                    ]
                )
            )
    graph_org = org if org is not None else _org_from_plan(plan)
    path = out / "graph.png"
    written.append(
        graph_plot(
            graph_org,
            path,
            new_accounts=[a.id for a in plan.new_accounts],
            moves=[(m.workload, m.source, m.target) for m in plan.migrations],
            loans=[(x.lender, x.borrower) for x in plan.loans],
            title="Accounts of the plan",
        )
    )
    doc.heading("Dependency graph")
    doc.image(path, "Accounts with new accounts, moves and loans highlighted")
    written += doc.write(out)
    return written


def _org_from_plan(plan: Plan) -> Organisation:
    """A minimal organisation naming the plan's accounts and resources (for the graph only)."""
    resources = sorted({x.resource for x in plan.quotas}) or ["units"]
    new = {a.id for a in plan.new_accounts}
    ids = sorted({x.account for x in plan.quotas} - new) or ["parent-only"]
    peers: dict[str, list[str]] = {}
    for p in plan.peers:
        if p.relation == "depends_on" and p.account in ids and p.peer in ids:
            peers.setdefault(p.account, []).append(p.peer)
    return Organisation.model_validate(
        {
            "name": plan.organisation,
            "resources": [{"name": r} for r in resources],
            "parent": {"capacity": dict.fromkeys(resources, 0.0)},
            "accounts": [{"id": a, "dependencies": sorted(set(peers.get(a, [])))} for a in ids],
        }
    )
