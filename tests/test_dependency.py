"""Dependency analysis on hand-built graphs; expected values are computed by hand in comments."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from models import NeedProfile, Organisation, ResourceDemand
from planner.dependency import (
    account_graph,
    analyse,
    critical_chains,
    critical_dependencies,
    criticality,
    criticality_raw,
    dependency_cycles,
    find_contention,
    workload_clusters,
)


def make_org(
    priorities: dict[str, int],
    edges: list[tuple[str, str, float, bool]] = (),  # type: ignore[assignment]
    *,
    workloads: dict[str, str] | None = None,
    dependencies: dict[str, list[str]] | None = None,
    quota: dict[str, float] | None = None,
    capacity: float = 100.0,
    together: list[tuple[str, str]] | None = None,
) -> Organisation:
    data: dict[str, Any] = {
        "resources": [{"name": "cpu"}],
        "parent": {"capacity": {"cpu": capacity}},
        "accounts": [
            {
                "id": a,
                "priority": p,
                "dependencies": (dependencies or {}).get(a, []),
                "quota": {"cpu": (quota or {}).get(a, 0.0)},
            }
            for a, p in priorities.items()
        ],
        "workloads": [{"id": w, "account": a} for w, a in (workloads or {}).items()],
        "edges": [{"source": s, "target": t, "weight": w, "critical": c} for s, t, w, c in edges],
        "rules": {"must_stay_together": together or []},
    }
    return Organisation.model_validate(data)


def chain_org() -> Organisation:
    # A -> B -> C, all critical
    return make_org({"A": 10, "B": 5, "C": 1}, [("A", "B", 2, True), ("B", "C", 3, True)])


def diamond_org() -> Organisation:
    # A -> B -> D critical, C -> D critical, A -> C not critical
    return make_org(
        {"A": 8, "B": 4, "C": 2, "D": 1},
        [("A", "B", 1, True), ("A", "C", 1, False), ("B", "D", 1, True), ("C", "D", 1, True)],
    )


def cycle_org() -> Organisation:
    # A -> B -> C -> A critical; D -> A not critical
    return make_org(
        {"A": 1, "B": 2, "C": 3, "D": 4},
        [("A", "B", 1, True), ("B", "C", 1, True), ("C", "A", 1, True), ("D", "A", 1, False)],
    )


def test_workload_edges_lift_to_accounts() -> None:
    org = make_org(
        {"A": 1, "B": 1, "C": 1},
        [("w1", "w3", 2, True), ("w2", "w3", 3, False), ("w1", "w2", 5, True)],
        workloads={"w1": "A", "w2": "A", "w3": "B"},
        dependencies={"A": ["C"]},
    )
    g = account_graph(org)
    assert sorted(g.edges) == [("A", "B"), ("A", "C")]  # w1 -> w2 stays inside A: dropped
    ab = g.edges["A", "B"]
    assert (ab["weight"], ab["critical"], ab["critical_weight"], ab["edges"]) == (5, True, 2, 2)
    ac = g.edges["A", "C"]
    assert (ac["weight"], ac["critical"]) == (1.0, False)


def test_chain() -> None:
    g = account_graph(chain_org())
    # raw(A) = 10; raw(B) = 5 + 10 + (2-1)*10 = 25; raw(C) = 1 + 15 + 15 = 31
    assert criticality_raw(g) == pytest.approx({"A": 10, "B": 25, "C": 31})
    assert criticality(g) == pytest.approx({"A": 10 / 31, "B": 25 / 31, "C": 1.0})
    chains = critical_chains(g)
    assert [(c.accounts, c.priority, c.weight) for c in chains] == [(("A", "B", "C"), 16, 5)]
    assert dependency_cycles(g) == []
    assert critical_dependencies(g, "A") == ["B", "C"]
    assert critical_dependencies(g, "C") == []


def test_critical_weight_changes_scores() -> None:
    g = account_graph(chain_org())
    # kappa = 1: raw(C) = 1 + 15 = 16, raw(B) = 5 + 10 = 15
    assert criticality_raw(g, critical_weight=1.0) == pytest.approx({"A": 10, "B": 15, "C": 16})
    with pytest.raises(ValueError, match="critical_weight"):
        criticality_raw(g, critical_weight=0.5)


def test_diamond() -> None:
    g = account_graph(diamond_org())
    # raw(D) = 1 + (8+4+2) + (8+4+2) = 29; raw(C) = 2 + 8 (A -> C not critical) = 10
    # raw(B) = 4 + 8 + 8 = 20; raw(A) = 8
    assert criticality_raw(g) == pytest.approx({"A": 8, "B": 20, "C": 10, "D": 29})
    chains = critical_chains(g)
    # (A, B, D): 8+4+1 = 13; (C, D): 2+1 plus A upstream of C = 11
    assert [(c.accounts, c.priority) for c in chains] == [(("A", "B", "D"), 13), (("C", "D"), 11)]
    assert critical_dependencies(g, "A") == ["B", "D"]  # A -> C is not critical
    assert critical_dependencies(g, "C") == ["D"]


def test_cycle() -> None:
    g = account_graph(cycle_org())
    assert dependency_cycles(g) == [["A", "B", "C"]]
    # raw(A) = 1 + (2+3+4) + (2+3) = 15; raw(B) = 2 + (1+3+4) + (1+3) = 14
    # raw(C) = 3 + (1+2+4) + (1+2) = 13; raw(D) = 4
    assert criticality_raw(g) == pytest.approx({"A": 15, "B": 14, "C": 13, "D": 4})
    assert criticality(g)["A"] == pytest.approx(1.0)
    chains = critical_chains(g)
    # the cycle has no critical entry: it starts at its smallest id; upstream of A: B, C, D
    assert [(c.accounts, c.priority) for c in chains] == [(("A", "B", "C"), 10)]
    assert critical_dependencies(g, "B") == ["A", "C"]


def test_max_chains_warns() -> None:
    g = account_graph(diamond_org())
    with pytest.warns(RuntimeWarning, match="max_chains"):
        assert len(critical_chains(g, max_chains=1)) == 1
    with pytest.raises(ValueError, match="max_chains"):
        critical_chains(g, max_chains=0)


def test_all_zero_priorities() -> None:
    g = account_graph(make_org({"A": 0, "B": 0}, [("A", "B", 1, True)]))
    assert criticality(g) == {"A": 0.0, "B": 0.0}


def _profile(account: str, values: list[float], start: datetime) -> NeedProfile:
    periods = [start + timedelta(hours=i) for i in range(len(values))]
    return NeedProfile(
        account=account,
        demand={"cpu": ResourceDemand(resource="cpu", periods=periods, target=values)},
    )


def test_contention() -> None:
    org = make_org(
        {"A": 1, "B": 1, "X": 5, "Y": 5},
        [("X", "A", 1, True), ("Y", "B", 1, True)],
        quota={"A": 4, "B": 5},
        capacity=10,
    )
    t0 = datetime(2024, 1, 1)
    profiles = [_profile("A", [3, 6, 5], t0), _profile("B", [5, 5, 6], t0)]
    chains = analyse(org).chains
    found = find_contention(org, profiles, chains=chains)
    # totals 8, 11, 11 against capacity 10: periods 1 and 2
    assert [(c.period, c.demand, c.excess) for c in found] == [
        (t0 + timedelta(hours=1), 11, 1),
        (t0 + timedelta(hours=2), 11, 1),
    ]
    # period 1: A is 2 over its quota, B exactly at it; period 2: both 1 over
    assert found[0].short_accounts == ("A",)
    assert found[0].chains == (("X", "A"),)
    assert found[1].short_accounts == ("A", "B")
    assert set(found[1].chains) == {("X", "A"), ("Y", "B")}
    assert (
        find_contention(
            org.model_copy(
                update={"parent": org.parent.model_copy(update={"capacity": {"cpu": 11}})}
            ),
            profiles,
        )
        == []
    )


def _two_communities(**kw: Any) -> Organisation:
    left, right = ["w1", "w2", "w3", "w4"], ["w5", "w6", "w7", "w8"]
    edges = [(u, v, 10.0, False) for group in (left, right) for u in group for v in group if u < v]
    edges.append(("w4", "w5", 1.0, False))
    accounts = kw.pop("accounts", dict.fromkeys([*left, *right, "w9"], "A"))
    return make_org({"A": 1, "B": 1}, edges, workloads=accounts, **kw)


def test_clusters_two_communities() -> None:
    org = _two_communities()
    clusters = workload_clusters(org, seed=3)
    assert clusters == [{"w1", "w2", "w3", "w4"}, {"w5", "w6", "w7", "w8"}, {"w9"}]
    assert workload_clusters(org, seed=3) == clusters  # deterministic
    assert workload_clusters(org, min_weight=5.0) == clusters  # bridge dropped


def test_clusters_split_by_account_and_kept_together() -> None:
    owner = {w: "A" for w in ["w1", "w2", "w3", "w4", "w5", "w6", "w7", "w8", "w9"]}
    owner["w1"] = owner["w2"] = "B"
    org = _two_communities(accounts=owner)
    assert workload_clusters(org) == [
        {"w5", "w6", "w7", "w8"},
        {"w1", "w2"},
        {"w3", "w4"},
        {"w9"},
    ]
    assert workload_clusters(org, within_account=False)[0] == {"w1", "w2", "w3", "w4"}
    org2 = _two_communities(together=[("w1", "w9")])
    assert workload_clusters(org2) == [{"w1", "w2", "w3", "w4", "w9"}, {"w5", "w6", "w7", "w8"}]


def test_clusters_max_size() -> None:
    org = _two_communities()
    clusters = workload_clusters(org, max_size=2)
    assert all(len(c) <= 2 for c in clusters)
    assert set().union(*clusters) == {f"w{i}" for i in range(1, 10)}
    assert sum(len(c) for c in clusters) == 9
    # pieces never mix the two communities
    for c in clusters:
        assert c <= {"w1", "w2", "w3", "w4"} or c <= {"w5", "w6", "w7", "w8"} or c == {"w9"}
    with pytest.raises(ValueError, match="max_size"):
        workload_clusters(org, max_size=0)


def test_no_workloads() -> None:
    assert workload_clusters(chain_org()) == []


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_upstream_priority_matches_ancestor_sums(seed: int) -> None:
    import networkx as nx

    from planner.dependency import upstream_priority

    graph = nx.gnp_random_graph(40, 0.06, seed=seed, directed=True)  # cycles, several bytes
    rng = np.random.default_rng(seed)
    prio = {n: float(rng.integers(0, 10)) for n in graph.nodes}
    got = upstream_priority(graph, prio)
    for n in graph.nodes:
        assert got[n] == pytest.approx(sum(prio[b] for b in nx.ancestors(graph, n))), n


@pytest.mark.parametrize("seed", [0, 1])
def test_chains_on_random_graphs_match_definition(seed: int) -> None:
    import networkx as nx

    rng = np.random.default_rng(seed)
    graph = nx.gnp_random_graph(30, 0.08, seed=seed, directed=True)
    for n in graph.nodes:
        graph.nodes[n]["priority"] = float(rng.integers(0, 10))
    for u, v in graph.edges:
        crit = bool(rng.random() < 0.4)
        graph.edges[u, v].update(critical=crit, critical_weight=1.0 if crit else 0.0)
    chains = critical_chains(graph)
    assert chains
    for c in chains:
        path = c.accounts
        assert len(set(path)) == len(path)
        assert all(graph.edges[u, v]["critical"] for u, v in itertools.pairwise(path))
        # maximal: the last account has no critical successor off the path
        assert all(v in path for v in graph.succ[path[-1]] if graph.edges[path[-1], v]["critical"])
        members = set(path) | nx.ancestors(graph, path[0])
        assert c.priority == pytest.approx(sum(graph.nodes[m]["priority"] for m in members))
    assert [c.priority for c in chains] == sorted((c.priority for c in chains), reverse=True)
