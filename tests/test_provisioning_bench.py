"""The provisioning benchmark's cut-first pricing: a derived, lexicographic price of traffic.

At a fixed price (1000 per unit of traffic) the program cut 0.0009 traffic units on one of the
benchmark's real graphs where Kernighan-Lin cut nothing: cutting an edge that light costs less
than one migration, so the program's objective prefers the cut (not a gap or a tolerance). The
graph below has the same shape in small: one edge of 1e-4 traffic and three heavy pairs.
"""

from __future__ import annotations

import pytest
from benchmark_module import load_benchmark

from models import DependencyEdge, ParentAccount, Workload
from planner.provision.baselines import kernighan_lin_provisioning, placement_unmet
from planner.provision.cases import Case, cut_first_cut_cost, overloaded_case
from planner.provision.joint import solve_joint

WORKLOADS = [Workload(id=f"w{i}", account="acct-000", migration_cost=1.0) for i in range(8)]
EDGES = [DependencyEdge(source="w0", target="w1", weight=1e-4)] + [
    DependencyEdge(source=f"w{i}", target=f"w{i + 1}", weight=10.0) for i in (2, 4, 6)
]
SEED, OVERLOAD = 1, 1.2  # demand draws under which moving w0 alone is the cheapest fit


def light_edge_case(cut_cost: float, unmet_cost: float) -> Case:
    return overloaded_case(
        WORKLOADS,
        EDGES,
        seed=SEED,
        overload=OVERLOAD,
        max_new_accounts=2,
        cut_cost=cut_cost,
        unmet_cost=unmet_cost,
        mean_traffic=None,
    )


def program_and_kl(case: Case) -> tuple[float, float, float]:
    """The program's cut, Kernighan-Lin's cut and Kernighan-Lin's unmet demand."""
    res = solve_joint(case.org, case.profiles, case.demand, start=case.start)
    kl = kernighan_lin_provisioning(case.org, case.profiles, case.demand, start=case.start)
    kl_unmet = placement_unmet(case.org, case.profiles, case.demand, kl, start=case.start)
    return res.outcome.cut_traffic, kl.cut_traffic, kl_unmet


def test_a_fixed_price_trades_a_light_edge_for_a_migration() -> None:
    # the cause of the benchmark's miss, kept as a fact: at 1000 per unit the program cuts
    # the light edge (cost 0.1) to move one workload instead of a pair (cost 1 more)
    cut, kl_cut, kl_unmet = program_and_kl(light_edge_case(1000.0, 1e5))
    assert kl_cut == 0.0
    assert kl_unmet == pytest.approx(0.0, abs=1e-6)
    assert cut == pytest.approx(1e-4)


def test_cut_first_price_outweighs_every_migration_and_opening() -> None:
    org = light_edge_case(1.0, 1.0).org
    price = cut_first_cut_cost(org)
    spend = 8 * 1.0 + 2 * 50.0  # migrations + max_new_accounts x opening
    assert price * 1e-4 >= 10 * spend
    assert price == 1e8  # ten times 1e7, the power of ten at or above 108 / 1e-4
    cut, kl_cut, _ = program_and_kl(light_edge_case(price, 100 * price))
    assert cut == 0.0
    assert kl_cut == 0.0  # here both avoid the light edge: the price made the program agree


def test_cut_first_price_refuses_costs_it_does_not_bound() -> None:
    org = light_edge_case(1.0, 1.0).org
    priced = org.model_copy(
        update={"parent": ParentAccount(capacity=org.parent.capacity, cost_per_unit={"cpu": 1.0})}
    )
    with pytest.raises(ValueError, match="prices quota, churn, loans or shadow"):
        cut_first_cut_cost(priced)
    rules = org.rules.model_copy(update={"allow_loans": True, "loan_premium": 0.1})
    with pytest.raises(ValueError, match="prices quota, churn, loans or shadow"):
        cut_first_cut_cost(org.model_copy(update={"rules": rules}))
    assert cut_first_cut_cost(org.model_copy(update={"edges": []})) == 1.0


def test_the_benchmark_prices_cut_first_per_case() -> None:
    bench = load_benchmark("provisioning")
    case = bench.priced_case(
        WORKLOADS,
        EDGES,
        pricing="cut-first",
        seed=SEED,
        overload=OVERLOAD,
        max_new_accounts=2,
    )
    rules = case.org.rules
    # the benchmark rescales traffic to a mean of 10 per edge: the light edge carries ~1.3e-4
    assert rules.cut_cost == cut_first_cut_cost(case.org) == 1e7
    assert rules.unmet_cost == bench.UNMET_PER_CUT * rules.cut_cost
    cut, kl_cut, _ = program_and_kl(case)
    assert cut <= kl_cut
    fixed = bench.priced_case(
        WORKLOADS, EDGES, pricing="cut-1000", seed=SEED, overload=OVERLOAD, max_new_accounts=2
    )
    assert (fixed.org.rules.cut_cost, fixed.org.rules.unmet_cost) == (1000.0, 1e5)
