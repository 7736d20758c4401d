"""Property-based provisioning tests: generated workload graphs, every plan verified.

Each example is one overloaded account ``web`` (3 to 9 workloads, random edges, demands,
must-stay-together pairs, non-migratable workloads, prices). The joint program with a single
candidate must reach the brute-force optimum exactly; with its own candidates it may only do
better; the baselines' plans must verify too.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import (
    AccountTemplate,
    DependencyEdge,
    NeedProfile,
    NegotiationRules,
    Organisation,
    ParentAccount,
    Resource,
    ResourceDemand,
    SubAccount,
    Workload,
)
from planner.formulation.provisioning import Candidate, matching_template
from planner.provision import WorkloadDemand, coarsen
from planner.provision.baselines import kernighan_lin_provisioning, random_provisioning
from planner.provision.brute import brute_force
from planner.provision.cases import Case
from planner.provision.extract import attach
from planner.provision.joint import joint_plan, solve_joint
from planner.provision.verify import verify_provisioning

START = datetime(2026, 1, 5)
H = 3


@st.composite
def cases(draw: st.DrawFn) -> tuple[Case, bool]:
    n = draw(st.integers(3, 9))
    ids = [f"w{i}" for i in range(n)]
    demand = draw(st.lists(st.integers(1, 30), min_size=n, max_size=n))
    pairs = [(u, v) for i, u in enumerate(ids) for v in ids[i + 1 :]]
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=2 * n, unique=True))
    weights = draw(st.lists(st.integers(1, 20), min_size=len(chosen), max_size=len(chosen)))
    must = draw(st.lists(st.sampled_from(pairs), max_size=2, unique=True))
    fixed = draw(st.lists(st.sampled_from(ids), max_size=2, unique=True))
    overload = draw(st.sampled_from([1.1, 1.4, 1.9, 2.6]))
    opening = draw(st.sampled_from([0.0, 20.0, 200.0]))
    capped = draw(st.booleans())
    total = float(sum(demand))
    ceiling = total / overload
    periods = [START + timedelta(hours=h) for h in range(H)]
    wave = np.array([1.0, 0.8, 0.9])
    org = Organisation(
        name="prop",
        resources=[Resource(name="cpu")],
        parent=ParentAccount(capacity={"cpu": 10 * total}),
        accounts=[
            SubAccount(
                id="web",
                quota={"cpu": ceiling},
                ceiling={"cpu": ceiling},
                application_profile="web",
            )
        ],
        workloads=[
            Workload(id=w, account="web", migratable=w not in fixed, migration_cost=1.0 + i % 3)
            for i, w in enumerate(ids)
        ],
        edges=[
            DependencyEdge(source=u, target=v, weight=float(x))
            for (u, v), x in zip(chosen, weights, strict=True)
        ],
        templates=[
            AccountTemplate(
                id="t",
                application_profile="web",
                seed={"cpu": 1.0},
                limits={"cpu": ceiling},
                opening_cost=opening,
            )
        ],
        rules=NegotiationRules(
            horizon_periods=H,
            allow_loans=False,
            allow_shadow=False,
            churn_cost=0.0,
            unmet_cost=10.0,
            max_cut_traffic_per_account=15.0 if capped else None,
            must_stay_together=must,
        ),
    )
    profiles = {
        "web": NeedProfile(
            account="web",
            demand={
                "cpu": ResourceDemand(resource="cpu", periods=periods, target=list(total * wave))
            },
        )
    }
    shares = WorkloadDemand.from_peaks(
        org, {(w, "cpu"): float(d) for w, d in zip(ids, demand, strict=True)}
    )
    curves = np.array([[d * wave] for d in demand], dtype=float)
    return Case(org, profiles, shares, START, curves), capped


SETTINGS = settings(
    max_examples=20,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)


@SETTINGS
@given(cases())
def test_program_matches_brute_force_and_every_plan_verifies(drawn: tuple[Case, bool]) -> None:
    case, capped = drawn
    template = matching_template(case.org, "web")
    assert template is not None
    single = [Candidate("web+new1", "web", template)]
    res = solve_joint(case.org, case.profiles, case.demand, start=case.start, candidates=single)
    assert res.solve.x is not None
    plan = joint_plan(res)
    assert verify_provisioning(case.org, plan) == []
    assert len(plan.new_accounts) <= 1
    if not capped:  # the brute force knows no cap
        best = brute_force(case, "web")
        assert res.solve.objective == pytest.approx(best.cost, rel=1e-6, abs=1e-6)
    free = solve_joint(case.org, case.profiles, case.demand, start=case.start)
    assert free.solve.x is not None
    assert free.solve.objective <= res.solve.objective + 1e-6 * max(1.0, res.solve.objective)
    assert verify_provisioning(case.org, joint_plan(free)) == []
    for method in (kernighan_lin_provisioning, random_provisioning):
        out = method(case.org, case.profiles, case.demand, start=case.start, seed=0)
        ok = [v for v in verify_provisioning(case.org, attach(plan, out)) if "cut-traffic" not in v]
        assert ok == []  # the baselines ignore the cut cap (the seed has none)


@SETTINGS
@given(cases(), st.integers(1, 4))
def test_coarsening_partitions_movable_workloads(drawn: tuple[Case, bool], bound: int) -> None:
    case, _ = drawn
    c = coarsen(case.org, case.demand, max_clusters=bound)
    members = [w for cl in c.clusters for w in cl.members]
    assert len(members) == len(set(members))
    assert set(members) | c.pinned == {w.id for w in case.org.workloads}
    assert not set(members) & c.pinned
    assert len(c.of_account("web")) <= bound
    for u, v in case.org.rules.must_stay_together:
        assert (u in c.pinned and v in c.pinned) or c.cluster_of[u] == c.cluster_of[v]
    total = sum(e.weight for e in case.org.edges)
    pinned_pairs = sum(
        e.weight for e in case.org.edges if e.source in c.pinned and e.target in c.pinned
    )
    seen = c.internal_traffic + sum(w for _, _, w in c.edges) + float(c.fixed_traffic.sum())
    assert seen + pinned_pairs == pytest.approx(total)
