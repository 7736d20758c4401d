"""The arrays one planning call optimises over, read once from the organisation and profiles.

Validation happened in ``models`` (each record, then cross-references); here the organisation is
trusted and indexed: accounts x resources x periods, in declaration order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import numpy.typing as npt

from models import Loan, NeedProfile, Organisation
from planner.formulation.core import INF, FloatArray, IntArray

#: Cost added to each unit-period of shadow, loan and borrow so that, when the rules price them
#: at zero, the optimiser still prefers not to hand out what nobody needs.
EPSILON_COST = 1e-4


@dataclass(frozen=True)
class TailBand:
    """The part of each target above the forecast's median (accounts x resources x periods).

    ``width = target - median`` (0 where the profile has no median below its target);
    ``price`` in ``(0, 1]`` is the share of the unmet price a unit of it costs
    (:func:`tail_prices`).
    """

    width: FloatArray
    price: FloatArray

    def take(self, resources: npt.NDArray[np.int64]) -> TailBand:
        """The band of the resources at positions ``resources``."""
        return TailBand(self.width[:, resources], self.price[:, resources])


@dataclass
class ProblemData:
    """Indexed arrays of one organisation over one horizon (axes: account, resource, period).

    ``carry[a, r]`` is how many consecutive periods a shadow quota of ``a`` on ``r`` has already
    been active right before ``start`` (it counts against the time-to-live);
    ``committed_lend``/``committed_borrow`` are the amounts of loans in force with
    ``reclaim="expiry"``, which the plan must honour until they end. ``ttl_mask[a, r]`` selects
    the pairs whose shadow time-to-live is modelled (see
    :func:`planner.formulation.allocation.ttl_pairs`).

    ``tail`` is the band of each target above the forecast's median (:class:`TailBand`);
    ``None`` when no profile carries a median below its target: all unmet demand is priced in
    full.
    """

    org: Organisation
    start: datetime
    accounts: list[str]
    resources: list[str]
    periods: list[datetime]
    demand: FloatArray
    quota0: FloatArray
    floor: FloatArray
    ceiling: FloatArray
    borrow_limit: FloatArray
    lend_limit: FloatArray
    capacity: FloatArray
    reserve: FloatArray
    unit_cost: FloatArray
    priority: FloatArray
    criticality: FloatArray
    min_coverage: FloatArray
    unmet_weight: FloatArray
    carry: IntArray
    committed_lend: FloatArray
    committed_borrow: FloatArray
    notes: list[str] = field(default_factory=list)
    ttl_mask: npt.NDArray[np.bool_] | None = None
    tail: TailBand | None = None

    @property
    def shape(self) -> tuple[int, int, int]:
        """(accounts, resources, periods)."""
        return len(self.accounts), len(self.resources), len(self.periods)

    @property
    def period(self) -> timedelta:
        """Length of one period."""
        return timedelta(minutes=self.org.rules.period_minutes)


def unmet_weights(org: Organisation, profiles: Mapping[str, NeedProfile]) -> FloatArray:
    """Price of one unit-period of unmet demand per account.

    ``unmet_cost x (1 + priority) / (1 + mean priority) x (1 + criticality)``: priorities are
    normalised so that the rules' ``unmet_cost`` is the price for an average account, a
    priority-0 account still has a positive price, and criticality (how much depends on the
    account) raises it.
    """
    prio = np.array([a.priority for a in org.accounts], dtype=np.float64)
    crit = np.array([profiles[a.id].criticality if a.id in profiles else 0.0 for a in org.accounts])
    return org.rules.unmet_cost * (1.0 + prio) / (1.0 + prio.mean()) * (1.0 + crit)


def committed_loans(org: Organisation, start: datetime) -> list[Loan]:
    """Loans of ``org.state`` that bind the plan from ``start``: returned only at expiry and not
    yet expired (in force, or starting later). The program keeps their amounts lent and borrowed.
    """
    return [x for x in org.state.loans if x.reclaim == "expiry" and x.until > start]


def tail_prices(levels: dict[float, FloatArray], target: FloatArray, level: float) -> FloatArray:
    """Expected share of the tail ``[median, target]`` that real demand reaches, per period.

    Leaving one unit of supply short at level ``x`` throttles demand with probability
    ``P(demand > x)``; the forecast's quantiles give that probability at a few points
    (``1 - l`` at the quantile of level ``l``, ``1 - level`` at the target). Between them it is
    taken as linear, and the price of the tail's units is its mean over ``[median, target]``
    (trapezoids): about ``0.3`` for a P90 target, ``0.2`` for a P99 one. Where the tail is
    empty the price is 1.
    """
    median = np.minimum(levels[0.5], target)
    xs = [median] + [levels[lv] for lv in sorted(levels) if 0.5 < lv < level] + [target]
    ps = [0.5] + [1.0 - lv for lv in sorted(levels) if 0.5 < lv < level] + [1.0 - level]
    area = np.zeros_like(target)
    lo = median
    for k in range(1, len(xs)):
        hi = np.maximum(np.minimum(xs[k], target), lo)
        area += (hi - lo) * (ps[k - 1] + ps[k]) / 2.0
        lo = hi
    width = target - median
    with np.errstate(divide="ignore", invalid="ignore"):
        price = np.where(width > 1e-12, area / np.where(width > 1e-12, width, 1.0), 1.0)
    return np.clip(price, 1e-3, 1.0)


def problem_data(
    org: Organisation, profiles: Mapping[str, NeedProfile], *, start: datetime
) -> ProblemData:
    """Index ``org`` and ``profiles`` into arrays over the horizon starting at ``start``.

    A profile's target is aligned on the plan's periods by timestamp when its periods fall on
    the plan's grid, else taken from its first value on; a horizon longer than the profile
    repeats its last value (noted in ``notes``). An account without a profile, or without a
    resource in it, has zero demand.
    """
    rules = org.rules
    accounts, resources = org.account_ids, org.resource_names
    n_a, n_r, n_t = len(accounts), len(resources), rules.horizon_periods
    step = timedelta(minutes=rules.period_minutes)
    periods = [start + k * step for k in range(n_t)]
    notes: list[str] = []
    demand = np.zeros((n_a, n_r, n_t))
    width = np.zeros((n_a, n_r, n_t))
    price = np.ones((n_a, n_r, n_t))

    def align(values: list[float], first: int) -> FloatArray:
        seg = np.asarray(values, dtype=np.float64)[first : first + n_t]
        if seg.size == 0:
            seg = np.asarray(values[-1:], dtype=np.float64)
        if seg.size < n_t:
            seg = np.concatenate([seg, np.full(n_t - seg.size, seg[-1])])
        return seg

    for i, acc in enumerate(accounts):
        prof = profiles.get(acc)
        if prof is None:
            continue
        for j, res in enumerate(resources):
            rd = prof.demand.get(res)
            if rd is None:
                continue
            shift = (start - rd.periods[0]) / step
            first = round(shift) if abs(shift - round(shift)) < 1e-9 and shift >= 0 else 0
            covered = len(rd.target[first : first + n_t]) or 1
            if covered < n_t:
                notes.append(
                    f"the profile of {acc} for {res} covers {covered} of {n_t} periods; "
                    "its last value is held for the rest"
                )
            demand[i, j] = align(rd.target, first)
            if 0.5 in rd.quantiles and rd.service_level > 0.5:
                levels = {lv: align(v, first) for lv, v in rd.quantiles.items()}
                width[i, j] = demand[i, j] - np.clip(levels[0.5], 0.0, demand[i, j])
                price[i, j] = tail_prices(levels, demand[i, j], rd.service_level)

    def amounts(key: str, default: float) -> FloatArray:
        return np.array(
            [[getattr(a, key).get(r, default) for r in resources] for a in org.accounts],
            dtype=np.float64,
        ).reshape(n_a, n_r)

    carry = np.zeros((n_a, n_r), dtype=np.int64)
    acc_index = {a: i for i, a in enumerate(accounts)}
    res_index = {r: j for j, r in enumerate(resources)}
    for sq in org.state.shadow_quotas:
        if sq.until >= start and sq.start < start:
            k = int((start - sq.start) // step)
            i, j = acc_index[sq.account], res_index[sq.resource]
            carry[i, j] = max(carry[i, j], k)
    committed_lend = np.zeros((n_a, n_r, n_t))
    committed_borrow = np.zeros((n_a, n_r, n_t))
    for loan in committed_loans(org, start):
        mask = np.array([loan.start <= p < loan.until for p in periods])
        committed_lend[acc_index[loan.lender], res_index[loan.resource], mask] += loan.amount
        committed_borrow[acc_index[loan.borrower], res_index[loan.resource], mask] += loan.amount

    return ProblemData(
        org=org,
        start=start,
        accounts=accounts,
        resources=resources,
        periods=periods,
        demand=demand,
        quota0=amounts("quota", 0.0),
        floor=amounts("floor", 0.0),
        ceiling=amounts("ceiling", INF),
        borrow_limit=amounts("borrow_limit", INF),
        lend_limit=amounts("lend_limit", INF),
        capacity=np.array([org.parent.capacity.get(r, 0.0) for r in resources]),
        reserve=np.array([org.parent.reserve.get(r, 0.0) for r in resources]),
        unit_cost=np.array([org.parent.cost_per_unit.get(r, 0.0) for r in resources]),
        priority=np.array([a.priority for a in org.accounts], dtype=np.float64),
        criticality=np.array([profiles[a].criticality if a in profiles else 0.0 for a in accounts]),
        min_coverage=np.array([a.performance_threshold.min_coverage for a in org.accounts]),
        unmet_weight=unmet_weights(org, profiles),
        carry=carry,
        committed_lend=committed_lend,
        committed_borrow=committed_borrow,
        notes=notes,
        tail=TailBand(width, price) if bool((width > 1e-9).any()) else None,
    )
