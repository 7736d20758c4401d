"""Provisioning parts: workload shares, coarsening bound, extraction order and peers, real graphs."""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models import (
    DependencyEdge,
    NegotiationRules,
    NewAccount,
    Organisation,
    ParentAccount,
    Resource,
    SubAccount,
    Workload,
)
from planner.provision import WorkloadDemand, coarsen, provisioning_for
from planner.provision.baselines import kernighan_lin_provisioning
from planner.provision.cases import overloaded_case
from planner.provision.extract import baseline_plan, outcome
from planner.provision.joint import joint_plan, solve_joint
from planner.provision.verify import verify_provisioning
from planner.scenarios import tables_to_models

GRAPHS = Path(__file__).parent / "data" / "alibaba_graphs"


def small_org(**rules: object) -> Organisation:
    return Organisation(
        resources=[Resource(name="cpu"), Resource(name="mem")],
        parent=ParentAccount(capacity={"cpu": 100, "mem": 100}),
        accounts=[SubAccount(id="a"), SubAccount(id="b")],
        workloads=[
            Workload(id="a1", account="a"),
            Workload(id="a2", account="a"),
            Workload(id="a3", account="a", migratable=False),
            Workload(id="b1", account="b"),
        ],
        edges=[
            DependencyEdge(source="a1", target="a2", weight=5),
            DependencyEdge(source="a2", target="a3", weight=2),
            DependencyEdge(source="a1", target="b1", weight=3),
            DependencyEdge(source="b1", target="a", weight=1),
        ],
        rules=NegotiationRules(**rules),  # type: ignore[arg-type]
    )


def test_shares_from_recent_peaks_of_the_workload_column() -> None:
    org = small_org()
    ts = pd.date_range("2026-01-01", periods=24 * 10, freq="h")
    rows = []
    for i, t in enumerate(ts):
        old = i < 24 * 3  # a1 peaked long ago: only the last 7 days count
        rows += [
            ("a", "cpu", t, 100.0 if old else 3.0, "a1"),
            ("a", "cpu", t, 1.0, "a2"),
            ("a", "cpu", t, 0.0, "a3"),
            ("b", "cpu", t, 5.0, "b1"),
        ]
    usage = pd.DataFrame(rows, columns=["account", "resource", "ts", "value", "workload"])
    wd = WorkloadDemand.from_usage(org, usage)
    assert wd.of("a1")["cpu"] == pytest.approx(0.75)
    assert wd.of("a2")["cpu"] == pytest.approx(0.25)
    assert wd.of("a3")["cpu"] == 0.0
    assert wd.of("b1")["cpu"] == pytest.approx(1.0)
    # no memory rows: equal shares, said in the notes
    assert wd.of("a1")["mem"] == pytest.approx(1 / 3)
    assert any("mem" in n for n in wd.notes)
    # shares of an account add up to one, so moved + kept demand = the account's target
    demand = np.arange(2 * 2 * 3, dtype=float).reshape(2, 2, 3)
    per_w = wd.demand(demand, ["a", "b"])
    assert per_w[:3].sum(axis=0) == pytest.approx(demand[0])
    assert WorkloadDemand.from_usage(org, usage.drop(columns="workload")).of("a1")["cpu"] == (
        pytest.approx(1 / 3)
    )
    with pytest.raises(ValueError, match="recent"):
        WorkloadDemand.from_usage(org, usage, recent=timedelta(0))


def test_coarsening_bound_and_heavy_edges_first() -> None:
    # a path of 12 workloads with alternating heavy (10) and light (1) edges
    ids = [f"w{i:02d}" for i in range(12)]
    org = Organisation(
        resources=[Resource(name="cpu")],
        parent=ParentAccount(capacity={"cpu": 100}),
        accounts=[SubAccount(id="a")],
        workloads=[Workload(id=w, account="a") for w in ids],
        edges=[
            DependencyEdge(source=u, target=v, weight=10.0 if i % 2 == 0 else 1.0)
            for i, (u, v) in enumerate(itertools.pairwise(ids))
        ],
    )
    c = coarsen(org, WorkloadDemand.equal(org), max_clusters=6)
    assert len(c.clusters) == 6
    assert sorted(cl.members for cl in c.clusters) == [
        tuple(ids[i : i + 2]) for i in range(0, 12, 2)
    ]
    assert c.internal_traffic == pytest.approx(60.0)
    assert sum(w for _, _, w in c.edges) == pytest.approx(5.0)
    with pytest.raises(ValueError, match="max_clusters"):
        coarsen(org, WorkloadDemand.equal(org), max_clusters=0)
    # a bound below what heavy edges reach still holds (smallest clusters merge)
    assert len(coarsen(org, WorkloadDemand.equal(org), max_clusters=2).clusters) == 2


def test_pinned_workloads() -> None:
    org = small_org(must_stay_together=[("a2", "a3"), ("a1", "b1")])
    c = coarsen(org, WorkloadDemand.equal(org))
    # a3 is not migratable, so a2 stays with it; a1-b1 spans two accounts
    assert c.pinned == {"a1", "a2", "a3", "b1"}
    assert c.clusters == []


