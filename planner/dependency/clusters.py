"""Workload clusters: tightly coupled groups of workloads that should move together."""

from __future__ import annotations

import networkx as nx

from models import Organisation


def workload_graph(org: Organisation, *, min_weight: float = 0.0) -> nx.Graph:
    """Undirected workload graph: one node per workload, edges weighted by summed traffic.

    Only edges between two workloads count (edges naming an account are not workload coupling).
    Both directions of a pair are summed; pairs whose total weight is 0 or below ``min_weight``
    are left out. Nodes carry their owning ``account``.
    """
    if not min_weight >= 0:
        raise ValueError(
            f"The 'min_weight' parameter of workload_graph must be >= 0. Got {min_weight!r} instead."
        )
    graph = nx.Graph()
    for w in sorted(org.workloads, key=lambda w: w.id):
        graph.add_node(w.id, account=w.account)
    total: dict[tuple[str, str], float] = {}
    for e in org.edges:
        if e.source in graph and e.target in graph:
            key = (min(e.source, e.target), max(e.source, e.target))
            total[key] = total.get(key, 0.0) + e.weight
    for (u, v), weight in sorted(total.items()):
        if weight > 0 and weight >= min_weight:
            graph.add_edge(u, v, weight=weight)
    return graph


def workload_clusters(
    org: Organisation,
    *,
    min_weight: float = 0.0,
    resolution: float = 1.0,
    seed: int = 0,
    within_account: bool = True,
    max_size: int | None = None,
) -> list[set[str]]:
    """Partition the workloads into tightly coupled clusters (for coarsening migrations).

    1. Louvain communities (``networkx.community.louvain_communities``, weighted, with
       ``seed``, so the result is deterministic) of :func:`workload_graph` (edges of at least
       ``min_weight``: raise it to cluster on heavy edges only);
    2. with ``within_account``, each community is split by owning account, so that a cluster
       moves out of one account (a migration has one source);
    3. with ``max_size``, a larger cluster is clustered again on its own edges at twice the
       resolution, recursively; one that does not split is cut into consecutive pieces of its
       breadth-first order (neighbours stay together as far as possible);
    4. clusters holding the two ends of a ``rules.must_stay_together`` pair are merged (that
       rule wins over ``within_account``).

    Parameters
    ----------
    org
        The organisation (workloads, edges, rules).
    min_weight
        Edges lighter than this are ignored.
    resolution
        Louvain resolution: above 1 gives more, smaller clusters.
    seed
        Random seed of the Louvain method.
    within_account
        Split communities that span accounts.
    max_size
        Most workloads in a cluster (None: no limit). ``must_stay_together`` may exceed it.

    Returns
    -------
    list of set of str
        Every workload in exactly one cluster (isolated workloads alone); largest clusters
        first, ties by their smallest id. Empty when the organisation has no workloads.
    """
    if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
        raise ValueError(
            f"The 'max_size' parameter of workload_clusters must be an int >= 1 or None. Got {max_size!r} instead."
        )
    if not resolution > 0:
        raise ValueError(
            f"The 'resolution' parameter of workload_clusters must be > 0. Got {resolution!r} instead."
        )
    graph = workload_graph(org, min_weight=min_weight)
    if graph.number_of_nodes() == 0:
        return []
    if graph.number_of_edges() == 0:
        communities: list[set[str]] = [{n} for n in graph.nodes]
    else:
        communities = [
            set(c)
            for c in nx.community.louvain_communities(
                graph, weight="weight", resolution=resolution, seed=seed
            )
        ]
    if within_account:
        split: list[set[str]] = []
        for c in communities:
            by_account: dict[str, set[str]] = {}
            for w in c:
                by_account.setdefault(graph.nodes[w]["account"], set()).add(w)
            split.extend(by_account.values())
        communities = split
    if max_size is not None:
        communities = [
            part
            for c in communities
            for part in _split(graph, c, max_size=max_size, resolution=resolution, seed=seed)
        ]
    # union-find over clusters for the must-stay-together pairs
    cluster_of = {w: i for i, c in enumerate(communities) for w in c}
    parent = list(range(len(communities)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for u, v in org.rules.must_stay_together:
        if u in cluster_of and v in cluster_of:
            a, b = find(cluster_of[u]), find(cluster_of[v])
            if a != b:
                parent[max(a, b)] = min(a, b)
    merged: dict[int, set[str]] = {}
    for i, c in enumerate(communities):
        merged.setdefault(find(i), set()).update(c)
    return sorted(merged.values(), key=lambda c: (-len(c), min(c)))


def _split(
    graph: nx.Graph, nodes: set[str], *, max_size: int, resolution: float, seed: int
) -> list[set[str]]:
    """Cut ``nodes`` into clusters of at most ``max_size`` (see :func:`workload_clusters`)."""
    if len(nodes) <= max_size:
        return [nodes]
    sub = graph.subgraph(sorted(nodes))
    parts: list[set[str]] = []
    if sub.number_of_edges() > 0 and resolution < 1e6:
        parts = [
            set(c)
            for c in nx.community.louvain_communities(
                sub, weight="weight", resolution=2 * resolution, seed=seed
            )
        ]
    if len(parts) > 1:
        return [
            piece
            for p in parts
            for piece in _split(graph, p, max_size=max_size, resolution=2 * resolution, seed=seed)
        ]
    order: list[str] = []
    seen: set[str] = set()
    for root in sorted(nodes):
        if root not in seen:
            component = list(nx.bfs_tree(sub, root))
            seen.update(component)
            order.extend(component)
    return [set(order[i : i + max_size]) for i in range(0, len(order), max_size)]
