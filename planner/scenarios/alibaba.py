"""Workload dependency graphs shaped like real Alibaba service topologies.

Source: the call-graph patterns of 2,004 online services of the Alibaba microservice trace 2021
(Luo et al., "Characterizing Microservice Dependency and Performance: Alibaba Trace Analysis",
SoCC 2021), file ``alibaba_callgraph_patterns.jsonl.gz`` of ``../shared/data``.

Rules
-----
- **One service's topology** is the union of all its call-graph patterns. Its microservices are
  the workloads (id ``<service>/<microservice>``, for example ``S_142190078/MS_normal+2.1``);
  ``USER`` (the outside caller) is dropped, and so are self-calls.
- **Edge weight** ``= sum over the patterns of calls per request x pattern count`` (``num``): the
  calls seen on that edge. ``weight="per_request"`` divides by the service's total pattern count
  instead: the mean calls one user request makes on that edge. The ``rpctype`` of an edge is
  the one of its heaviest pattern.
- **Critical edges**: calls to state, i.e. ``rpctype`` ``db`` or ``mc`` or a target labelled
  ``database`` or ``Memcached`` (a service cut from its cache or database degrades at once).
- **Choosing services for ``n`` workloads** (seeded): one *anchor* service of size between
  ``n/2`` and ``n`` when one exists, then the other services in a seeded order, each taken when
  it fits in what is left; when nothing fits exactly, the last service is trimmed to its first
  nodes in breadth-first order from its entry (a connected part). Services stay separate
  components: the patterns share no microservice across services. Up to about 25,000 workloads.
- **Order and accounts**: nodes are listed service by service in breadth-first order from the
  entry (the callees of ``USER``, by name) and split into ``n_accounts`` contiguous, equal blocks
  ``acct-000``, ``acct-001``, ...
- **Migration cost** by role: ``database`` 5, ``Memcached`` 2, others 1; all migratable.
"""

from __future__ import annotations

import gzip
import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from models import DependencyEdge, Workload
from planner.scenarios._traces import ALIBABA_FILE, trace_file

STATEFUL_LABELS = frozenset({"database", "Memcached"})
CRITICAL_RPC = frozenset({"db", "mc"})
MIGRATION_COST = {"database": 5.0, "Memcached": 2.0}


@dataclass(frozen=True)
class ServiceGraph:
    """One service's topology: nodes in breadth-first order, labels, and aggregated edges."""

    service: str
    order: tuple[str, ...]
    labels: dict[str, str]
    edges: dict[tuple[str, str], tuple[float, str]]  # (source, target) -> (calls seen, rpctype)
    requests: float  # sum of pattern counts


def _bfs(
    nodes: set[str], edges: dict[tuple[str, str], tuple[float, str]], entry: list[str]
) -> tuple[str, ...]:
    """Nodes in breadth-first order from the entry nodes, then from any node not reached."""
    succ: dict[str, list[str]] = defaultdict(list)
    for s, t in sorted(edges):
        succ[s].append(t)
    order: list[str] = []
    seen: set[str] = set()
    for root in [*sorted(entry), *sorted(nodes)]:
        if root in seen:
            continue
        seen.add(root)
        queue = [root]
        while queue:
            node = queue.pop(0)
            order.append(node)
            for nxt in succ.get(node, []):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
    return tuple(order)


@lru_cache(maxsize=2)
def service_graphs(path: Path) -> dict[str, ServiceGraph]:
    """Every service of the pattern file with at least two microservices and one call."""
    labels: dict[str, dict[str, str]] = defaultdict(dict)
    calls: dict[str, dict[tuple[str, str], dict[str, float]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(float))
    )
    entries: dict[str, set[str]] = defaultdict(set)
    requests: dict[str, float] = defaultdict(float)
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            svc, num = rec["service"], float(rec["num"])
            requests[svc] += num
            for n in rec["nodes"]:
                if n["node"] != "USER":
                    labels[svc][n["node"]] = n["label"]
            for e in rec["edges"]:
                s, t = e["source"], e["target"]
                if s == t or t == "USER":
                    continue
                if s == "USER":
                    entries[svc].add(t)
                    continue
                calls[svc][(s, t)][e["rpctype"]] += float(e["weight"]) * num
    out = {}
    for svc in sorted(labels):
        nodes = set(labels[svc])
        edges = {
            key: (sum(by_rpc.values()), max(sorted(by_rpc), key=lambda k: by_rpc[k]))
            for key, by_rpc in calls[svc].items()
            if key[0] in nodes and key[1] in nodes
        }
        if len(nodes) < 2 or not edges:
            continue
        order = _bfs(nodes, edges, sorted(entries[svc] & nodes))
        out[svc] = ServiceGraph(svc, order, dict(labels[svc]), edges, requests[svc])
    return out


