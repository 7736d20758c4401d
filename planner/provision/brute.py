"""Brute-force optimum of the provisioning decision for one small account (tests, benchmarks).

For an account of at most ``MAX_WORKLOADS`` movable workloads and one candidate new account,
every subset ``S`` of movable workloads closed under ``rules.must_stay_together`` is scored
exactly as the joint program scores it when loans, shadows, churn and holding costs are off and
the parent has room (as in :func:`planner.provision.cases.overloaded_case`):

``cost(S) = u x (sum_{r,t} max(0, D_stay[r,t] - ceiling[r]) + sum_{r,t} max(0, D_S[r,t] - U[r]))
+ F x [S non-empty] + sum_{w in S} m[w] + cut_cost x traffic(S, account \\ S)``

with ``u`` the account's unmet price, ``U`` the template's limits and ``F`` its opening cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from planner.formulation.data import problem_data
from planner.formulation.provisioning import matching_template
from planner.provision.cases import Case
from planner.provision.coarsen import pinned_workloads
from planner.provision.extract import pair_traffic

MAX_WORKLOADS = 16


@dataclass(frozen=True)
class BruteResult:
    """The best subset to move, its cost and its cut traffic."""

    moved: frozenset[str]
    cost: float
    cut_traffic: float
    subsets: int


def brute_force(case: Case, account: str) -> BruteResult:
    """Enumerate every feasible subset of ``account``'s movable workloads (module docstring).

    Raises
    ------
    ValueError
        When the account has more than ``MAX_WORKLOADS`` movable workloads or no template.
    """
    org = case.org
    template = matching_template(org, account)
    if template is None:
        raise ValueError(f"account {account!r} has no splittable template")
    data = problem_data(org, case.profiles, start=case.start)
    a = data.accounts.index(account)
    pinned, groups, _ = pinned_workloads(org)
    ids = [w.id for w in org.workloads if w.account == account]
    movable_groups = sorted(
        {tuple(sorted(g)) for w in ids if w not in pinned for g in groups.values() if w in g}
    )
    if sum(len(g) for g in movable_groups) > MAX_WORKLOADS:
        raise ValueError(f"{account!r} has more than {MAX_WORKLOADS} movable workloads")
    pos = case.demand.index()
    dem = case.demand.demand(data.demand, data.accounts)  # (W, R, T)
    ceiling = data.ceiling[a][:, None]
    limit = np.array([template.limits.get(r, np.inf) for r in data.resources])[:, None]
    u = float(data.unmet_weight[a])
    cost_of = {w.id: w.migration_cost for w in org.workloads}
    traffic = [(x, y, t) for (x, y), t in pair_traffic(org).items() if x in ids and y in ids]
    n = len(movable_groups)
    total = dem[[pos[w] for w in ids]].sum(axis=0)
    best = BruteResult(frozenset(), np.inf, 0.0, 2**n)
    for mask in range(2**n):
        moved = {w for i, g in enumerate(movable_groups) if mask >> i & 1 for w in g}
        d_s = dem[[pos[w] for w in moved]].sum(axis=0) if moved else np.zeros_like(total)
        stay = total - d_s
        unmet = np.maximum(stay - ceiling, 0).sum() + np.maximum(d_s - limit, 0).sum()
        cut = sum(t for x, y, t in traffic if (x in moved) != (y in moved))
        cost = u * unmet + sum(cost_of[w] for w in moved) + org.rules.cut_cost * cut
        if moved:
            cost += template.opening_cost
        if cost < best.cost - 1e-9:
            best = BruteResult(frozenset(moved), float(cost), float(cut), 2**n)
    return best
