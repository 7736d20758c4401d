"""Bilateral loan records from the pool solution.

The model lends and borrows through the parent's pool (``lend[a,r,t]``, ``borrow[a,r,t]``:
O(accounts) variables instead of O(accounts^2)). Per resource and period, a small transport
problem matches lenders to borrowers at a cost that prefers, in order, the pair that already
had a loan in the previous period (so records last) and dependency peers (accounts that depend
on each other, directly or through their workloads). Consecutive periods of the same pair and
amount (each within 1e-6, relative, of the period before) become one :class:`models.Loan`
carrying the first period's amount; a record never lasts more than
``rules.loan_max_periods`` (counted from its original start when it continues a loan in force).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

import numpy as np
from scipy.optimize import linprog

from models import Loan, NeedProfile, Organisation
from planner.formulation.core import FloatArray, IntArray
from planner.formulation.data import committed_loans

EPS = 1e-6
#: Above this many lender x borrower pairs the transport is solved greedily (same preferences).
EXACT_PAIRS = 400


def dependency_peers(org: Organisation) -> set[tuple[str, str]]:
    """Unordered account pairs that depend on each other (account or workload edges)."""
    owner = {w.id: w.account for w in org.workloads}
    peers: set[tuple[str, str]] = set()
    for a in org.accounts:
        for dep in a.dependencies:
            peers.add((a.id, dep))
            peers.add((dep, a.id))
    for e in org.edges:
        u, v = owner.get(e.source, e.source), owner.get(e.target, e.target)
        if u != v:
            peers.add((u, v))
            peers.add((v, u))
    return peers


def transport(supply: FloatArray, demand: FloatArray, cost: FloatArray) -> FloatArray:
    """Flows ``f[i, j] >= 0`` with row sums ``supply`` and column sums ``demand``, cheap first.

    Exact (an LP) when small, else greedy over pairs in cost order then by size. The totals are
    made equal first (the pool balances up to solver tolerance).
    """
    total = min(supply.sum(), demand.sum())
    if total <= EPS:
        return np.zeros((supply.size, demand.size))
    supply = supply * (total / supply.sum())
    demand = demand * (total / demand.sum())
    n, m = supply.size, demand.size
    if n * m <= EXACT_PAIRS:
        a_eq = np.zeros((n + m, n * m))
        for i in range(n):
            a_eq[i, i * m : (i + 1) * m] = 1.0
        for j in range(m):
            a_eq[n + j, j::m] = 1.0
        res = linprog(
            cost.ravel() + 1e-9,
            A_eq=a_eq,
            b_eq=np.concatenate([supply, demand]),
            bounds=(0, None),
            method="highs",
        )
        if res.status == 0:
            flows = np.asarray(res.x).reshape(n, m)
            flows[flows < EPS] = 0.0
            return flows
    flows = np.zeros((n, m))
    left_s, left_d = supply.copy(), demand.copy()
    preferred = np.argwhere(cost < cost.max()) if cost.size else np.zeros((0, 2), int)
    keys = cost[preferred[:, 0], preferred[:, 1]] if preferred.size else np.zeros(0)
    for i, j in preferred[np.argsort(keys, kind="stable")]:
        amount = min(left_s[i], left_d[j])
        if amount > EPS:
            flows[i, j] += amount
            left_s[i] -= amount
            left_d[j] -= amount
    # The rest: largest first, north-west corner (O(n + m) pairs).
    rows = [int(i) for i in np.argsort(-left_s) if left_s[i] > EPS]
    cols = [int(j) for j in np.argsort(-left_d) if left_d[j] > EPS]
    i = j = 0
    while i < len(rows) and j < len(cols):
        amount = min(left_s[rows[i]], left_d[cols[j]])
        flows[rows[i], cols[j]] += amount
        left_s[rows[i]] -= amount
        left_d[cols[j]] -= amount
        if left_s[rows[i]] <= EPS:
            i += 1
        if left_d[cols[j]] <= EPS:
            j += 1
    return flows


def loan_records(
    org: Organisation,
    accounts: list[str],
    resources: list[str],
    periods: list[datetime],
    lend: FloatArray,
    borrow: FloatArray,
    kept: FloatArray,
    need: FloatArray,
) -> list[Loan]:
    """Loan records from the pool solution.

    Parameters
    ----------
    org
        The organisation (rules, peers, loans in force).
    accounts, resources, periods
        Axis labels of the arrays.
    lend, borrow
        Pool solution, (account, resource, period). It includes the loans committed until
        expiry (:func:`planner.formulation.data.committed_loans`), which come back unchanged;
        the rest is matched into new or continued records.
    kept
        What each account keeps for itself (quota + shadow - lent), same shape.
    need
        Each account's high-quantile demand, same shape: under ``rules.guaranteed_loans`` a
        loan whose lender's need stays below what it kept is returned only at expiry. Every
        other new loan has ``reclaim="lender_need"``: by default all of them, since a lender
        whose forecast was wrong would otherwise be throttled by its own loan (on the Google
        week replay, guaranteed loans cost 7 % more throttled demand; on the 100-VM month 2 %).
    """
    rules = org.rules
    step = periods[1] - periods[0] if len(periods) > 1 else None
    if step is None:
        from datetime import timedelta

        step = timedelta(minutes=rules.period_minutes)
    end = periods[-1] + step
    peers = dependency_peers(org)
    n_a, n_r, n_t = lend.shape
    index = {a: i for i, a in enumerate(accounts)}
    r_index = {r: j for j, r in enumerate(resources)}
    # Loans committed until expiry are restated as they are; only the rest of the pool is matched.
    committed = committed_loans(org, periods[0])
    residual = lend - borrow
    for loan in committed:
        mask = np.array([loan.start <= p < loan.until for p in periods])
        residual[index[loan.lender], r_index[loan.resource], mask] -= loan.amount
        residual[index[loan.borrower], r_index[loan.resource], mask] += loan.amount
    in_force = {
        (loan.lender, loan.borrower, loan.resource): loan
        for loan in org.state.loans
        if loan.reclaim != "expiry" and loan.start <= periods[0] <= loan.until
    }
    peer = np.zeros((n_a, n_a), dtype=bool)
    for pa, pb in peers:
        if pa in index and pb in index:
            peer[index[pa], index[pb]] = True
    # matched flows as parallel arrays: lender, borrower, resource, period, amount
    found: list[tuple[IntArray, IntArray, int, int, FloatArray]] = []
    for r in range(n_r):
        prev = np.zeros((n_a, n_a), dtype=bool)
        for lo, bo, res_name in in_force:
            if res_name == resources[r]:
                prev[index[lo], index[bo]] = True
        for t in range(n_t):
            # An account that both lends and borrows in one period (a degenerate pool solution)
            # only lends or borrows its net: a record never pairs an account with itself.
            net = residual[:, r, t]
            lenders = np.flatnonzero(net > EPS)
            borrowers = np.flatnonzero(net < -EPS)
            nxt = np.zeros((n_a, n_a), dtype=bool)
            if lenders.size and borrowers.size:
                sub = np.ix_(lenders, borrowers)
                cost = 2.0 - peer[sub] - 1.5 * prev[sub]
                f = transport(net[lenders], -net[borrowers], cost)
                i, j = np.nonzero(f)
                found.append((lenders[i], borrowers[j], r, t, f[i, j]))
                nxt[lenders[i], borrowers[j]] = True
            prev = nxt
    loans: list[Loan] = list(committed)
    if not found:
        return loans
    li = np.concatenate([f[0] for f in found])
    bj = np.concatenate([f[1] for f in found])
    ri = np.concatenate([np.full(f[0].size, f[2]) for f in found])
    ti = np.concatenate([np.full(f[0].size, f[3]) for f in found])
    keys, row = np.unique((li * n_a + bj) * n_r + ri, return_inverse=True)
    series = np.zeros((keys.size, n_t))
    series[row, ti] = np.concatenate([f[4] for f in found])
    # runs of one amount (within 1e-6, relative) in consecutive periods, per pair
    on = series > EPS
    same = np.zeros_like(on)
    same[:, 1:] = (
        on[:, 1:]
        & on[:, :-1]
        & (np.abs(series[:, 1:] - series[:, :-1]) <= 1e-6 * np.maximum(1.0, series[:, 1:]))
    )
    firsts = on & ~same
    run_of = np.cumsum(firsts.ravel()) - 1
    lengths = np.bincount(run_of[on.ravel()], minlength=int(firsts.sum()))
    # lender short of its own need anywhere in [t, u): counted by prefix sums
    over = np.zeros((n_a, n_r, n_t + 1), dtype=np.int64)
    np.cumsum(need > kept + EPS, axis=2, out=over[:, :, 1:])
    cap = rules.loan_max_periods
    run_k, run_t = np.nonzero(firsts)
    run_key = keys[run_k]
    lender_of, rest = np.divmod(run_key, n_a * n_r)
    borrower_of, res_of = np.divmod(rest, n_r)
    amounts = series[run_k, run_t]
    stamp = [f"{p:%Y%m%dT%H%M}" for p in periods]
    periods_end = [*periods, end]
    over_list = over.tolist()
    for lender_i, borrower_i, res_i, t, length, amount in zip(
        lender_of.tolist(),
        borrower_of.tolist(),
        res_of.tolist(),
        run_t.tolist(),
        lengths.tolist(),
        amounts.tolist(),
        strict=True,
    ):
        lender, borrower, res = accounts[lender_i], accounts[borrower_i], resources[res_i]
        end_run = t + length
        old = in_force.get((lender, borrower, res)) if t == 0 else None
        used = 0
        if old is not None and abs(old.amount - amount) <= 1e-6 * max(1.0, amount):
            used = round((periods[0] - old.start) / step)
            if used >= cap:
                old, used = None, 0
        else:
            old = None
        short_until = over_list[lender_i][res_i]
        # a run longer than the loan limit is cut into records of at most ``cap`` periods
        while t < end_run:
            u = min(end_run, t + cap - used)
            short = short_until[u] > short_until[t] or not rules.guaranteed_loans
            loans.append(
                Loan(
                    id=old.id
                    if old is not None and old.id
                    else f"loan-{res}-{lender}-{borrower}-{stamp[t]}",
                    lender=lender,
                    borrower=borrower,
                    resource=res,
                    amount=amount,
                    start=old.start if old is not None else periods[t],
                    until=periods_end[u],
                    reclaim="lender_need" if short else "expiry",
                )
            )
            t, used, old = u, 0, None
    loans.sort(key=lambda x: (x.start, x.resource, x.lender, x.borrower))
    return loans


def high_quantile_need(
    profiles: Mapping[str, NeedProfile], accounts: list[str], resources: list[str], n_t: int
) -> FloatArray:
    """The highest forecast quantile per account, resource and period (target when none)."""
    out = np.zeros((len(accounts), len(resources), n_t))
    for i, a in enumerate(accounts):
        prof = profiles.get(a)
        if prof is None:
            continue
        for j, r in enumerate(resources):
            rd = prof.demand.get(r)
            if rd is None:
                continue
            values = rd.quantiles[max(rd.quantiles)] if rd.quantiles else rd.target
            arr = np.asarray(values[:n_t], dtype=np.float64)
            out[i, j, : arr.size] = arr
            if arr.size < n_t and arr.size:
                out[i, j, arr.size :] = arr[-1]
    return out
