"""Play the actual usage of one cycle against a policy's effective quotas, hour by hour.

Effective quota of account ``a`` for resource ``r`` at step ``t``::

    effective = quota + shadow(t) + borrowed(t) - lent(t)

Planned policies (static, greedy, ``mip-plan``) hold quotas fixed over the cycle; shadow quotas
and loans count while ``start <= t < until``. A loan whose ``reclaim`` is ``lender_need`` goes
back to its lender, in part or whole, at the first step where the lender's own usage exceeds
what it kept (``quota + shadow - other loans``): that is a *reclaim*, and the loan keeps the
reduced amount for the rest of its life. The Kueue-like policy (:func:`play_cohort`) borrows
every step instead, from fixed nominal quotas. The program's policies (``mip``, ``oracle``) run
the plan the way a scheduler runs the quotas quota-planner sets each cycle: the plan's quotas,
shadow quotas and loans are a cohort's nominal quotas, idle quota is lent every step
(:func:`cohort_step`), and what the parent still has free is granted as shadow quotas on
demand within the rules (:func:`shadow_on_demand`). ``kueue-shadow`` adds only the latter to
the Kueue-like policy (an ablation: the runtime mechanisms without the plans).
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
    *,
    cohort: bool = False,
) -> None:
    """Play ``usage`` (``accounts x resources x steps``) over ``times``; record into ``state``.

    ``offset`` is the position of ``times[0]`` among the replayed steps. With ``cohort`` the
    planned quotas, shadow quotas and loans are the cohort's nominal quotas for the step and,
    on top of them, an account short of quota borrows what others leave idle and the parent
    has not assigned (:func:`cohort_step`), then gets shadow quotas on demand from what is
    still free (:func:`shadow_on_demand`): the program's plan run the way a Kueue-style
    scheduler would run it.
    """
    org = state.org
    resources = org.resource_names
    a_pos = {a: i for i, a in enumerate(accounts)}
    r_pos = {r: j for j, r in enumerate(resources)}
    quota = np.array([[org.account(a).quota.get(r, 0.0) for r in resources] for a in accounts])
    limits = _limits(state, accounts)
    cap = np.array([org.parent.capacity.get(r, 0.0) for r in resources])
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
        if cohort:
            free = np.clip(cap - (quota + shadow).sum(axis=0), 0.0, None)
            shadow, borrowed, lent, effective = _cohort(
                state,
                accounts,
                ts,
                usage[:, :, k],
                quota,
                shadow,
                borrowed,
                lent,
                free,
                limits,
                shadows=True,
            )
        _record(
            state, accounts, offset + k, usage[:, :, k], quota, shadow, borrowed, lent, effective
        )


def shadow_on_demand(
    state: PolicyState,
    accounts: Sequence[str],
    ts: pd.Timestamp,
    usage: np.ndarray,
    effective: np.ndarray,
    quota: np.ndarray,
    planned: np.ndarray,
    free: np.ndarray,
    limits: dict[str, np.ndarray],
) -> np.ndarray:
    """Shadow quotas granted at the step they are needed, within the negotiation rules.

    An account whose usage still exceeds its effective quota after cohort borrowing gets a
    shadow quota from the parent's capacity that nobody holds (``free``, the reserve
    included), highest priority first, at most ``shadow_max_fraction x quota`` in all (the
    planned shadow counts), never above its ceiling, and never for more than
    ``shadow_ttl_periods`` consecutive steps with a shadow (planned or on demand): then it
    reverts for at least one step. It reverts by itself as soon as usage falls back within
    the effective quota. Returns the extra shadow (accounts x resources); logs ``shadow`` when
    one starts and ``shadow_reverted`` when it ends.
    """
    org = state.org
    rules = org.rules
    extra = np.zeros_like(quota)
    runs: dict[str, int] = state.extra.setdefault("shadow_run", {})
    was: dict[str, float] = state.extra.setdefault("shadow_on_demand", {})
    keys = [[f"{a}|{r}" for r in org.resource_names] for a in accounts]
    short = np.clip(usage - effective, 0.0, None)
    if rules.allow_shadow:
        room = np.clip(rules.shadow_max_fraction * quota - planned, 0.0, None)
        room = np.minimum(room, np.clip(limits["ceiling"] - effective, 0.0, None))
        run = np.array([[runs.get(key, 0) for key in row] for row in keys], dtype=np.int64)
        room[run >= rules.shadow_ttl_periods] = 0.0
        extra = serve_by_priority(np.minimum(short, room), free, limits["order"])
    on = (planned + extra) > EPS
    for i, a in enumerate(accounts):
        for j, r in enumerate(org.resource_names):
            key = keys[i][j]
            runs[key] = runs.get(key, 0) + 1 if on[i, j] else 0
            if extra[i, j] > EPS and was.get(key, 0.0) <= EPS:
                state.event("shadow", ts, a, r, amount=float(extra[i, j]), on_demand=True)
            elif extra[i, j] <= EPS and was.get(key, 0.0) > EPS:
                why = "time-to-live" if short[i, j] > EPS else "the need subsided"
                state.event("shadow_reverted", ts, a, r, reason=why, on_demand=True)
            was[key] = float(extra[i, j])
    return extra


def serve_by_priority(ask: np.ndarray, pool: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Serve ``ask`` (accounts x resources) from ``pool`` (per resource), accounts in
    ``order`` (highest priority first), each in full while the pool lasts."""
    served = np.zeros_like(ask)
    ranked = ask[order]
    before = np.cumsum(ranked, axis=0) - ranked
    served[order] = np.clip(pool[None, :] - before, 0.0, ranked)
    return served


