"""Dependency analysis: the account graph, cycles, critical chains, criticality, contention, clusters.

Edges read "source depends on target". Typical use::

    analysis = analyse(org)
    analysis.criticality["db"], analysis.chains[0].accounts, analysis.cycles
    find_contention(org, profiles, chains=analysis.chains)
    workload_clusters(org, min_weight=10.0)
"""

from __future__ import annotations

from dataclasses import dataclass

import networkx as nx

from models import Organisation
from planner.dependency.chains import (
    DEFAULT_MAX_CHAINS,
    Contention,
    CriticalChain,
    critical_chains,
    find_contention,
)
from planner.dependency.clusters import workload_clusters, workload_graph
from planner.dependency.graph import (
    DEFAULT_CRITICAL_WEIGHT,
    account_graph,
    critical_dependencies,
    critical_subgraph,
    criticality,
    criticality_raw,
    dependency_cycles,
    upstream_priority,
)


@dataclass(frozen=True)
class DependencyAnalysis:
    """Everything :func:`analyse` derives from an organisation's dependency graph.

    Attributes
    ----------
    graph
        The account graph (:func:`account_graph`).
    cycles
        Groups of mutually dependent accounts (:func:`dependency_cycles`).
    chains
        Critical chains, highest depending priority first (:func:`critical_chains`).
    criticality
        Normalised criticality per account in [0, 1] (:func:`criticality`).
    criticality_raw
        The un-normalised scores (priority that depends on each account).
    critical_dependencies
        Per account, the accounts it reaches through critical edges.
    """

    graph: nx.DiGraph
    cycles: list[list[str]]
    chains: list[CriticalChain]
    criticality: dict[str, float]
    criticality_raw: dict[str, float]
    critical_dependencies: dict[str, list[str]]


def analyse(
    org: Organisation,
    *,
    critical_weight: float = DEFAULT_CRITICAL_WEIGHT,
    max_chains: int = DEFAULT_MAX_CHAINS,
    with_chains: bool = True,
) -> DependencyAnalysis:
    """Build the account graph of ``org`` and analyse it (see :class:`DependencyAnalysis`).

    ``with_chains=False`` skips enumerating the critical chains (``chains`` is then empty):
    need profiles only use the criticality and the critical dependencies.
    """
    graph = account_graph(org)
    raw = criticality_raw(graph, critical_weight=critical_weight)
    top = max(raw.values(), default=0.0)
    return DependencyAnalysis(
        graph=graph,
        cycles=dependency_cycles(graph),
        chains=critical_chains(graph, max_chains=max_chains) if with_chains else [],
        criticality={a: (v / top if top > 0 else 0.0) for a, v in raw.items()},
        criticality_raw=raw,
        critical_dependencies={a: critical_dependencies(graph, a) for a in graph.nodes},
    )


__all__ = [
    "DEFAULT_CRITICAL_WEIGHT",
    "DEFAULT_MAX_CHAINS",
    "Contention",
    "CriticalChain",
    "DependencyAnalysis",
    "account_graph",
    "analyse",
    "critical_chains",
    "critical_dependencies",
    "critical_subgraph",
    "criticality",
    "criticality_raw",
    "dependency_cycles",
    "find_contention",
    "upstream_priority",
    "workload_clusters",
    "workload_graph",
]
