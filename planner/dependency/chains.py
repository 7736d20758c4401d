"""Critical resource chains and where predicted needs exceed what the parent can give."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from itertools import pairwise

import networkx as nx

from models import NeedProfile, Organisation
from planner.dependency.graph import critical_subgraph, upstream_priority

DEFAULT_MAX_CHAINS = 1000


@dataclass(frozen=True)
class CriticalChain:
    """A maximal path of critical dependency edges between accounts.

    Attributes
    ----------
    accounts
        The path, from the account that depends on the rest to the one everything depends on.
    priority
        Priority that depends on the chain: the sum of the priorities of its accounts and of
        every other account that reaches its first account (by any dependency edges).
    weight
        Sum of the critical edge weights (traffic) along the path.
    """

    accounts: tuple[str, ...]
    priority: float
    weight: float


def critical_chains(
    graph: nx.DiGraph, *, max_chains: int = DEFAULT_MAX_CHAINS
) -> list[CriticalChain]:
    """Every maximal path of critical edges, ranked by the priority that depends on it.

    A chain starts at an account no critical edge enters (or, for a cycle of critical edges that
    nothing critical enters, at the cycle's smallest id) and follows critical edges without
    revisiting an account until it can go no further. Chains of one account are not chains.

    Parameters
    ----------
    graph
        The account graph of :func:`planner.dependency.account_graph`.
    max_chains
        Stop after this many paths (their number can grow exponentially with the graph); a
        ``RuntimeWarning`` says so when the limit is hit.

    Returns
    -------
    list of CriticalChain
        Highest ``priority`` first, then longer chains, then by ids.
    """
    if not isinstance(max_chains, int) or max_chains < 1:
        raise ValueError(
            f"The 'max_chains' parameter of critical_chains must be an int >= 1. Got {max_chains!r} instead."
        )
    crit = critical_subgraph(graph)
    starts = sorted(n for n in crit if crit.in_degree(n) == 0 and crit.out_degree(n) > 0)
    for comp in nx.strongly_connected_components(crit):
        if len(comp) > 1 and not any(u not in comp for v in comp for u in crit.pred[v]):
            starts.append(min(comp))
    paths: list[tuple[str, ...]] = []
    truncated = False
    for start in starts:
        # depth-first over simple paths; record a path when it cannot be extended
        stack: list[tuple[tuple[str, ...], set[str]]] = [((start,), {start})]
        while stack and not truncated:
            path, on_path = stack.pop()
            nexts = [v for v in sorted(crit.succ[path[-1]], reverse=True) if v not in on_path]
            if not nexts:
                if len(path) > 1:
                    paths.append(path)
                    truncated = len(paths) >= max_chains
                continue
            stack.extend(((*path, v), on_path | {v}) for v in nexts)
        if truncated:
            warnings.warn(
                f"critical_chains stopped after max_chains={max_chains} paths; raise it to see all",
                RuntimeWarning,
                stacklevel=2,
            )
            break
    priority = {n: float(d.get("priority", 0.0)) for n, d in graph.nodes(data=True)}
    # priority(chain) = p(head) + sum of p over the head's ancestors + p of the other members that
    # are not among them (a member reaches the head only inside the head's cycle)
    upstream = upstream_priority(graph, priority) if paths else {}
    component = {
        n: i for i, comp in enumerate(nx.strongly_connected_components(graph)) for n in comp
    }
    chains = []
    for path in paths:
        head = path[0]
        total = priority[head] + upstream[head]
        total += sum(priority[m] for m in path[1:] if component[m] != component[head])
        weight = sum(
            float(graph.edges[u, v].get("critical_weight", 0.0)) for u, v in pairwise(path)
        )
        chains.append(CriticalChain(path, total, weight))
    return sorted(chains, key=lambda c: (-c.priority, -len(c.accounts), c.accounts))


@dataclass(frozen=True)
class Contention:
    """One resource and period where the accounts' predicted needs exceed the parent's capacity.

    Attributes
    ----------
    resource, period
        Where and when (``period`` is the period's start).
    demand
        Sum of the accounts' target demands in that period.
    capacity
        The parent's capacity of the resource.
    excess
        ``demand - capacity`` (> 0).
    short_accounts
        Accounts whose target exceeds their current quota then, most short first: the ones that
        need more and cannot all get it.
    chains
        Critical chains with at least one short account, in the ranking of ``chains``.
    """

    resource: str
    period: datetime
    demand: float
    capacity: float
    excess: float
    short_accounts: tuple[str, ...]
    chains: tuple[tuple[str, ...], ...]


def find_contention(
    org: Organisation,
    profiles: Mapping[str, NeedProfile] | Iterable[NeedProfile],
    *,
    chains: Iterable[CriticalChain] = (),
    tolerance: float = 1e-9,
) -> list[Contention]:
    """Per resource and period, where the predicted needs exceed what the parent can give.

    Parameters
    ----------
    org
        The organisation (the parent's ``capacity`` and the accounts' current ``quota``).
    profiles
        Need profiles (a list or an account -> profile mapping); each target demand counts in
        the period its ``periods`` entry names.
    chains
        Critical chains (from :func:`critical_chains`) to report as hit.
    tolerance
        Demand must exceed capacity by more than this to count.

    Returns
    -------
    list of Contention
        By resource (declaration order), then period.
    """
    items = list(profiles.values()) if isinstance(profiles, Mapping) else list(profiles)
    chain_list = list(chains)
    quota = {a.id: a.quota for a in org.accounts}
    out: list[Contention] = []
    for r in org.resource_names:
        total: dict[datetime, float] = {}
        short: dict[datetime, list[tuple[float, str]]] = {}
        for p in items:
            dem = p.demand.get(r)
            if dem is None:
                continue
            q = quota.get(p.account, {}).get(r, 0.0)
            for ts, v in zip(dem.periods, dem.target, strict=True):
                total[ts] = total.get(ts, 0.0) + v
                if v > q + tolerance:
                    short.setdefault(ts, []).append((v - q, p.account))
        cap = float(org.parent.capacity.get(r, 0.0))
        for ts in sorted(total):
            if total[ts] <= cap + tolerance:
                continue
            ranked = tuple(a for _, a in sorted(short.get(ts, []), key=lambda x: (-x[0], x[1])))
            hit = set(ranked)
            out.append(
                Contention(
                    resource=r,
                    period=ts,
                    demand=total[ts],
                    capacity=cap,
                    excess=total[ts] - cap,
                    short_accounts=ranked,
                    chains=tuple(c.accounts for c in chain_list if hit.intersection(c.accounts)),
                )
            )
    return out