def test_outcome_orders_steps_and_records_peers() -> None:
    org = small_org()
    new = [NewAccount(id="a+new1", name="n", template="t", seed={}, quota={"cpu": 5})]
    out = outcome(org, {"a1": "a+new1", "a2": "a+new1"}, new, {"a1": {"cpu": 1.0}})
    # a1 and a2 tie on traffic inside the moved set (5) and on cost: the id decides
    assert [m.workload for m in out.migrations] == ["a1", "a2"]
    assert out.migrations[0].cut_edges == []  # a1-b1 was already across accounts
    a2 = out.migrations[1]
    assert [(e.source, e.target, e.traffic) for e in a2.cut_edges] == [("a2", "a3", 2.0)]
    assert out.cut_traffic == pytest.approx(2.0)  # a1-b1 was already across accounts
    peers = {(p.peer, p.relation): p.traffic for p in out.peers}
    assert peers == {("a", "depends_on"): 2.0, ("b", "depends_on"): 3.0}
    with pytest.raises(ValueError, match="not opened"):
        outcome(org, {"a1": "ghost"}, new, {})


@pytest.mark.parametrize("graph", ["n40-seed1", "n120-seed2"])
def test_real_graphs_program_beats_kernighan_lin(graph: str) -> None:
    nodes = pd.read_csv(GRAPHS / "nodes.csv")
    edges = pd.read_csv(GRAPHS / "edges.csv")
    n = nodes[nodes.graph == graph].drop(columns="graph").copy()
    e = edges[edges.graph == graph].drop(columns="graph")
    n["account"] = np.where(np.arange(len(n)) < len(n) // 2, "acct-000", "acct-001")
    workloads, deps = tables_to_models(n, e)
    case = overloaded_case(workloads, deps, seed=3, overload=1.5, max_new_accounts=4)
    res = solve_joint(case.org, case.profiles, case.demand, start=case.start)
    kl = kernighan_lin_provisioning(case.org, case.profiles, case.demand, start=case.start)
    assert verify_provisioning(case.org, joint_plan(res)) == []
    kl_plan = baseline_plan(case.org, kl, start=case.start, method="greedy-kl")
    assert verify_provisioning(case.org, kl_plan) == []
    assert res.unmet_total == pytest.approx(0.0, abs=1e-6)
    assert res.outcome.cut_traffic <= kl.cut_traffic + 1e-9


def test_provisioning_for_returns_none_when_nothing_can_move() -> None:
    org = small_org()
    assert provisioning_for(org) is None  # no templates
    case = overloaded_case(
        [Workload(id="x", account="a"), Workload(id="y", account="a")],
        [DependencyEdge(source="x", target="y")],
    )
    ext = provisioning_for(case.org, start=datetime(2026, 1, 5))
    assert ext is not None
    assert len(ext.coarse.clusters) == 2
    no = case.org.model_copy(
        update={"rules": case.org.rules.model_copy(update={"max_new_accounts": 0})}
    )
    assert provisioning_for(no) is None


def test_fast_mode_rounders_give_a_verified_plan() -> None:
    from planner.backends import SolveOptions, get_backend
    from planner.formulation import build_model, problem_data
    from planner.provision import ProvisioningExtension
    from planner.provision.joint import JointResult, extract_provisioning

    nodes = pd.read_csv(GRAPHS / "nodes.csv")
    edges = pd.read_csv(GRAPHS / "edges.csv")
    n = nodes[nodes.graph == "n40-seed1"].drop(columns="graph")
    e = edges[edges.graph == "n40-seed1"].drop(columns="graph")
    case = overloaded_case(*tables_to_models(n, e), seed=2, overload=1.6)
    data = problem_data(case.org, case.profiles, start=case.start)
    model = build_model(data, extensions=[ProvisioningExtension(case.org, case.demand)])
    backend = get_backend()
    lp = backend.solve(model.relaxed(), SolveOptions())
    assert lp.x is not None
    lower, upper = model.lower.copy(), model.upper.copy()
    for name, rounder in model.meta["rounders"].items():
        block = model.blocks[name]
        values = rounder(model, lp.x)
        lower[block.offset : block.offset + block.size] = values
        upper[block.offset : block.offset + block.size] = values
    fixed = model.with_bounds(lower, upper)
    res = backend.solve(fixed, SolveOptions())
    assert res.x is not None
    out = extract_provisioning(fixed, res.x)
    assert out.new_accounts  # the account is 1.6x over its ceiling: something opens
    result = JointResult(fixed, data, res, out, model.meta["provisioning"].coarse)
    assert verify_provisioning(case.org, joint_plan(result)) == []
    placed = fixed.values("place", res.x)
    per_cluster: dict[int, float] = {}
    for p, (c, _) in enumerate(model.meta["provisioning"].pairs):
        per_cluster[c] = per_cluster.get(c, 0.0) + placed[p]
    assert max(per_cluster.values()) <= 1.0 + 1e-9
