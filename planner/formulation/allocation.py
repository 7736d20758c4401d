"""The allocation model: variable blocks and one function per constraint family.

Notation: accounts ``a``, resources ``r``, periods ``t``; ``d[a,r,t]`` demand, ``q0[a,r]`` the
current quota, ``C[r]`` parent capacity, ``S[r]`` its reserve. Every function takes the builder
and the data, adds one family (or the blocks), and returns early when the family is empty.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from planner.formulation.core import FloatArray, LinearModel, ModelBuilder
from planner.formulation.data import EPSILON_COST, ProblemData

A, R, T = "account", "resource", "period"


def define_variables(b: ModelBuilder, d: ProblemData) -> None:
    """Add the variable blocks.

    - ``quota[a,r]`` in ``[floor, min(ceiling, C - S)]``: base quota, stable over the horizon;
      costs ``cost_per_unit[r] x periods`` per unit.
    - ``churn[a,r] >= |quota - q0|``: priced by ``churn_cost``.
    - ``shadow[a,r,t]`` in ``[0, min(shadow_max_fraction x max quota, d[a,r,t], C)]``: temporary
      expansion; costs ``cost_per_unit + shadow_premium`` per unit-period. Zero where there is no
      demand (it would serve nothing) or when the rules disallow shadows.
    - ``shadow_on[a,r,t]`` binary: the shadow is active (only when the time-to-live can bind).
    - ``lend[a,r,t]`` in ``[committed, lend_limit]`` (premium ``loan_premium``),
      ``borrow[a,r,t]`` in ``[committed, borrow_limit]``: through the parent's pool.
    - ``unmet[a,r,t]`` in ``[0, d]``: demand left uncovered, priced by ``unmet_weight[a]``.
    - ``unmet_tail[a,r,t]`` in ``[0, d - median]``: uncovered target above the forecast's
      median, priced by ``unmet_weight[a] x tail.price[a,r,t]`` (the chance that real demand
      reaches it); only when some profile carries a median below its target. Being cheaper,
      it is used before ``unmet``: the pair prices shortfall piecewise linearly.
    """
    rules = d.org.rules
    labels_ar = (d.accounts, d.resources)
    labels_art = (d.accounts, d.resources, d.periods)
    n_a, n_r, n_t = d.shape
    base_cap = np.maximum(d.capacity - d.reserve, 0.0)
    q_hi = np.minimum(d.ceiling, base_cap[None, :])
    b.add_block(
        "quota",
        (A, R),
        labels_ar,
        lower=d.floor,
        upper=np.maximum(q_hi, d.floor),
        cost=d.unit_cost[None, :] * n_t,
        doc="base quota per account and resource",
    )
    b.add_block("churn", (A, R), labels_ar, cost=rules.churn_cost, doc="|quota - current quota|")
    if rules.allow_shadow:
        s_hi = np.minimum(rules.shadow_max_fraction * q_hi[:, :, None], d.demand)
        s_hi = np.minimum(s_hi, d.capacity[None, :, None])
    else:
        s_hi = np.zeros((n_a, n_r, n_t))
    b.add_block(
        "shadow",
        (A, R, T),
        labels_art,
        upper=s_hi,
        cost=(d.unit_cost + rules.shadow_premium + EPSILON_COST)[None, :, None],
        doc="temporary quota from the parent's reserve",
    )
    ia, ir = ttl_pairs(d)
    if ia.size:
        pairs = [(d.accounts[i], d.resources[j]) for i, j in zip(ia, ir, strict=True)]
        b.add_block(
            "shadow_on",
            ("account/resource", T),
            (pairs, d.periods),
            upper=(s_hi[ia, ir, :] > 0).astype(np.float64),
            integer=True,
            doc="1 when the shadow quota is active (pairs whose time-to-live is enforced)",
        )
    lend_hi = d.lend_limit[:, :, None] * np.ones(n_t) if rules.allow_loans else np.zeros(1)
    borrow_hi = d.borrow_limit[:, :, None] * np.ones(n_t) if rules.allow_loans else np.zeros(1)
    b.add_block(
        "lend",
        (A, R, T),
        labels_art,
        lower=np.minimum(d.committed_lend, lend_hi),
        upper=np.broadcast_to(lend_hi, (n_a, n_r, n_t)),
        cost=rules.loan_premium + EPSILON_COST,
        doc="amount lent to the pool",
    )
    b.add_block(
        "borrow",
        (A, R, T),
        labels_art,
        lower=np.minimum(d.committed_borrow, borrow_hi),
        upper=np.broadcast_to(borrow_hi, (n_a, n_r, n_t)),
        cost=EPSILON_COST,
        doc="amount borrowed from the pool",
    )
    b.add_block(
        "unmet",
        (A, R, T),
        labels_art,
        upper=d.demand,
        cost=d.unmet_weight[:, None, None],
        doc="demand left uncovered",
    )
    if d.tail is not None:
        b.add_block(
            "unmet_tail",
            (A, R, T),
            labels_art,
            upper=d.tail.width,
            cost=d.unmet_weight[:, None, None] * d.tail.price,
            doc="demand left uncovered above the forecast's median",
        )


def unmet_blocks(b: ModelBuilder | LinearModel) -> tuple[str, ...]:
    """The blocks whose sum is an account's unmet demand (``unmet``, and ``unmet_tail``)."""
    return ("unmet", "unmet_tail") if "unmet_tail" in b.blocks else ("unmet",)