def _limits(state: PolicyState, accounts: Sequence[str]) -> dict[str, np.ndarray]:
    """Per account and resource: ``borrow_limit``, ``lend_limit``, ``ceiling`` (inf: none) and
    the cohort's admission order (highest priority first)."""
    org = state.org
    resources = org.resource_names
    accs = [org.account(a) for a in accounts]
    inf = np.inf
    return {
        "borrow": np.array([[a.borrow_limit.get(r, inf) for r in resources] for a in accs]),
        "lend": np.array([[a.lend_limit.get(r, inf) for r in resources] for a in accs]),
        "ceiling": np.array([[a.ceiling.get(r, inf) for r in resources] for a in accs]),
        "order": np.argsort([-a.priority for a in accs], kind="stable"),
    }


def cohort_step(
    usage: np.ndarray,
    base: np.ndarray,
    free: np.ndarray,
    limits: dict[str, np.ndarray],
    *,
    borrowed: np.ndarray | None = None,
    lent: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """One step of Kueue-like borrowing within one cohort (the whole parent), per resource.

    ``base`` (accounts x resources) is what each account holds before borrowing (its nominal
    quota, or a plan's quota + shadow + loans); ``borrowed`` / ``lent`` what the plan already
    borrowed or lent this step (counted against the limits). Each account keeps
    ``min(usage, base)``; its idle part up to what is left of its ``lend`` limit, plus ``free``
    (the parent's unassigned capacity per resource), forms the borrowable pool; each account
    asks for its usage above ``base``, capped by what is left of its ``borrow`` limit and by its
    ``ceiling``; the pool serves the asks highest priority first. Lenders give in proportion to
    what they can lend. Returns ``(more_borrowed, more_lent)``.
    """
    zero = np.zeros_like(base)
    b_room = np.clip(limits["borrow"] - (zero if borrowed is None else borrowed), 0.0, None)
    l_room = np.clip(limits["lend"] - (zero if lent is None else lent), 0.0, None)
    own = np.minimum(usage, base)
    ask = np.clip(np.minimum(usage - base, np.minimum(b_room, limits["ceiling"] - base)), 0.0, None)
    lendable = np.clip(np.minimum(base - own, l_room), 0.0, None)
    pool = free + lendable.sum(axis=0)
    more = serve_by_priority(ask, pool, limits["order"])
    from_lenders = np.clip(more.sum(axis=0) - free, 0.0, None)
    total = lendable.sum(axis=0)
    share = np.divide(from_lenders, total, out=np.zeros_like(free), where=total > 0)
    return more, lendable * share[None, :]


def _cohort_events(
    state: PolicyState,
    accounts: Sequence[str],
    resources: Sequence[str],
    ts: pd.Timestamp,
    borrowed: np.ndarray,
    ask: np.ndarray,
) -> None:
    """Log a cohort loan when an account starts borrowing and a reclaim when it loses some of
    it while still wanting it (a preemption in Kueue)."""
    prev = state.extra.setdefault("cohort_borrowed", {})
    for i, a in enumerate(accounts):
        for j, r in enumerate(resources):
            key = f"{a}|{r}"
            before_b = float(prev.get(key, 0.0))
            now_b = float(borrowed[i, j])
            if now_b > EPS and before_b <= EPS:
                state.event("loan", ts, a, r, amount=now_b, lender="cohort")
            elif now_b < before_b - EPS and ask[i, j] >= before_b - EPS:
                state.event("loan_reclaimed", ts, a, r, amount=before_b - now_b, lender="cohort")
            prev[key] = now_b


def play_cohort(
    state: PolicyState,
    accounts: Sequence[str],
    usage: np.ndarray,
    times: pd.DatetimeIndex,
    offset: int,
    *,
    shadows: bool = False,
) -> None:
    """Kueue-like reactive borrowing within one cohort (the whole parent), step by step.

    Nominal quotas never change; every step :func:`cohort_step` lends idle nominal quota (up to
    ``lend_limit``, Kueue's ``lendingLimit``) and the parent's unassigned capacity to the
    accounts above their nominal quota (up to ``borrow_limit``, ``borrowingLimit``, and the
    ceiling), highest priority first (Kueue admits by priority). A lender whose usage comes back
    takes its quota back at once (``reclaimWithinCohort: Any``): the borrower loses it, which is
    counted as a reclaim (a preemption in Kueue) when the borrower still wanted it. With
    ``shadows``, :func:`shadow_on_demand` adds shadow quotas on top (an ablation: the runtime
    mechanisms of the program's policy without its plans).
    """
    org = state.org
    resources = org.resource_names
    nominal = np.array([[org.account(a).quota.get(r, 0.0) for r in resources] for a in accounts])
    limits = _limits(state, accounts)
    cap = np.array([org.parent.capacity.get(r, 0.0) for r in resources])
    free = np.clip(cap - nominal.sum(axis=0), 0.0, None)
    zero = np.zeros_like(nominal)
    for k, ts in enumerate(times):
        u = usage[:, :, k]
        shadow, borrowed, lent, effective = _cohort(
            state, accounts, ts, u, nominal, zero, zero, zero, free, limits, shadows=shadows
        )
        _record(state, accounts, offset + k, u, nominal, shadow, borrowed, lent, effective)


def _cohort(
    state: PolicyState,
    accounts: Sequence[str],
    ts: pd.Timestamp,
    usage: np.ndarray,
    quota: np.ndarray,
    shadow: np.ndarray,
    borrowed: np.ndarray,
    lent: np.ndarray,
    free: np.ndarray,
    limits: dict[str, np.ndarray],
    *,
    shadows: bool,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One step of cohort borrowing on top of ``quota + shadow + borrowed - lent`` and, with
    ``shadows``, shadow quotas on demand from what the parent still has free. Returns the new
    ``(shadow, borrowed, lent, effective)``."""
    effective = quota + shadow + borrowed - lent
    more, less = cohort_step(usage, effective, free, limits, borrowed=borrowed, lent=lent)
    _cohort_events(state, accounts, state.org.resource_names, ts, more, usage - effective)
    borrowed, lent = borrowed + more, lent + less
    effective = effective + more - less
    if shadows:
        # what borrowing took from the parent's unassigned capacity (the rest came from
        # lenders) is no longer free for shadow quotas
        taken = more.sum(axis=0) - np.clip(more.sum(axis=0) - free, 0.0, None)
        extra = shadow_on_demand(
            state, accounts, ts, usage, effective, quota, shadow, free - taken, limits
        )
        shadow, effective = shadow + extra, effective + extra
    return shadow, borrowed, lent, effective


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
