"""Provisioning in the joint program: hand-made accounts whose right answer is known."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pytest

from models import (
    AccountTemplate,
    DependencyEdge,
    Migration,
    NeedProfile,
    NegotiationRules,
    NewAccount,
    Organisation,
    ParentAccount,
    Resource,
    ResourceDemand,
    SubAccount,
    Workload,
)
from planner.formulation import problem_data
from planner.formulation.provisioning import Candidate, candidate_accounts, matching_template
from planner.provision import WorkloadDemand, coarsen
from planner.provision.baselines import kernighan_lin_provisioning, random_provisioning
from planner.provision.brute import brute_force
from planner.provision.cases import Case
from planner.provision.extract import attach
from planner.provision.joint import joint_plan, solve_joint, splittable_accounts
from planner.provision.verify import verify_provisioning

START = datetime(2026, 1, 5)
H = 4

# Two tight groups in "web": A = a1, a2 (40 cpu) and B = b1, b2, b3 (90 cpu), one light edge
# between them. Web's ceiling is 100 against a demand of 130: at least 30 must move.
WORKLOADS = {"a1": 20.0, "a2": 20.0, "b1": 30.0, "b2": 30.0, "b3": 30.0}
EDGES = [("a1", "a2", 10.0), ("b1", "b2", 10.0), ("b2", "b3", 10.0), ("b1", "b3", 10.0)]
LIGHT = ("a2", "b1", 1.0)


def make_case(
    *,
    ceiling: float | None = 100.0,
    quota: float = 100.0,
    capacity: float = 1000.0,
    opening_cost: float = 10.0,
    must: list[tuple[str, str]] | None = None,
    idle_account: bool = False,
    allow_loans: bool = False,
    churn_cost: float = 0.0,
    rules: dict[str, Any] | None = None,
) -> Case:
    """The web account above (and optionally an idle account that could lend)."""
    periods = [START + timedelta(hours=h) for h in range(H)]
    demand = {"web": float(sum(WORKLOADS.values()))}
    accounts = [
        SubAccount(
            id="web",
            quota={"cpu": quota},
            ceiling={} if ceiling is None else {"cpu": ceiling},
            application_profile="web",
        )
    ]
    workloads = [Workload(id=w, account="web", migration_cost=1.0) for w in WORKLOADS]
    if idle_account:
        accounts.append(SubAccount(id="idle", quota={"cpu": 100.0}))
        workloads.append(Workload(id="i1", account="idle"))
        demand["idle"] = 20.0
    org = Organisation(
        name="web-org",
        resources=[Resource(name="cpu", unit="cores")],
        parent=ParentAccount(capacity={"cpu": capacity}),
        accounts=accounts,
        workloads=workloads,
        edges=[DependencyEdge(source=u, target=v, weight=w) for u, v, w in [*EDGES, LIGHT]],
        templates=[
            AccountTemplate(
                id="web-small",
                application_profile="web",
                seed={"cpu": 5.0},
                limits={"cpu": 100.0},
                opening_cost=opening_cost,
            )
        ],
        rules=NegotiationRules(
            horizon_periods=H,
            allow_shadow=False,
            allow_loans=allow_loans,
            churn_cost=churn_cost,
            must_stay_together=must or [],
            **(rules or {}),
        ),
    )
    profiles = {
        a: NeedProfile(
            account=a,
            demand={"cpu": ResourceDemand(resource="cpu", periods=periods, target=[d] * H)},
        )
        for a, d in demand.items()
    }
    peaks = {(w, "cpu"): v for w, v in WORKLOADS.items()} | {("i1", "cpu"): 20.0}
    shares = WorkloadDemand.from_peaks(org, peaks)
    curves = np.array([[[WORKLOADS.get(w.id, 20.0)] * H] for w in org.workloads])
    return Case(org, profiles, shares, START, curves)


def one_candidate(case: Case) -> list[Candidate]:
    template = matching_template(case.org, "web")
    assert template is not None
    return [Candidate("web+new1", "web", template)]


def solve(case: Case, **kw: Any) -> Any:
    return solve_joint(case.org, case.profiles, case.demand, start=case.start, **kw)


def test_beyond_ceiling_opens_exactly_one_and_moves_a_minimal_cut() -> None:
    case = make_case()
    res = solve(case)
    plan = joint_plan(res)
    assert res.solve.status.value == "optimal"
    assert [a.id for a in plan.new_accounts] == ["web+new1"]
    # moving A (40 cpu, 2 workloads) cuts only the light edge: the minimum cut that fits
    assert set(res.outcome.moves) == {"a1", "a2"}
    assert res.outcome.cut_traffic == pytest.approx(1.0)
    assert brute_force(case, "web").moved == frozenset({"a1", "a2"})
    assert res.unmet_total == pytest.approx(0.0, abs=1e-6)
    assert verify_provisioning(case.org, plan) == []
    new = plan.new_accounts[0]
    assert 40.0 - 1e-6 <= new.quota["cpu"] <= 100.0
    assert plan.quota("web", "cpu") <= 100.0 + 1e-6
    steps = plan.migrations
    assert [m.step for m in steps] == [1, 2]
    assert sum(m.traffic_cut for m in steps) == pytest.approx(1.0)
    assert plan.peers[0].model_dump() == {
        "account": "web+new1",
        "peer": "web",
        "relation": "depends_on",
        "traffic": 1.0,
    }


def test_must_stay_together_holds_even_when_it_costs_more() -> None:
    free = solve(make_case(), candidates=one_candidate(make_case()))
    case = make_case(must=[("a2", "b1")])
    res = solve(case, candidates=one_candidate(case))
    plan = joint_plan(res)
    assert verify_provisioning(case.org, plan) == []
    where = {w.id: res.outcome.moves.get(w.id, "web") for w in case.org.workloads}
    assert where["a2"] == where["b1"]
    assert res.solve.objective > free.solve.objective + 1.0
    assert res.outcome.cut_traffic > free.outcome.cut_traffic
    assert res.solve.objective == pytest.approx(brute_force(case, "web").cost, rel=1e-6)


def test_nothing_opens_when_quota_suffices_and_opening_costs_more() -> None:
    case = make_case(ceiling=200.0, opening_cost=1000.0)
    data = problem_data(case.org, case.profiles, start=case.start)
    assert candidate_accounts(data, coarsen(case.org, case.demand)) == []
    res = solve(case, candidates=one_candidate(case))  # offered anyway: the program declines
    plan = joint_plan(res)
    assert plan.new_accounts == []
    assert plan.migrations == []
    assert plan.quota("web", "cpu") >= 130.0 - 1e-6  # raising the quota covers it
    assert res.unmet_total == pytest.approx(0.0, abs=1e-6)


def test_nothing_opens_when_a_loan_suffices() -> None:
    # the parent has nothing left, but "idle" can lend 30 of its 100 (cheaper than churn)
    case = make_case(
        ceiling=200.0,
        capacity=200.0,
        opening_cost=1000.0,
        idle_account=True,
        allow_loans=True,
        churn_cost=1.0,
    )
    res = solve(case, candidates=one_candidate(case))
    assert res.outcome.new_accounts == []
    assert float(res.model.values("borrow", res.solve.x)[0].min()) == pytest.approx(30.0, rel=1e-4)
    assert res.unmet_total == pytest.approx(0.0, abs=1e-6)


def test_opening_declined_when_unmet_is_cheaper() -> None:
    case = make_case(opening_cost=1e7)
    res = solve(case)
    assert res.outcome.new_accounts == []
    assert res.unmet_total == pytest.approx(30.0 * H)


def test_no_new_accounts_when_rules_forbid() -> None:
    case = make_case(rules={"allow_new_accounts": False})
    res = solve(case)
    assert res.outcome.new_accounts == []
    assert "open" not in res.model.blocks


def test_cut_cap_is_kept() -> None:
    case = make_case(rules={"max_cut_traffic_per_account": 0.5})
    res = solve(case)
    plan = joint_plan(res)
    assert verify_provisioning(case.org, plan) == []
    assert res.outcome.cut_traffic <= 0.5 + 1e-9
    # the only moves that fit the cap move everything connected, or nothing
    assert set(res.outcome.moves) in (set(), set(WORKLOADS))


def test_baselines_open_one_account_and_verify() -> None:
    case = make_case()
    for method in (kernighan_lin_provisioning, random_provisioning):
        out = method(case.org, case.profiles, case.demand, start=case.start, seed=1)
        assert len(out.new_accounts) == 1
        assert out.moves
        base = joint_plan(solve(make_case(rules={"allow_new_accounts": False})))
        assert verify_provisioning(case.org, attach(base, out)) == []


def test_splittable_accounts_and_template_rules() -> None:
    case = make_case()
    assert splittable_accounts(case.org) == ["web"]
    org = case.org.model_copy(
        update={"templates": [case.org.templates[0].model_copy(update={"splittable": False})]}
    )
    assert matching_template(org, "web") is None


def test_verify_names_each_broken_rule() -> None:
    case = make_case(must=[("a2", "b1")], rules={"max_new_accounts": 1})
    base = joint_plan(solve(make_case(rules={"allow_new_accounts": False})))
    new = [
        NewAccount(id="web+new1", name="n", template="web-small", seed={}, quota={"cpu": 101.0}),
        NewAccount(id="web+new2", name="n", template="nope", seed={}, quota={"cpu": 1.0}),
    ]
    steps = [
        Migration(step=1, workload="a2", source="web", target="web+new1", moved_demand={}),
        Migration(step=2, workload="a2", source="web", target="web+new1", moved_demand={}),
        Migration(step=4, workload="b2", source="web", target="ghost", moved_demand={}),
    ]
    plan = base.model_copy(update={"new_accounts": new, "migrations": steps})
    found = {v.split(":")[0] for v in verify_provisioning(case.org, plan)}
    assert found >= {
        "new-accounts-allowed",
        "new-account-quota",
        "new-account-template",
        "one-account-per-workload",
        "migration-target-opened",
        "migration-steps",
        "must-stay-together",
        "cut-edges",
    }


def test_hard_thresholds_force_an_opening_even_when_it_is_dear() -> None:
    # unmet demand would be cheaper, but hard thresholds cap it at 5 % of the demand
    case = make_case(opening_cost=1e5, rules={"hard_thresholds": True, "unmet_cost": 1.0})
    res = solve(case)
    assert [a.id for a in res.outcome.new_accounts] == ["web+new1"]
    assert "new_min_coverage" in res.model.families
    assert res.unmet_total <= 0.05 * 130.0 * H + 1e-6
    assert verify_provisioning(case.org, joint_plan(res)) == []


@pytest.mark.parametrize("fast", [False, True])
def test_negotiation_engine_takes_the_extension(fast: bool) -> None:
    from planner.mip import plan_mip
    from planner.provision import ProvisioningExtension
    from planner.verify import verify_plan

    case = make_case()
    ext = ProvisioningExtension(case.org, case.demand)
    plan = plan_mip(case.org, case.profiles, start=case.start, extensions=[ext], fast=fast)
    assert plan.report.fallback is None
    assert [a.id for a in plan.new_accounts] == ["web+new1"]
    assert {m.workload for m in plan.migrations} == {"a1", "a2"}
    assert verify_plan(case.org, plan, case.profiles) == []


@pytest.fixture(scope="module")
def demo_plans():
    """The embedded demo planned through the library call, exact and fast."""
    from planner import plan
    from planner.demo import demo_path
    from planner.io import load

    org, usage = load(demo_path())
    return org, {m: plan(org, usage, method=m, time_limit=120) for m in ("mip", "mip-fast")}


def test_the_demo_outgrows_a_ceiling_and_plan_opens_an_account(demo_plans) -> None:
    org, plans = demo_plans
    exact = plans["mip"]
    assert exact.report.fallback is None
    assert exact.violations == []
    grower = org.events.growth[0].account  # the demo's growing web account
    assert [a.template for a in exact.new_accounts] == ["web-template"]
    new = exact.new_accounts[0]
    assert new.id.startswith(f"{grower}+new")
    moved = [m for m in exact.migrations if m.target == new.id]
    assert moved
    assert all(m.source == grower for m in moved)
    # even its predicted median is above its ceiling: that is why it opens
    ceiling = org.account(grower).ceiling["cpu"]
    prof = next(p for p in exact.need_profiles if p.account == grower)
    assert max(prof.demand["cpu"].quantiles[0.5]) > ceiling


def test_fast_mode_on_the_demo_keeps_every_rule_and_never_loses_to_opening_nothing(
    demo_plans,
) -> None:
    _, plans = demo_plans
    fast = plans["mip-fast"]
    assert fast.report.fallback is None
    assert fast.violations == []  # the rounded set once opened more than max_new_accounts
    assert len(fast.new_accounts) <= 2
    # the exact program is as good within its relative gap (1e-4), and fast mode's bound is
    # below both
    assert plans["mip"].report.objective <= fast.report.objective * (1 + 1e-4)
    assert fast.report.bound is not None
    assert fast.report.bound <= plans["mip"].report.objective + 1e-6


def test_the_cli_report_names_the_new_account_and_the_moves(demo_plans, capsys) -> None:
    from planner.cli.common import print_report

    _, plans = demo_plans
    print_report(plans["mip"])
    out = capsys.readouterr().out
    new = plans["mip"].new_accounts[0]
    assert f"New account {new.id} from template web-template" in out
    assert "move " in out
    assert "-> " + new.id in out
    assert "1 new account," in out


def test_no_incumbent_in_time_gives_the_fast_mode_plan_not_the_greedy(monkeypatch) -> None:
    """OR-Tools' HiGHS reports no incumbent at a time limit: the joint program's first round
    then hands over to fast mode (with the time kept for it), which still opens the account."""
    from test_mip_cases import no_incumbent_backend

    from planner.backends import REGISTRY
    from planner.mip import plan_mip
    from planner.provision import ProvisioningExtension
    from planner.verify import verify_plan

    monkeypatch.setitem(REGISTRY, "no-incumbent", no_incumbent_backend())
    case = make_case()
    ext = ProvisioningExtension(case.org, case.demand)
    plan = plan_mip(
        case.org, case.profiles, start=case.start, extensions=[ext], solver="no-incumbent"
    )
    assert plan.report.fallback is None
    assert any("fast mode" in m for m in plan.report.messages)
    assert [a.id for a in plan.new_accounts] == ["web+new1"]
    assert verify_plan(case.org, plan, case.profiles) == []
