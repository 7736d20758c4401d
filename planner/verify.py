"""An independent re-check of any plan against its organisation.

Nothing here comes from the formulation: the plan's records (quotas, loans, shadow quotas, new
accounts) are laid on the period grid again and every rule is checked directly. Each violation
is one sentence that starts with the rule's name and names the account, resource and period:

- ``non-negative``: quotas are never negative;
- ``known-reference``: every account and resource a record names exists (or is opened by the
  plan);
- ``floor`` / ``ceiling``: base quota within the account's floor and ceiling, and base quota +
  shadow + borrowed within the ceiling in every period;
- ``capacity``: base quotas + active shadow quotas within parent capacity per resource and
  period (new accounts' quotas included); ``reserve``: base quotas within capacity - reserve;
- ``loans-allowed`` / ``shadow-allowed``: none when the rules disallow them;
- ``lend-limit`` / ``borrow-limit`` / ``lend-within-quota``: per account and period;
- ``loan-balance``: what is lent equals what is borrowed per resource and period;
- ``loan-duration``: no loan lasts more than ``loan_max_periods``;
- ``shadow-fraction``: a shadow is at most ``shadow_max_fraction`` of the base quota;
- ``shadow-ttl``: a shadow (with the state's, when they touch) lasts at most
  ``shadow_ttl_periods`` consecutive periods;
- ``min-coverage``: under ``hard_thresholds`` (and with profiles), each period's supply covers
  ``min_coverage`` of the target demand;
- provisioning rules from :func:`planner.provision.verify_provisioning` when the plan opens
  accounts or moves workloads.

A greedy plan (quotas only) is checked by the same rules.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from datetime import datetime, timedelta

from models import NeedProfile, Organisation, Plan

TOL = 1e-6


def _over(value: float, limit: float) -> bool:
    return value > limit + TOL * max(1.0, abs(limit))


def verify_plan(
    org: Organisation, plan: Plan, profiles: Mapping[str, NeedProfile] | None = None
) -> list[str]:
    """Every rule ``plan`` breaks for ``org``; empty when it keeps them all.

    Parameters
    ----------
    org
        The organisation the plan was made for (its state is the state before the plan).
    plan
        Any plan: the optimiser's, the greedy's, a baseline's.
    profiles
        Need profiles; with them the hard coverage thresholds are checked too.
    """
    out: list[str] = []
    rules = org.rules
    step = timedelta(minutes=plan.period_minutes)
    grid = [plan.start + k * step for k in range(plan.periods)]
    accounts = {a.id: a for a in org.accounts}
    new_ids = {a.id for a in plan.new_accounts}
    resources = set(org.resource_names)

    def label(t: int) -> str:
        return f"{grid[t]:%Y-%m-%d %H:%M}"

    def known(kind: str, account: str, resource: str) -> bool:
        ok = True
        if account not in accounts and account not in new_ids:
            out.append(f"known-reference: {kind} names the unknown account {account!r}")
            ok = False
        if resource not in resources:
            out.append(f"known-reference: {kind} names the unknown resource {resource!r}")
            ok = False
        return ok

    quota: dict[tuple[str, str], float] = {}
    for q in plan.quotas:
        if not known("a quota", q.account, q.resource):
            continue
        quota[(q.account, q.resource)] = q.after
        if q.after < -TOL:
            out.append(f"non-negative: {q.account} gets a negative {q.resource} quota {q.after:g}")
        acc = accounts.get(q.account)
        if acc is None:
            continue
        low = acc.floor.get(q.resource, 0.0)
        if q.after < low - TOL * max(1.0, low):
            out.append(
                f"floor: {q.account}'s {q.resource} quota {q.after:g} is below its floor {low:g}"
            )
        high = acc.ceiling.get(q.resource)
        if high is not None and _over(q.after, high):
            out.append(
                f"ceiling: {q.account}'s {q.resource} quota {q.after:g} is above its ceiling {high:g}"
            )
    for a in org.accounts:
        for r in org.resource_names:
            quota.setdefault((a.id, r), a.quota.get(r, 0.0))
    new_quota: dict[str, float] = defaultdict(float)
    for na in plan.new_accounts:
        for r, v in na.quota.items():
            new_quota[r] += v
            quota[(na.id, r)] = v

    def active(s: datetime, u: datetime) -> list[int]:
        return [t for t, p in enumerate(grid) if s <= p < u]

    shadow: dict[tuple[str, str, int], float] = defaultdict(float)
    if plan.shadow_quotas and not rules.allow_shadow:
        out.append("shadow-allowed: the plan grants shadow quotas but the rules disallow them")
    for sq in plan.shadow_quotas:
        if not known("a shadow quota", sq.account, sq.resource):
            continue
        base = quota.get((sq.account, sq.resource), 0.0)
        if _over(sq.amount, rules.shadow_max_fraction * base):
            out.append(
                f"shadow-fraction: {sq.account}'s {sq.resource} shadow of {sq.amount:g} from "
                f"{sq.start:%Y-%m-%d %H:%M} is above {rules.shadow_max_fraction:g} x its base quota {base:g}"
            )
        for t in active(sq.start, sq.until):
            shadow[(sq.account, sq.resource, t)] += sq.amount
    out.extend(_shadow_ttl(org, plan, step))

    lent: dict[tuple[str, str, int], float] = defaultdict(float)
    borrowed: dict[tuple[str, str, int], float] = defaultdict(float)
    pool_out: dict[tuple[str, int], float] = defaultdict(float)
    pool_in: dict[tuple[str, int], float] = defaultdict(float)
    if plan.loans and not rules.allow_loans:
        out.append("loans-allowed: the plan makes loans but the rules disallow them")
    for loan in plan.loans:
        ok = known(f"loan {loan.id}", loan.lender, loan.resource)
        ok = known(f"loan {loan.id}", loan.borrower, loan.resource) and ok
        if not ok:
            continue
        if loan.amount < -TOL:
            out.append(f"non-negative: loan {loan.id} has a negative amount {loan.amount:g}")
        if loan.until - loan.start > rules.loan_max_periods * step:
            out.append(
                f"loan-duration: loan {loan.id} ({loan.lender} -> {loan.borrower}, {loan.resource}) "
                f"lasts {(loan.until - loan.start) / step:g} periods, above loan_max_periods = "
                f"{rules.loan_max_periods}"
            )
        for t in active(loan.start, loan.until):
            lent[(loan.lender, loan.resource, t)] += loan.amount
            borrowed[(loan.borrower, loan.resource, t)] += loan.amount
        for t in active(loan.start, loan.until):
            pool_out[(loan.resource, t)] += loan.amount
        for t in active(loan.start, loan.until):
            pool_in[(loan.resource, t)] += loan.amount
    for key in set(pool_out) | set(pool_in):
        if abs(pool_out[key] - pool_in[key]) > TOL * max(1.0, pool_out[key]):
            out.append(
                f"loan-balance: {key[0]} in {label(key[1])}: lent {pool_out[key]:g} but borrowed "
                f"{pool_in[key]:g}"
            )
    for (name, r, t), amount in lent.items():
        acc = accounts.get(name)
        limit = acc.lend_limit.get(r) if acc is not None else None
        if limit is not None and _over(amount, limit):
            out.append(
                f"lend-limit: {name} lends {amount:g} {r} in {label(t)}, above its lend limit {limit:g}"
            )
        if _over(amount, quota.get((name, r), 0.0)):
            out.append(
                f"lend-within-quota: {name} lends {amount:g} {r} in {label(t)}, more than its base "
                f"quota {quota.get((name, r), 0.0):g}"
            )
    for (name, r, t), amount in borrowed.items():
        acc = accounts.get(name)
        limit = acc.borrow_limit.get(r) if acc is not None else None
        if limit is not None and _over(amount, limit):
            out.append(
                f"borrow-limit: {name} borrows {amount:g} {r} in {label(t)}, above its borrow limit {limit:g}"
            )

    for r in org.resource_names:
        cap = org.parent.capacity.get(r, 0.0)
        base = sum(v for (a, res), v in quota.items() if res == r and a in accounts)
        base += new_quota.get(r, 0.0)
        free = cap - org.parent.reserve.get(r, 0.0)
        if _over(base, free):
            out.append(
                f"reserve: base quotas of {r} add up to {base:g}, above capacity - reserve = {free:g}"
            )
        for t in range(plan.periods):
            used = base + sum(v for (a, res, tt), v in shadow.items() if res == r and tt == t)
            if _over(used, cap):
                out.append(
                    f"capacity: {r} in {label(t)}: quotas + shadow quotas = {used:g}, above capacity {cap:g}"
                )
    for a in org.accounts:
        for r, high in a.ceiling.items():
            for t in range(plan.periods):
                total = (
                    quota.get((a.id, r), 0.0)
                    + shadow.get((a.id, r, t), 0.0)
                    + borrowed.get((a.id, r, t), 0.0)
                )
                if _over(total, high):
                    out.append(
                        f"ceiling: {a.id} holds {total:g} {r} in {label(t)} (quota + shadow + "
                        f"borrowed), above its ceiling {high:g}"
                    )
                    break
    if profiles is not None and rules.hard_thresholds:
        out.extend(_min_coverage(org, plan, profiles, quota, shadow, lent, borrowed, grid))
    if plan.new_accounts or plan.migrations:
        try:
            from planner.provision import verify_provisioning
        except ImportError:  # provisioning not installed: nothing more to check
            pass
        else:
            out.extend(verify_provisioning(org, plan))
    return out


def _shadow_ttl(org: Organisation, plan: Plan, step: timedelta) -> list[str]:
    """Runs of touching shadow records (the state's included) longer than the time-to-live."""
    ttl = org.rules.shadow_ttl_periods
    spans: dict[tuple[str, str], list[tuple[datetime, datetime]]] = defaultdict(list)
    for sq in org.state.shadow_quotas:
        if sq.until >= plan.start:
            spans[(sq.account, sq.resource)].append((sq.start, min(sq.until, plan.start)))
    for sq in plan.shadow_quotas:
        spans[(sq.account, sq.resource)].append((sq.start, sq.until))
    out: list[str] = []
    for (a, r), items in spans.items():
        items.sort()
        run_start, run_end = items[0]
        for s, u in [
            *items[1:],
            (
                datetime.max.replace(tzinfo=run_start.tzinfo),
                datetime.max.replace(tzinfo=run_start.tzinfo),
            ),
        ]:
            if s <= run_end and u != s:
                run_end = max(run_end, u)
                continue
            if run_end - run_start > ttl * step:
                out.append(
                    f"shadow-ttl: {a}'s {r} shadow quota runs from {run_start:%Y-%m-%d %H:%M} to "
                    f"{run_end:%Y-%m-%d %H:%M}, longer than shadow_ttl_periods = {ttl}"
                )
            run_start, run_end = s, u
    return out


def _min_coverage(
    org: Organisation,
    plan: Plan,
    profiles: Mapping[str, NeedProfile],
    quota: Mapping[tuple[str, str], float],
    shadow: Mapping[tuple[str, str, int], float],
    lent: Mapping[tuple[str, str, int], float],
    borrowed: Mapping[tuple[str, str, int], float],
    grid: list[datetime],
) -> list[str]:
    out: list[str] = []
    moved: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for m in plan.migrations:
        for r, v in m.moved_demand.items():
            moved[m.source][r] += v
    for a in org.accounts:
        prof = profiles.get(a.id)
        if prof is None:
            continue
        need = a.performance_threshold.min_coverage
        for r, rd in prof.demand.items():
            index = {p: k for k, p in enumerate(rd.periods)}
            for t, p in enumerate(grid):
                k = index.get(p)
                if k is None:
                    continue
                demand = max(rd.target[k] - moved[a.id].get(r, 0.0), 0.0)
                supply = (
                    quota.get((a.id, r), 0.0)
                    + shadow.get((a.id, r, t), 0.0)
                    + borrowed.get((a.id, r, t), 0.0)
                    - lent.get((a.id, r, t), 0.0)
                )
                if supply < need * demand - TOL * max(1.0, demand):
                    out.append(
                        f"min-coverage: {a.id} gets {supply:g} {r} in {p:%Y-%m-%d %H:%M}, below "
                        f"min_coverage {need:g} x demand {demand:g}"
                    )
                    break
    return out