def unmet_values(model: LinearModel, x: FloatArray) -> FloatArray:
    """Unmet demand (accounts x resources x periods) in the solution ``x``: both price bands."""
    return np.sum([model.values(name, x) for name in unmet_blocks(model)], axis=0)


def ttl_pairs(d: ProblemData) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """(account, resource) index pairs whose shadow time-to-live is modelled with binaries.

    ``d.ttl_mask`` selects them; the planner starts with none and adds the pairs whose solution
    breaks the time-to-live (lazy constraint generation, see :mod:`planner.mip`): a model with
    fewer pairs is a relaxation, so its bound stays valid, and once no pair breaks the rule the
    solution is optimal for the full model. Empty when the rules disallow shadows or the
    time-to-live cannot bind within the horizon.
    """
    rules = d.org.rules
    if not rules.allow_shadow or d.ttl_mask is None:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    binds = len(d.periods) > rules.shadow_ttl_periods or bool((d.carry > 0).any())
    if not binds:
        return np.zeros(0, dtype=np.intp), np.zeros(0, dtype=np.intp)
    ia, ir = np.nonzero(d.ttl_mask)
    return ia, ir


def define_capacity(b: ModelBuilder, d: ProblemData) -> None:
    """Parent capacity per resource and period.

    ``sum_a quota[a,r] + sum_a shadow[a,r,t] <= C[r]``  for every r, t.
    (Loans move quota between accounts and add nothing.)
    """
    f = b.add_family(
        "capacity",
        (R, T),
        (d.resources, d.periods),
        upper=d.capacity[:, None],
        doc=define_capacity.__doc__ or "",
        relaxable=True,
    )
    rows = f.index()  # (r, t)
    q = b.blocks["quota"].index()  # (a, r)
    b.add_terms("capacity", "quota", rows[None, :, :], q[:, :, None], 1.0)
    b.add_terms("capacity", "shadow", rows[None, :, :], b.blocks["shadow"].index(), 1.0)


def define_reserve(b: ModelBuilder, d: ProblemData) -> None:
    """The reserve is held back from base quotas.

    ``sum_a quota[a,r] <= C[r] - S[r]``  for every r.
    """
    f = b.add_family(
        "reserve",
        (R,),
        (d.resources,),
        upper=d.capacity - d.reserve,
        doc=define_reserve.__doc__ or "",
        relaxable=True,
    )
    b.add_terms("reserve", "quota", f.index()[None, :], b.blocks["quota"].index(), 1.0)


