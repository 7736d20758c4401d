"""Coarsening: merge tightly coupled workloads into clusters so the program's binaries stay bounded.

Rules, per account (a cluster never spans two accounts, so a migration has one source):

1. **Pinned workloads** never move: a workload that is not ``migratable``, and every workload
   tied to one by ``rules.must_stay_together`` (directly or through a chain of pairs), and
   every group of such pairs that spans two accounts (a new account is split off one account,
   so it cannot reunite workloads of two).
2. **Must-stay-together groups** of movable workloads start as one cluster each (so the pair is
   never cut: it moves as one or stays as one).
3. **Heavy edges first**: while an account has more than ``max_clusters`` clusters, the two
   adjacent clusters joined by the heaviest total traffic merge, provided their combined
   *size* stays within ``size_cap``. Size is the cluster's largest share of the account's
   demand over the resources (``max_r share[c, r]``), so a cap of ``2 / max_clusters`` keeps
   clusters at about twice the average and the program can still fit the moved demand to
   within a few per cent of a template's limit.
4. When no adjacent pair fits under the cap, the two smallest clusters merge (adjacent pairs
   first, then any), until the bound holds.

The bound: each account keeps at most ``max_clusters`` movable clusters (rule 4 always merges),
so the program has at most
``max_clusters x candidates`` placement binaries per overloaded account. Edges inside a cluster
can no longer be cut and clusters cannot be split; ``benchmarks/provisioning.py`` measures what
that costs against the uncoarsened program.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from models import Organisation
from planner.formulation.core import FloatArray
from planner.provision.demand import WorkloadDemand

DEFAULT_MAX_CLUSTERS = 40


@dataclass(frozen=True)
class Cluster:
    """Workloads of one account that move together."""

    id: str
    account: str
    members: tuple[str, ...]
    migration_cost: float
    share: FloatArray  # (resources,) share of the account's demand


@dataclass
class Coarsening:
    """The coarse workload graph the program optimises over.

    Attributes
    ----------
    clusters
        Movable clusters (all accounts).
    pinned
        Workloads that never move.
    edges
        ``(i, j, traffic)``: clusters ``i < j`` of the same account joined by ``traffic``.
    fixed_traffic
        Per cluster: traffic to pinned workloads of its own account (cut whenever it moves).
    cluster_of
        Workload id -> cluster index (movable workloads only).
    internal_traffic
        Traffic on edges inside clusters (never cut: part of the coarsening's loss).
    notes
        What was pinned and why.
    shares
        The per-workload shares the clusters were built from.
    """

    clusters: list[Cluster]
    pinned: set[str]
    edges: list[tuple[int, int, float]]
    fixed_traffic: FloatArray
    cluster_of: dict[str, int]
    internal_traffic: float = 0.0
    notes: list[str] = field(default_factory=list)
    shares: WorkloadDemand | None = None

    def of_account(self, account: str) -> list[int]:
        """Indices of the clusters of ``account``."""
        return [i for i, c in enumerate(self.clusters) if c.account == account]


class _UnionFind:
    def __init__(self, items: Iterable[str]) -> None:
        self.parent = {x: x for x in items}

    def find(self, x: str) -> str:
        root = x
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[x] != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def pinned_workloads(org: Organisation) -> tuple[set[str], dict[str, set[str]], list[str]]:
    """Pinned workloads (rule 1), the must-stay-together groups, and notes saying why."""
    owner = {w.id: w.account for w in org.workloads}
    uf = _UnionFind(owner)
    for u, v in org.rules.must_stay_together:
        uf.union(u, v)
    groups: dict[str, set[str]] = defaultdict(set)
    for w in owner:
        groups[uf.find(w)].add(w)
    fixed = {w.id for w in org.workloads if not w.migratable}
    pinned: set[str] = set()
    notes: list[str] = []
    for members in groups.values():
        accounts = {owner[w] for w in members}
        if len(accounts) > 1 and len(members) > 1:
            pinned |= members
            notes.append(
                f"pinned {sorted(members)}: must stay together across accounts {sorted(accounts)}"
            )
        elif members & fixed:
            pinned |= members
            if len(members) > 1:
                notes.append(
                    f"pinned {sorted(members)}: must stay with non-migratable "
                    f"{sorted(members & fixed)}"
                )
    return pinned, dict(groups), notes


def coarsen(
    org: Organisation,
    shares: WorkloadDemand,
    *,
    max_clusters: int = DEFAULT_MAX_CLUSTERS,
    size_cap: float | None = None,
    accounts: Sequence[str] | None = None,
) -> Coarsening:
    """Cluster each account's movable workloads (module docstring rules).

    Parameters
    ----------
    org
        Workloads, edges and ``rules.must_stay_together``.
    shares
        Each workload's share of its account's demand (the size of a cluster).
    max_clusters
        Most movable clusters per account (the bound on binaries).
    size_cap
        Largest share of an account's demand a heavy-edge merge may create
        (default ``2 / max_clusters``).
    accounts
        Accounts whose workloads may move (default: all); the others' workloads are pinned.

    Returns
    -------
    Coarsening
        Clusters, the coarse edges and what was pinned.
    """
    if not isinstance(max_clusters, int) or max_clusters < 1:
        raise ValueError(
            f"The 'max_clusters' parameter of coarsen must be an int >= 1. Got {max_clusters!r} "
            "instead."
        )
    cap = 2.0 / max_clusters if size_cap is None else float(size_cap)
    if not cap > 0:
        raise ValueError(f"The 'size_cap' parameter of coarsen must be > 0. Got {size_cap!r}.")
    owner = {w.id: w.account for w in org.workloads}
    pinned, groups, notes = pinned_workloads(org)
    if accounts is not None:
        allowed = set(accounts)
        pinned |= {w for w, a in owner.items() if a not in allowed}
    pos = shares.index()
    traffic: dict[tuple[str, str], float] = defaultdict(float)
    for e in org.edges:
        if e.source in owner and e.target in owner and e.weight > 0:
            u, v = sorted((e.source, e.target))
            traffic[(u, v)] += e.weight
    # initial clusters: must-stay-together groups of movable workloads, keyed by a root id
    members: dict[str, list[str]] = {}
    for group in groups.values():
        movable = sorted(w for w in group if w not in pinned)
        if movable:
            members[movable[0]] = movable
    root_of = {w: r for r, ms in members.items() for w in ms}
    by_account: dict[str, list[str]] = defaultdict(list)
    for r in sorted(members):
        by_account[owner[r]].append(r)
    adj: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for (u, v), w in traffic.items():
        ru, rv = root_of.get(u), root_of.get(v)
        if ru is not None and rv is not None and ru != rv and owner[u] == owner[v]:
            adj[ru][rv] += w
            adj[rv][ru] += w

    def size_of(ms: list[str]) -> float:
        return float(shares.share[[pos[w] for w in ms]].sum(axis=0).max(initial=0.0))

    for roots in by_account.values():
        _agglomerate(roots, members, adj, size_of, max_clusters, cap)
    return assemble(org, shares, list(members.values()), pinned, notes)


def assemble(
    org: Organisation,
    shares: WorkloadDemand,
    groups: Sequence[Sequence[str]],
    pinned: set[str],
    notes: Sequence[str] = (),
) -> Coarsening:
    """The :class:`Coarsening` of a given partition of the movable workloads.

    Parameters
    ----------
    org
        The organisation.
    shares
        Each workload's share of its account's demand.
    groups
        Disjoint groups of movable workloads, each within one account.
    pinned
        The workloads that never move.
    notes
        Copied into the result.
    """
    owner = {w.id: w.account for w in org.workloads}
    cost = {w.id: w.migration_cost for w in org.workloads}
    pos = shares.index()
    by_account: dict[str, list[tuple[str, ...]]] = defaultdict(list)
    for g in groups:
        ms = tuple(sorted(g))
        accounts = {owner[w] for w in ms}
        if len(accounts) != 1:
            raise ValueError(
                f"a cluster must lie in one account; {ms[:5]} spans {sorted(accounts)}"
            )
        by_account[owner[ms[0]]].append(ms)
    clusters: list[Cluster] = []
    cluster_of: dict[str, int] = {}
    for acc in sorted(by_account):
        for k, ms in enumerate(sorted(by_account[acc])):
            idx = len(clusters)
            clusters.append(
                Cluster(
                    id=f"{acc}/c{k}",
                    account=acc,
                    members=ms,
                    migration_cost=float(sum(cost[w] for w in ms)),
                    share=shares.share[[pos[w] for w in ms]].sum(axis=0),
                )
            )
            cluster_of.update(dict.fromkeys(ms, idx))
    traffic: dict[tuple[str, str], float] = defaultdict(float)
    for e in org.edges:
        if e.source in owner and e.target in owner and e.weight > 0:
            u, v = sorted((e.source, e.target))
            traffic[(u, v)] += e.weight
    coarse: dict[tuple[int, int], float] = defaultdict(float)
    fixed = np.zeros(len(clusters))
    internal = 0.0
    for (u, v), w in traffic.items():
        if owner[u] != owner[v]:
            continue
        cu, cv = cluster_of.get(u), cluster_of.get(v)
        if cu is not None and cv is not None:
            if cu == cv:
                internal += w
            else:
                coarse[(min(cu, cv), max(cu, cv))] += w
        elif cu is not None:
            fixed[cu] += w
        elif cv is not None:
            fixed[cv] += w
    edges = [(i, j, w) for (i, j), w in sorted(coarse.items())]
    return Coarsening(
        clusters, set(pinned), edges, fixed, cluster_of, internal, list(notes), shares
    )


def refine(
    org: Organisation, coarse: Coarsening, expand: Iterable[int]
) -> tuple[Coarsening, list[int | None]]:
    """Split the clusters ``expand`` back into their must-stay-together groups.

    Returns
    -------
    tuple
        The finer coarsening, and for each of its clusters the index of the cluster of
        ``coarse`` it equals (``None`` for the pieces of an expanded cluster).
    """
    if coarse.shares is None:
        raise ValueError("refine needs a coarsening built with its shares (coarsen() keeps them)")
    split = set(expand)
    _, groups, _ = pinned_workloads(org)
    group_of = {w: tuple(sorted(g)) for g in groups.values() for w in g}
    parts: list[tuple[str, ...]] = []
    for i, c in enumerate(coarse.clusters):
        if i in split:
            parts.extend(sorted({group_of[w] for w in c.members}))
        else:
            parts.append(c.members)
    fine = assemble(org, coarse.shares, parts, coarse.pinned, coarse.notes)
    whole = {c.members: i for i, c in enumerate(coarse.clusters) if i not in split}
    return fine, [whole.get(c.members) for c in fine.clusters]


def _agglomerate(
    roots: list[str],
    members: dict[str, list[str]],
    adj: dict[str, dict[str, float]],
    size_of: Callable[[list[str]], float],
    max_clusters: int,
    cap: float,
) -> None:
    """Merge clusters of one account in place until at most ``max_clusters`` remain."""
    alive = set(roots)
    size = {r: size_of(members[r]) for r in roots}
    heap = [(-w, u, v) for u in roots for v, w in adj[u].items() if u < v]
    heapq.heapify(heap)

    def merge(u: str, v: str) -> str:
        keep, gone = min(u, v), max(u, v)
        members[keep].extend(members.pop(gone))
        size[keep] = size_of(members[keep])
        alive.discard(gone)
        for x, w in adj.pop(gone, {}).items():
            del adj[x][gone]
            if x != keep:
                adj[keep][x] += w
                adj[x][keep] += w
        adj[keep].pop(keep, None)
        for x, w in adj[keep].items():
            heapq.heappush(heap, (-w, min(keep, x), max(keep, x)))
        return keep

    while len(alive) > max_clusters and heap:
        negw, u, v = heapq.heappop(heap)
        if u not in alive or v not in alive or adj[u].get(v) != -negw:
            continue
        if size[u] + size[v] <= cap + 1e-12:
            merge(u, v)
    while len(alive) > max_clusters:
        small = sorted(alive, key=lambda r: (size[r], r))
        u = small[0]
        nbrs = [x for x in adj[u] if x in alive]
        v = min(nbrs, key=lambda r: (size[r], r)) if nbrs else small[1]
        merge(u, v)