def _choose(graphs: dict[str, ServiceGraph], n: int, seed: int) -> list[tuple[str, int]]:
    """(service, how many of its nodes) adding up to ``n`` by the rule of the module docstring."""
    names = sorted(graphs)
    sizes = {s: len(graphs[s].order) for s in names}
    total = sum(sizes.values())
    if not isinstance(n, int) or not 2 <= n <= total:
        raise ValueError(
            f"The 'n_workloads' parameter must be an int between 2 and {total}. Got {n!r} instead."
        )
    rng = np.random.default_rng([seed, 4])
    anchors = [s for s in names if n / 2 <= sizes[s] <= n]
    chosen: list[tuple[str, int]] = []
    left = n
    if anchors:
        a = anchors[int(rng.integers(len(anchors)))]
        chosen.append((a, sizes[a]))
        left -= sizes[a]
    taken = {s for s, _ in chosen}
    rest = [names[i] for i in rng.permutation(len(names)) if names[i] not in taken]
    for s in rest:
        if left == 0:
            break
        if sizes[s] <= left:
            chosen.append((s, sizes[s]))
            taken.add(s)
            left -= sizes[s]
    if left > 0:
        bigger = sorted(
            (s for s in rest if s not in taken and sizes[s] > left), key=sizes.__getitem__
        )
        chosen.append((bigger[0], left))
    return chosen