def define_coverage(b: ModelBuilder, d: ProblemData) -> None:
    """Each account's demand is covered or counted as unmet.

    ``quota[a,r] + shadow[a,r,t] + borrow[a,r,t] - lend[a,r,t] + unmet[a,r,t]
    (+ unmet_tail[a,r,t]) >= d[a,r,t]``.
    """
    f = b.add_family(
        "coverage",
        (A, R, T),
        (d.accounts, d.resources, d.periods),
        lower=d.demand,
        doc=define_coverage.__doc__ or "",
    )
    rows = f.index()
    b.add_terms("coverage", "quota", rows, b.blocks["quota"].index()[:, :, None], 1.0)
    signs = {"shadow": 1.0, "borrow": 1.0, "lend": -1.0} | dict.fromkeys(unmet_blocks(b), 1.0)
    for name, sign in signs.items():
        b.add_terms("coverage", name, rows, b.blocks[name].index(), sign)


def define_churn(b: ModelBuilder, d: ProblemData) -> None:
    """Churn is the absolute change of base quota.

    ``churn[a,r] - quota[a,r] >= -q0[a,r]`` and ``churn[a,r] + quota[a,r] >= q0[a,r]``.
    """
    for name, sign in (("churn_up", -1.0), ("churn_down", 1.0)):
        f = b.add_family(
            name, (A, R), (d.accounts, d.resources), lower=sign * d.quota0, doc="churn definition"
        )
        rows = f.index()
        b.add_terms(name, "churn", rows, b.blocks["churn"].index(), 1.0)
        b.add_terms(name, "quota", rows, b.blocks["quota"].index(), sign)


def define_pool(b: ModelBuilder, d: ProblemData) -> None:
    """The loan pool balances per resource and period.

    ``sum_a lend[a,r,t] - sum_a borrow[a,r,t] = 0``.
    """
    f = b.add_family("pool", (R, T), (d.resources, d.periods), lower=0.0, upper=0.0, doc="")
    rows = f.index()[None, :, :]
    b.add_terms("pool", "lend", rows, b.blocks["lend"].index(), 1.0)
    b.add_terms("pool", "borrow", rows, b.blocks["borrow"].index(), -1.0)


def define_lend_within_quota(b: ModelBuilder, d: ProblemData) -> None:
    """An account lends only from its own base quota (never from a shadow or a loan).

    ``lend[a,r,t] - quota[a,r] <= 0``.
    """
    if not d.org.rules.allow_loans:
        return
    f = b.add_family(
        "lend_within_quota", (A, R, T), (d.accounts, d.resources, d.periods), upper=0.0
    )
    rows = f.index()
    b.add_terms("lend_within_quota", "lend", rows, b.blocks["lend"].index(), 1.0)
    b.add_terms("lend_within_quota", "quota", rows, b.blocks["quota"].index()[:, :, None], -1.0)


def define_ceiling(b: ModelBuilder, d: ProblemData) -> None:
    """An account's ceiling holds every period, shadow and loans included.

    ``quota[a,r] + shadow[a,r,t] + borrow[a,r,t] <= ceiling[a,r]``  (finite ceilings only).
    """
    ia, ir = np.nonzero(np.isfinite(d.ceiling))
    if ia.size == 0:
        return
    n_t = len(d.periods)
    pairs = [(d.accounts[i], d.resources[j]) for i, j in zip(ia, ir, strict=True)]
    f = b.add_family(
        "ceiling",
        ("account/resource", T),
        (pairs, d.periods),
        upper=d.ceiling[ia, ir][:, None],
        doc=define_ceiling.__doc__ or "",
        relaxable=True,
    )
    rows = f.index()  # (pair, t)
    q = b.blocks["quota"].index()[ia, ir]
    b.add_terms("ceiling", "quota", rows, q[:, None] * np.ones(n_t, dtype=np.int64), 1.0)
    for name in ("shadow", "borrow"):
        b.add_terms("ceiling", name, rows, b.blocks[name].index()[ia, ir, :], 1.0)


