"""Play the actual usage of one cycle against a policy's effective quotas, hour by hour.

Effective quota of account ``a`` for resource ``r`` at step ``t``::

    effective = quota + shadow(t) + borrowed(t) - lent(t)

Planned policies (static, greedy, the program) hold quotas fixed over the cycle; shadow quotas and
loans count while ``start <= t < until``. A loan whose ``reclaim`` is ``lender_need`` goes back to
its lender, in part or whole, at the first step where the lender's own usage exceeds what it kept
(``quota + shadow - other loans``): that is a *reclaim*, and the loan keeps the reduced amount for
the rest of its life. The Kueue-like policy (:func:`play_cohort`) borrows every step instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from models import Loan
from planner.simulate.state import FIELDS, PolicyState

EPS = 1e-9
_F = {name: i for i, name in enumerate(FIELDS)}


def _active(start: object, until: object, ts: pd.Timestamp) -> bool:
    return bool(pd.Timestamp(start) <= ts < pd.Timestamp(until))  # type: ignore[arg-type]


def play_planned(
    state: PolicyState,
    accounts: Sequence[str],
    usage: np.ndarray,
    times: pd.DatetimeIndex,
    offset: int,
) -> None:
    """Play ``usage`` (``accounts x resources x steps``) over ``times``; record into ``state``.

    ``offset`` is the position of ``times[0]`` among the replay's steps.
    """
    resources = state.org.resource_names
    a_pos = {a: i for i, a in enumerate(accounts)}
    r_pos = {r: j for j, r in enumerate(resources)}
    quota = np.array(
        [[state.org.account(a).quota.get(r, 0.0) for r in resources] for a in accounts]
    )
    for k, ts in enumerate(times):
        shadow = np.zeros_like(quota)
        for sq in state.shadows:
            if sq.account in a_pos and _active(sq.start, sq.until, ts):
                shadow[a_pos[sq.account], r_pos[sq.resource]] += sq.amount
        borrowed = np.zeros_like(quota)
        lent = np.zeros_like(quota)
        kept: list[Loan] = []
        for loan in state.loans:
            if not _active(loan.start, loan.until, ts) or loan.lender not in a_pos:
                kept.append(loan)
                continue
            i, j = a_pos[loan.lender], r_pos[loan.resource]
            amount = loan.amount
            if loan.reclaim == "lender_need":
                spare = quota[i, j] + shadow[i, j] - lent[i, j] - usage[i, j, k]
                amount = min(amount, max(0.0, spare))
                if amount < loan.amount - EPS:
                    state.event(
                        "loan_reclaimed",
                        ts,
                        loan.borrower,
                        loan.resource,
                        amount=loan.amount - amount,
                        lender=loan.lender,
                        loan=loan.id,
                    )
            if amount > EPS:
                lent[i, j] += amount
                if loan.borrower in a_pos:
                    borrowed[a_pos[loan.borrower], j] += amount
                kept.append(
                    loan
                    if amount >= loan.amount - EPS
                    else loan.model_copy(update={"amount": amount})
                )
        state.loans = kept
        effective = quota + shadow + borrowed - lent
        _record(
            state, accounts, offset + k, usage[:, :, k], quota, shadow, borrowed, lent, effective
        )


def play_cohort(
    state: PolicyState,
    accounts: Sequence[str],
    usage: np.ndarray,
    times: pd.DatetimeIndex,
    offset: int,
) -> None:
    """Kueue-like reactive borrowing within one cohort (the whole parent), step by step.

    Per resource and step: each account keeps ``min(usage, nominal)`` of its nominal quota; its
    idle nominal quota up to its ``lend_limit`` (Kueue's ``lendingLimit``) plus the parent's
    unassigned capacity form the cohort's borrowable pool; each account asks for its usage above
    nominal, capped by its ``borrow_limit`` (``borrowingLimit``) and ceiling; the pool serves the
    asks highest priority first (Kueue admits by priority). A lender whose usage comes back takes
    its quota back at once (``reclaimWithinCohort: Any``): the borrower loses it, which is
    counted as a reclaim (a preemption in Kueue) when the borrower still wanted it.
    """
    org = state.org
    resources = org.resource_names
    accs = [org.account(a) for a in accounts]
    nominal = np.array([[a.quota.get(r, 0.0) for r in resources] for a in accs])
    inf = np.inf
    b_lim = np.array([[a.borrow_limit.get(r, inf) for r in resources] for a in accs])
    l_lim = np.array([[a.lend_limit.get(r, inf) for r in resources] for a in accs])
    ceil = np.array([[a.ceiling.get(r, inf) for r in resources] for a in accs])
    cap = np.array([org.parent.capacity.get(r, 0.0) for r in resources])
    order = np.argsort([-a.priority for a in accs], kind="stable")
    prev = state.extra.setdefault("cohort_borrowed", {})
    for k, ts in enumerate(times):
        u = usage[:, :, k]
        own = np.minimum(u, nominal)
        ask = np.clip(np.minimum(u - nominal, np.minimum(b_lim, ceil - nominal)), 0.0, None)
        lendable = np.clip(np.minimum(nominal - own, l_lim), 0.0, None)
        free = np.clip(cap - nominal.sum(axis=0), 0.0, None)
        pool = free + lendable.sum(axis=0)
        borrowed = np.zeros_like(nominal)
        sorted_ask = ask[order]
        before = np.cumsum(sorted_ask, axis=0) - sorted_ask
        borrowed[order] = np.clip(pool[None, :] - before, 0.0, sorted_ask)
        from_lenders = np.clip(borrowed.sum(axis=0) - free, 0.0, None)
        share = np.divide(
            from_lenders,
            lendable.sum(axis=0),
            out=np.zeros_like(free),
            where=lendable.sum(axis=0) > 0,
        )
        lent = lendable * share[None, :]
        effective = nominal + borrowed - lent
        for i, a in enumerate(accounts):
            for j, r in enumerate(resources):
                key = f"{a}|{r}"
                before_b = float(prev.get(key, 0.0))
                now_b = float(borrowed[i, j])
                if now_b > EPS and before_b <= EPS:
                    state.event("loan", ts, a, r, amount=now_b, lender="cohort")
                elif now_b < before_b - EPS and ask[i, j] >= before_b - EPS:
                    state.event(
                        "loan_reclaimed", ts, a, r, amount=before_b - now_b, lender="cohort"
                    )
                prev[key] = now_b
        _record(
            state,
            accounts,
            offset + k,
            u,
            nominal,
            np.zeros_like(nominal),
            borrowed,
            lent,
            effective,
        )


def _record(
    state: PolicyState,
    accounts: Sequence[str],
    step: int,
    usage: np.ndarray,
    quota: np.ndarray,
    shadow: np.ndarray,
    borrowed: np.ndarray,
    lent: np.ndarray,
    effective: np.ndarray,
) -> None:
    for i, a in enumerate(accounts):
        rec = state.row(a)
        rec[:, step, _F["usage"]] = usage[i]
        rec[:, step, _F["quota"]] = quota[i]
        rec[:, step, _F["shadow"]] = shadow[i]
        rec[:, step, _F["borrowed"]] = borrowed[i]
        rec[:, step, _F["lent"]] = lent[i]
        rec[:, step, _F["effective"]] = effective[i]