def alibaba_graph_tables(
    data_dir: Path | str,
    *,
    n_workloads: int,
    seed: int = 0,
    n_accounts: int = 1,
    weight: Literal["count", "per_request"] = "count",
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nodes and edges of a graph of ``n_workloads`` real microservices, as tables.

    Parameters
    ----------
    data_dir
        Folder holding ``alibaba_callgraph_patterns.jsonl.gz`` (``../shared/data``).
    n_workloads
        Number of workloads (2 to about 25,000).
    seed
        Chooses the services (module docstring).
    n_accounts
        Number of contiguous blocks the nodes are owned by.
    weight
        ``"count"``: calls per request x pattern count; ``"per_request"``: mean calls per user
        request of the service.

    Returns
    -------
    tuple of DataFrame
        ``nodes`` (id, account, service, microservice, label, migration_cost) and ``edges``
        (source, target, weight, critical, rpctype, service).
    """
    if weight not in ("count", "per_request"):
        raise ValueError(
            f"The 'weight' parameter must be 'count' or 'per_request'. Got {weight!r} instead."
        )
    if not isinstance(n_accounts, int) or not 1 <= n_accounts <= n_workloads:
        raise ValueError(
            f"The 'n_accounts' parameter must be an int between 1 and n_workloads. "
            f"Got {n_accounts!r} instead."
        )
    graphs = service_graphs(trace_file(data_dir, ALIBABA_FILE))
    node_rows: list[tuple[str, str, str, str]] = []
    edge_rows: list[tuple[str, str, float, bool, str, str]] = []
    for svc, k in _choose(graphs, n_workloads, seed):
        g = graphs[svc]
        keep = set(g.order[:k])
        node_rows.extend((f"{svc}/{m}", svc, m, g.labels[m]) for m in g.order[:k])
        scale = 1.0 / g.requests if weight == "per_request" else 1.0
        for (s, t), (w, rpc) in sorted(g.edges.items()):
            if s in keep and t in keep:
                critical = rpc in CRITICAL_RPC or g.labels[t] in STATEFUL_LABELS
                edge_rows.append((f"{svc}/{s}", f"{svc}/{t}", w * scale, critical, rpc, svc))
    nodes = pd.DataFrame(node_rows, columns=["id", "service", "microservice", "label"])
    blocks = np.array_split(np.arange(len(nodes)), n_accounts)
    account = np.empty(len(nodes), dtype=object)
    for i, idx in enumerate(blocks):
        account[idx] = f"acct-{i:03d}"
    nodes.insert(1, "account", account)
    nodes["migration_cost"] = nodes["label"].map(MIGRATION_COST).fillna(1.0)
    edges = pd.DataFrame(
        edge_rows, columns=["source", "target", "weight", "critical", "rpctype", "service"]
    )
    return nodes, edges


def alibaba_workload_graph(
    data_dir: Path | str,
    *,
    n_workloads: int,
    seed: int = 0,
    n_accounts: int = 1,
    weight: Literal["count", "per_request"] = "count",
) -> tuple[list[Workload], list[DependencyEdge]]:
    """A workload graph of ``n_workloads`` real microservices for provisioning benchmarks.

    The same graph as :func:`alibaba_graph_tables`, as models: each workload's ``description``
    names its service and role (``"S_142190078 MS_normal+2.1 (normal)"``); the edges' rpctype
    is in the tables only.

    Examples
    --------
    >>> workloads, edges = alibaba_workload_graph("../shared/data", n_workloads=40, seed=1)
    ... # doctest: +SKIP
    """
    nodes, edges = alibaba_graph_tables(
        data_dir, n_workloads=n_workloads, seed=seed, n_accounts=n_accounts, weight=weight
    )
    return tables_to_models(nodes, edges)


def tables_to_models(
    nodes: pd.DataFrame, edges: pd.DataFrame
) -> tuple[list[Workload], list[DependencyEdge]]:
    """Workloads and edges as models from the tables of :func:`alibaba_graph_tables`."""
    workloads = [
        Workload(
            id=str(wid),
            account=str(acc),
            migratable=True,
            migration_cost=float(cost),
            description=f"{svc} {ms} ({label})",
        )
        for wid, acc, svc, ms, label, cost in zip(
            nodes["id"].tolist(),
            nodes["account"].tolist(),
            nodes["service"].tolist(),
            nodes["microservice"].tolist(),
            nodes["label"].tolist(),
            nodes["migration_cost"].tolist(),
            strict=True,
        )
    ]
    deps = [
        DependencyEdge(source=str(s), target=str(t), weight=float(w), critical=bool(c))
        for s, t, w, c in zip(
            edges["source"].tolist(),
            edges["target"].tolist(),
            edges["weight"].tolist(),
            edges["critical"].tolist(),
            strict=True,
        )
    ]
    return workloads, deps


def map_onto_workloads(
    nodes: pd.DataFrame,
    edges: pd.DataFrame,
    targets: Sequence[str],
    stateful_targets: Sequence[str] = (),
) -> pd.DataFrame:
    """Rename a graph's nodes to existing workload ids (for example Bitbrains VMs).

    Rule: the ``database`` and ``Memcached`` nodes, in graph order, take the ``stateful_targets``
    first (say the VMs of datastore accounts), in the given order; every other node takes the
    next unused target in ``targets`` order, so a service's call chain lands on neighbouring
    workloads. ``len(nodes)`` must equal ``len(targets)``.

    Returns
    -------
    DataFrame
        ``edges`` with ``source`` and ``target`` renamed (other columns kept).
    """
    if len(nodes) != len(targets):
        raise ValueError(
            f"The graph has {len(nodes)} nodes for {len(targets)} workloads; build it with "
            f"n_workloads={len(targets)}."
        )
    unknown = sorted(set(stateful_targets) - set(targets))
    if unknown:
        raise ValueError(f"stateful_targets names workloads not in targets: {unknown[:5]}")
    mapping: dict[str, str] = {}
    used: set[str] = set()
    stateful = iter(stateful_targets)
    for node_id, label in zip(nodes["id"], nodes["label"], strict=True):
        if label in STATEFUL_LABELS:
            target = next(stateful, None)
            if target is not None:
                mapping[node_id] = target
                used.add(target)
    free = iter(t for t in targets if t not in used)
    for node_id in nodes["id"]:
        if node_id not in mapping:
            mapping[node_id] = next(free)
    out = edges.copy()
    out["source"] = out["source"].map(mapping)
    out["target"] = out["target"].map(mapping)
    return out