def define_shadow_fraction(b: ModelBuilder, d: ProblemData) -> None:
    """A shadow quota is at most a fraction of the base quota.

    ``shadow[a,r,t] - shadow_max_fraction x quota[a,r] <= 0``.
    """
    if not d.org.rules.allow_shadow:
        return
    f = b.add_family("shadow_fraction", (A, R, T), (d.accounts, d.resources, d.periods), upper=0)
    rows = f.index()
    frac = d.org.rules.shadow_max_fraction
    b.add_terms("shadow_fraction", "shadow", rows, b.blocks["shadow"].index(), 1.0)
    b.add_terms("shadow_fraction", "quota", rows, b.blocks["quota"].index()[:, :, None], -frac)


def define_shadow_ttl(b: ModelBuilder, d: ProblemData) -> None:
    """A shadow quota lives at most ``shadow_ttl_periods`` consecutive periods.

    Link: ``shadow[a,r,t] <= U[a,r,t] x shadow_on[a,r,t]`` (U the shadow's upper bound).
    Windows: for every window ``s .. s + L`` of ``L + 1`` periods (``L`` the TTL),
    ``sum_{t in window, t >= 0} shadow_on[a,r,t] <= L - prior[a,r,s]``, where ``prior`` counts
    the window's periods before the horizon in which a shadow from the current state was
    already active (``carry``), so a shadow granted earlier reverts in time.
    """
    if "shadow_on" not in b.blocks:
        return
    ia, ir = ttl_pairs(d)
    n_t = len(d.periods)
    ttl = d.org.rules.shadow_ttl_periods
    on_block = b.blocks["shadow_on"]
    on = on_block.index()  # (pair, t)
    shadow = b.blocks["shadow"]
    pairs, periods = on_block.labels
    f = b.add_family("shadow_link", ("account/resource", T), (pairs, periods), upper=0.0)
    b.add_terms("shadow_link", "shadow", f.index(), shadow.index()[ia, ir, :], 1.0)
    b.add_terms(
        "shadow_link",
        "shadow_on",
        f.index(),
        on,
        -on_block.upper.reshape(on.shape) * shadow.upper.reshape(shadow.shape)[ia, ir, :],
    )
    carry = d.carry[ia, ir]
    kmax = int(carry.max()) if carry.size else 0
    starts = list(range(-kmax, n_t - ttl))
    if not starts:
        return
    s_arr = np.array(starts)
    # prior[pair, s] = |[-carry, -1] ∩ [s, s + ttl]|
    lo = np.maximum(s_arr[None, :], -carry[:, None])
    hi = np.minimum(s_arr + ttl, -1)[None, :]
    prior = np.maximum(hi - lo + 1, 0)
    w = b.add_family(
        "shadow_ttl",
        ("account/resource", "window"),
        (pairs, starts),
        upper=ttl - prior,
        doc=define_shadow_ttl.__doc__ or "",
    )
    rows = w.index()
    for j in range(ttl + 1):
        t = s_arr + j
        ok = (t >= 0) & (t < n_t)
        b.add_terms("shadow_ttl", "shadow_on", rows[:, ok], on[:, t[ok]], 1.0)


def define_min_coverage(b: ModelBuilder, d: ProblemData) -> None:
    """Hard performance thresholds (only under ``rules.hard_thresholds``).

    ``unmet[a,r,t] (+ unmet_tail[a,r,t]) <= (1 - min_coverage[a]) x d[a,r,t]``.
    """
    if not d.org.rules.hard_thresholds:
        return
    f = b.add_family(
        "min_coverage",
        (A, R, T),
        (d.accounts, d.resources, d.periods),
        upper=(1.0 - d.min_coverage)[:, None, None] * d.demand,
        doc=define_min_coverage.__doc__ or "",
        relaxable=True,
    )
    for name in unmet_blocks(b):
        b.add_terms("min_coverage", name, f.index(), b.blocks[name].index(), 1.0)


FAMILIES = (
    define_capacity,
    define_reserve,
    define_coverage,
    define_churn,
    define_pool,
    define_lend_within_quota,
    define_ceiling,
    define_shadow_fraction,
    define_shadow_ttl,
    define_min_coverage,
)
