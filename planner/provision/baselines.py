"""Provisioning baselines: the seed's greedy (Kernighan-Lin bisection) and a random split.

The seed's rule, per account in order: *if predicted demand exceeds what is available, open one
account from the matching template and move workloads by a min-cut bisection of the overloaded
account's workload graph*. Here:

- "available" is ``min(ceiling, quota0 + pool + borrow_limit)`` per resource (the same test that
  makes candidates in :func:`planner.formulation.provisioning.candidate_accounts`), with
  ``pool`` the parent's unallocated base capacity;
- the bisection is :func:`networkx.algorithms.community.kernighan_lin_bisection` (weighted,
  seeded) of the account's movable workloads, with each ``must_stay_together`` group
  contracted to one node (so the baseline keeps the rule; pinned workloads stay);
- of the two halves, the one moved is the one that leaves the least unmet demand (source
  within ``available``, new account within the template's limits), ties broken by less
  migration cost; the new account's quota is its moved peak, between the template's seed and
  limits;
- at most ``rules.max_new_accounts`` accounts open, one per overloaded account.

The random split replaces the bisection by moving must-stay-together groups in a seeded random
order until the account fits under ``available`` (or nothing is left).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from datetime import datetime

import networkx as nx
import numpy as np

from models import NeedProfile, NewAccount, Organisation
from planner.formulation import problem_data
from planner.formulation.core import FloatArray
from planner.formulation.data import ProblemData
from planner.formulation.provisioning import matching_template
from planner.provision.coarsen import pinned_workloads
from planner.provision.demand import WorkloadDemand
from planner.provision.extract import ProvisioningOutcome, outcome, pair_traffic


class _Account:
    """What a baseline needs to know about one overloaded account."""

    def __init__(self, data: ProblemData, wd: FloatArray, pos: Mapping[str, int], acc: str) -> None:
        i = data.accounts.index(acc)
        pool = np.maximum(data.capacity - data.reserve - data.quota0.sum(axis=0), 0.0)
        self.id = acc
        self.avail = np.minimum(data.ceiling[i], data.quota0[i] + pool + data.borrow_limit[i])
        self.total = data.demand[i]
        self.wd = wd
        self.pos = pos

    def moved_demand(self, moved: set[str]) -> FloatArray:
        if not moved:
            return np.zeros_like(self.total)
        return self.wd[[self.pos[w] for w in moved]].sum(axis=0)

    def unmet(self, moved: set[str], limits: FloatArray) -> float:
        d_s = self.moved_demand(moved)
        stay = self.total - d_s
        return float(
            np.maximum(stay - self.avail[:, None], 0).sum()
            + np.maximum(d_s - limits[:, None], 0).sum()
        )


def _provision(
    org: Organisation,
    profiles: Mapping[str, NeedProfile],
    shares: WorkloadDemand,
    start: datetime,
    choose: Callable[[list[tuple[str, ...]], nx.Graph, _Account, FloatArray], set[str]],
    label: str,
) -> ProvisioningOutcome:
    data = problem_data(org, profiles, start=start)
    wd = shares.demand(data.demand, data.accounts)
    pos = shares.index()
    pinned, groups, _ = pinned_workloads(org)
    traffic = pair_traffic(org)
    owner = {w.id: w.account for w in org.workloads}
    moves: dict[str, str] = {}
    accounts: list[NewAccount] = []
    moved_peak: dict[str, dict[str, float]] = {}
    unmet: dict[str, dict[str, float]] = {}
    budget = org.rules.max_new_accounts if org.rules.allow_new_accounts else 0
    for acc in data.accounts:
        template = matching_template(org, acc)
        if template is None or len(accounts) >= budget:
            continue
        info = _Account(data, wd, pos, acc)
        if not (info.total.max(axis=1) > info.avail + 1e-9).any():
            continue
        units = sorted(
            {tuple(sorted(g)) for g in groups.values() if not (g & pinned) and owner[min(g)] == acc}
        )
        if not units:
            continue
        graph = nx.Graph()
        unit_of = {w: u for u in units for w in u}
        graph.add_nodes_from(units)
        for (x, y), t in traffic.items():
            ux, uy = unit_of.get(x), unit_of.get(y)
            if ux is not None and uy is not None and ux != uy:
                prev = graph.get_edge_data(ux, uy, {"weight": 0.0})["weight"]
                graph.add_edge(ux, uy, weight=prev + t)
        limits = np.array([template.limits.get(r, math.inf) for r in data.resources])
        moved = choose(units, graph, info, limits)
        if not moved:
            continue
        new_id = f"{acc}+new1"
        peak = info.moved_demand(moved).max(axis=1)
        seed = np.array([template.seed.get(r, 0.0) for r in data.resources])
        quota = np.minimum(np.maximum(peak, seed), limits)
        accounts.append(
            NewAccount(
                id=new_id,
                name=f"{acc} ({template.application_profile}) #1",
                template=template.id,
                seed=dict(template.seed),
                quota={r: float(quota[j]) for j, r in enumerate(data.resources)},
            )
        )
        acc_peak = data.demand[data.accounts.index(acc)].max(axis=1)
        for w in sorted(moved):
            moves[w] = new_id
            moved_peak[w] = {
                r: float(shares.share[pos[w], j] * acc_peak[j])
                for j, r in enumerate(data.resources)
            }
        over = np.maximum(info.moved_demand(moved) - quota[:, None], 0).sum(axis=1)
        if (over > 1e-9).any():
            unmet[new_id] = {
                r: float(over[j]) for j, r in enumerate(data.resources) if over[j] > 1e-9
            }
    return outcome(org, moves, accounts, moved_peak, unmet=unmet, notes=[label])


def _flat(units: list[tuple[str, ...]] | set[tuple[str, ...]]) -> set[str]:
    return {w for u in units for w in u}


def kernighan_lin_provisioning(
    org: Organisation,
    profiles: Mapping[str, NeedProfile],
    shares: WorkloadDemand,
    *,
    start: datetime,
    seed: int = 0,
) -> ProvisioningOutcome:
    """The seed's greedy provisioning (module docstring): one account, a Kernighan-Lin half.

    Parameters
    ----------
    org, profiles, start
        As for the negotiators.
    shares
        Each workload's share of its account's demand.
    seed
        Seed of the bisection.
    """

    def choose(
        units: list[tuple[str, ...]], graph: nx.Graph, info: _Account, limits: FloatArray
    ) -> set[str]:
        if len(units) == 1:
            return _flat(units)
        a, b = nx.community.kernighan_lin_bisection(graph, weight="weight", seed=seed)
        halves = [_flat(a), _flat(b)]
        cost = {w.id: w.migration_cost for w in org.workloads}
        return min(halves, key=lambda h: (info.unmet(h, limits), sum(cost[w] for w in h)))

    return _provision(org, profiles, shares, start, choose, f"greedy: Kernighan-Lin (seed {seed})")


def random_provisioning(
    org: Organisation,
    profiles: Mapping[str, NeedProfile],
    shares: WorkloadDemand,
    *,
    start: datetime,
    seed: int = 0,
) -> ProvisioningOutcome:
    """Move random must-stay-together groups until the account fits (module docstring)."""
    rng = np.random.default_rng(seed)

    def choose(
        units: list[tuple[str, ...]], graph: nx.Graph, info: _Account, limits: FloatArray
    ) -> set[str]:
        moved: set[str] = set()
        for i in rng.permutation(len(units)):
            stay = info.total - info.moved_demand(moved)
            if (stay.max(axis=1) <= info.avail + 1e-9).all():
                break
            moved |= set(units[int(i)])
        return moved

    return _provision(org, profiles, shares, start, choose, f"random split (seed {seed})")


def placement_unmet(
    org: Organisation,
    profiles: Mapping[str, NeedProfile],
    shares: WorkloadDemand,
    result: ProvisioningOutcome,
    *,
    start: datetime,
) -> float:
    """Unit-periods of demand a placement leaves uncovered, judged the same way for every method.

    Each account with workloads moved out is served up to its ``available`` (as in the
    baselines); each account that keeps all its workloads too (0 when within it); each new
    account up to its quota.
    """
    data = problem_data(org, profiles, start=start)
    wd = shares.demand(data.demand, data.accounts)
    pos = shares.index()
    owner = {w.id: w.account for w in org.workloads}
    out_of: dict[str, set[str]] = {}
    for w in result.moves:
        out_of.setdefault(owner[w], set()).add(w)
    total = 0.0
    for acc in data.accounts:
        info = _Account(data, wd, pos, acc)
        out = out_of.get(acc, set())
        stay = info.total - info.moved_demand(out)
        total += float(np.maximum(stay - info.avail[:, None], 0).sum())
    for new in result.new_accounts:
        moved = {w for w, t in result.moves.items() if t == new.id}
        if not moved:
            continue
        info = _Account(data, wd, pos, owner[min(moved)])
        quota = np.array([new.quota.get(r, 0.0) for r in data.resources])
        total += float(np.maximum(info.moved_demand(moved) - quota[:, None], 0).sum())
    return total
