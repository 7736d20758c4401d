"""The seed's greedy negotiator: the baseline every method is compared with, and the fallback.

The seed's pseudocode, per resource::

    for sub_account in sub_accounts:
        bid = predicted_demand - current_quota
        if bid > 0:
            if available >= bid: grant bid from the parent's pool
            else: take min(bid, quota) from the lowest-priority sub-account

``strict=True`` runs exactly that, weaknesses included. The default mode fixes only what is
plainly wrong; each fix is listed in :func:`negotiate_resources`.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

import numpy as np
import numpy.typing as npt

from models import (
    Bid,
    Explanation,
    NeedProfile,
    Organisation,
    Plan,
    QuotaAssignment,
    SolverReport,
    StateChange,
    Status,
)

EPS = 1e-9


@dataclass
class _Ledger:
    """Quota moves of one resource, for the bids and the explanations."""

    quota: dict[str, float]
    available: float
    next_lender: int = 0  # lenders before this position (lowest priority first) have no spare
    bids: list[Bid] = field(default_factory=list)
    notes: dict[str, list[str]] = field(default_factory=dict)

    def note(self, account: str, text: str) -> None:
        self.notes.setdefault(account, []).append(text)


def peak_demand(profiles: Mapping[str, NeedProfile], account: str, resource: str) -> float:
    """The demand the greedy provisions for: the peak target over the horizon (0 without one)."""
    profile = profiles.get(account)
    if profile is None or resource not in profile.demand:
        return 0.0
    return profile.demand[resource].peak


@contextmanager
def paused_cyclic_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for allocation-heavy work that makes no cycles.

    The greedy allocates hundreds of thousands of small records; each allocation burst made
    the collector walk every object of the organisation and its profiles again (about 0.3 s
    of 0.95 s at 10,000 accounts). Reference counting still frees everything; the collector is
    switched back on afterwards only if it was on (a caller that disabled it keeps it off).
    Also a decorator: ``@paused_cyclic_gc()``.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@paused_cyclic_gc()
def negotiate_resources(
    org: Organisation,
    profiles: Mapping[str, NeedProfile],
    *,
    start: datetime,
    strict: bool = False,
) -> Plan:
    """Arbitrate the sub-accounts' bids greedily, one resource at a time.

    Each account bids ``peak predicted demand - current quota``. The parent's pool is
    ``capacity - reserve - sum of current quotas``.

    Parameters
    ----------
    org
        The organisation (current quotas, priorities, limits, parent capacity).
    profiles
        Need profiles by account id; an account without one bids nothing.
    start
        Start of the first planning period.
    strict
        ``True`` reproduces the seed's pseudocode exactly: accounts in the order given, a bid
        that the pool cannot cover in full takes ``min(bid, quota)`` from the single
        lowest-priority account (which may be the bidder itself, or an account that needs all
        of its quota, or take it below its floor), and leaves the pool untouched.

        ``False`` (the default) fixes only what is plainly wrong:

        1. bidders are visited in priority order (highest first; ties keep the given order),
           so a late low-priority bid cannot exhaust the pool before an important one;
        2. quota is never taken from the bidder itself;
        3. quota is never taken from a lender below its own peak predicted need, nor below its
           floor (so a lender cannot be starved to feed another);
        4. a bid the pool cannot cover takes what the pool has first, then takes the rest from
           the lowest-priority accounts in turn, lowest first, not only from the single lowest
           (otherwise a bid fails while spare quota sits idle one account up);
        5. no account is granted beyond its ceiling (a hard per-account limit).

    Returns
    -------
    Plan
        Quotas before and after, each bid with its outcome and reason, unmet demand, and an
        explanation per account. Loans and shadow quotas of ``org.state`` are not kept: the
        greedy moves base quota only, and says so in ``state_changes``.
    """
    t0 = time.perf_counter()
    accounts = list(org.accounts)
    order = accounts if strict else sorted(accounts, key=lambda a: -a.priority)
    by_priority_low_first = sorted(range(len(accounts)), key=lambda i: (accounts[i].priority, i))
    index = {a.id: i for i, a in enumerate(accounts)}
    quotas: list[QuotaAssignment] = []
    bids: list[Bid] = []
    notes: dict[str, list[str]] = {}
    unmet: dict[str, dict[str, float]] = {}
    for resource in org.resource_names:
        before = {a.id: a.quota.get(resource, 0.0) for a in accounts}
        pool = (
            org.parent.capacity.get(resource, 0.0)
            - org.parent.reserve.get(resource, 0.0)
            - sum(before.values())
        )
        ledger = _Ledger(quota=dict(before), available=max(0.0, pool))
        need = {a.id: peak_demand(profiles, a.id, resource) for a in accounts}
        for account in order:
            _bid_once(org, ledger, account.id, resource, need, by_priority_low_first, index, strict)
        bids.extend(ledger.bids)
        for k, v in ledger.notes.items():
            notes.setdefault(k, []).extend(v)
        after = np.array([ledger.quota[a.id] for a in accounts])
        short = _unmet_unit_periods(profiles, [a.id for a in accounts], resource, after)
        for i, a in enumerate(accounts):
            quotas.append(
                QuotaAssignment(
                    account=a.id, resource=resource, before=before[a.id], after=ledger.quota[a.id]
                )
            )
            if short[i] > EPS:
                unmet.setdefault(a.id, {})[resource] = float(short[i])
    state_changes = [
        StateChange(
            kind="loan",
            account=loan.borrower,
            resource=loan.resource,
            ref=loan.id or f"{loan.lender}->{loan.borrower}",
            action="returned",
            reason="the greedy method moves base quota only and does not carry loans",
        )
        for loan in org.state.loans
    ] + [
        StateChange(
            kind="shadow",
            account=sq.account,
            resource=sq.resource,
            ref=f"{sq.account}/{sq.resource}",
            action="reverted",
            reason="the greedy method moves base quota only and does not keep shadow quotas",
        )
        for sq in org.state.shadow_quotas
    ]
    explanations = [
        Explanation(
            account=a.id,
            text=" ".join(notes.get(a.id, [])) or "Asked for nothing more; quota unchanged.",
        )
        for a in accounts
    ]
    wall = time.perf_counter() - t0
    return Plan(
        organisation=org.name,
        created_at=datetime.now().replace(microsecond=0),
        start=start,
        period_minutes=org.rules.period_minutes,
        periods=org.rules.horizon_periods,
        quotas=quotas,
        bids=bids,
        state_changes=state_changes,
        unmet=unmet,
        need_profiles=[profiles[a.id] for a in accounts if a.id in profiles],
        report=SolverReport(
            method="greedy-strict" if strict else "greedy",
            status=Status.HEURISTIC,
            solve_seconds=wall,
            wall_seconds=wall,
        ),
        explanations=explanations,
    )


def _bid_once(
    org: Organisation,
    ledger: _Ledger,
    bidder: str,
    resource: str,
    need: dict[str, float],
    low_first: list[int],
    index: dict[str, int],
    strict: bool,
) -> None:
    accounts = org.accounts
    sub = accounts[index[bidder]]
    current = ledger.quota[bidder]
    demand = need[bidder]
    bid = demand - current
    if bid <= EPS:
        ledger.bids.append(
            Bid(
                account=bidder,
                resource=resource,
                demand=demand,
                current_quota=current,
                amount=0.0,
                granted=0.0,
                outcome="none",
                reason="predicted demand fits the current quota",
            )
        )
        return
    ceiling = sub.ceiling.get(resource)
    wanted = bid
    capped = ""
    if not strict and ceiling is not None and current + wanted > ceiling:
        wanted = max(0.0, ceiling - current)
        capped = f"; capped at its ceiling of {ceiling:g}"
    granted = 0.0
    reasons: list[str] = []
    if ledger.available >= wanted - EPS:
        granted = wanted
        ledger.available -= wanted
        if wanted > EPS:
            reasons.append(f"{wanted:g} from the parent's pool")
    elif strict:
        lowest = accounts[low_first[0]]
        take = min(wanted, ledger.quota[lowest.id])
        ledger.quota[lowest.id] -= take
        granted = take
        if lowest.id == bidder:
            reasons.append(
                "the pool was short and the lowest-priority account is the bidder itself, "
                "so it took from itself"
            )
            granted = 0.0
            ledger.quota[lowest.id] += take
        elif take > EPS:
            reasons.append(f"{take:g} taken from {lowest.id} (the lowest-priority account)")
            ledger.note(lowest.id, f"Gave up {take:g} {resource} of quota to {bidder}.")
    else:
        from_pool = ledger.available
        if from_pool > EPS:
            granted += from_pool
            ledger.available = 0.0
            reasons.append(f"{from_pool:g} from the parent's pool")
        # A lender's spare never grows again once used up (an account bids at most up to its
        # need, and the bidder itself has none to spare), so the scan resumes where the
        # previous bid left it: O(accounts) per resource in all.
        while granted < wanted - EPS and ledger.next_lender < len(low_first):
            lender = accounts[low_first[ledger.next_lender]]
            keep = max(need[lender.id], lender.floor.get(resource, 0.0))
            spare = ledger.quota[lender.id] - keep
            if lender.id == bidder or spare <= EPS:
                ledger.next_lender += 1
                continue
            take = min(spare, wanted - granted)
            ledger.quota[lender.id] -= take
            granted += take
            reasons.append(f"{take:g} taken from {lender.id} (priority {lender.priority})")
            ledger.note(
                lender.id,
                f"Gave up {take:g} {resource} of spare quota to {bidder} "
                f"(kept {ledger.quota[lender.id]:g}, its need is {need[lender.id]:g}).",
            )
    ledger.quota[bidder] = current + granted
    outcome: Literal["granted", "partial", "denied", "none"]
    if granted >= bid - EPS:
        outcome = "granted"
        reason = "granted in full: " + ", ".join(reasons)
    elif granted > EPS:
        outcome = "partial"
        reason = f"granted {granted:g} of {bid:g}: " + ", ".join(reasons)
        reason += capped or "; the pool and the lenders had no more to give"
    else:
        outcome = "denied"
        reason = "denied: " + (
            ", ".join(reasons) or "the pool was short and no account had spare quota"
        )
        reason += capped
    ledger.bids.append(
        Bid(
            account=bidder,
            resource=resource,
            demand=demand,
            current_quota=current,
            amount=bid,
            granted=granted,
            outcome=outcome,
            reason=reason,
        )
    )
    ledger.note(
        bidder,
        f"Asked for {bid:g} more {resource} (peak need {demand:g}, quota {current:g}); {reason}.",
    )


def _unmet_unit_periods(
    profiles: Mapping[str, NeedProfile],
    accounts: list[str],
    resource: str,
    quota: npt.NDArray[np.float64],
) -> npt.NDArray[np.float64]:
    """Per account: ``sum_t max(0, target[t] - quota)`` (0 without a profile)."""
    targets = []
    for account in accounts:
        profile = profiles.get(account)
        demand = profile.demand.get(resource) if profile is not None else None
        targets.append(demand.target if demand is not None else [])
    width = max((len(t) for t in targets), default=0)
    table = np.zeros((len(accounts), width))
    for i, t in enumerate(targets):
        table[i, : len(t)] = t
    return (
        np.clip(table - quota[:, None], 0.0, None).sum(axis=1) if width else np.zeros(len(accounts))
    )
