"""Unmet demand priced in two bands: the target above the forecast's median costs its chance.

A data store planned to its P99 asks for far more than it will probably use; a batch account
asks for its median. With one price per account the store's unlikely peak outbid the batch
account's likely need (the Google-week replay: low-priority batch squeezed to its floor while
the P99 reservation sat idle). Priced by expected shortfall, the batch median comes first.
"""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pytest
from test_mip_cases import START, case

from models import NeedProfile, ResourceDemand
from planner.formulation import problem_data
from planner.formulation.data import tail_prices
from planner.greedy import negotiate_resources
from planner.mip import evaluate_plan, plan_mip

MEDIAN, Q90, Q99 = 2.0, 5.0, 8.0


def test_tail_price_is_the_mean_chance_of_reaching_the_tail() -> None:
    levels = {0.5: np.array([10.0, 3.0]), 0.9: np.array([14.0, 3.0])}
    price = tail_prices(levels, np.array([16.0, 3.0]), 0.99)
    # (14 - 10) x (0.5 + 0.1) / 2 + (16 - 14) x (0.1 + 0.01) / 2 over a width of 6
    assert price[0] == pytest.approx((4 * 0.3 + 2 * 0.055) / 6)
    assert price[1] == 1.0  # no tail: full price


def store_and_batch(with_quantiles: bool) -> tuple:
    """Capacity 10: a priority-3 store (median 2, P99 8) and a priority-1 batch account (6)."""
    org, profiles = case(
        [
            {"id": "store", "quota": {"cpu": 5}, "priority": 3},
            {"id": "batch", "quota": {"cpu": 5}, "priority": 1},
        ],
        {"store": [Q99] * 4, "batch": [6.0] * 4},
        capacity=10,
        rules={"allow_loans": False, "allow_shadow": False},
    )
    if with_quantiles:
        periods = [START + k * timedelta(hours=1) for k in range(4)]
        profiles["store"] = NeedProfile(
            account="store",
            demand={
                "cpu": ResourceDemand(
                    resource="cpu",
                    periods=periods,
                    target=[Q99] * 4,
                    service_level=0.99,
                    quantiles={0.5: [MEDIAN] * 4, 0.9: [Q90] * 4, 0.99: [Q99] * 4},
                )
            },
        )
    return org, profiles


def quotas(plan) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {q.account: q.after for q in plan.quotas}


def test_a_median_outbids_another_accounts_unlikely_peak(solver: str) -> None:
    org, profiles = store_and_batch(with_quantiles=True)
    plan = plan_mip(org, profiles, start=START, solver=solver, time_limit=30)
    assert plan.report.fallback is None
    got = quotas(plan)
    assert got["batch"] == pytest.approx(6.0, abs=1e-5)
    assert got["store"] == pytest.approx(4.0, abs=1e-5)  # its median and part of its tail
    assert plan.unmet["store"]["cpu"] == pytest.approx(4 * 4.0, abs=1e-4)
    why = next(e for e in plan.explanations if e.account == "store")
    assert any("above its median forecast" in b for b in why.binding)
    assert evaluate_plan(org, profiles, plan) == pytest.approx(plan.report.objective, rel=1e-6)
    greedy = negotiate_resources(org, profiles, start=START)
    assert evaluate_plan(org, profiles, greedy) >= plan.report.objective * (1 - 1e-6)


def test_without_quantiles_the_priority_decides_as_before() -> None:
    org, profiles = store_and_batch(with_quantiles=False)
    assert problem_data(org, profiles, start=START).tail is None
    plan = plan_mip(org, profiles, start=START)
    got = quotas(plan)
    assert got["store"] == pytest.approx(8.0, abs=1e-5)
    assert got["batch"] == pytest.approx(2.0, abs=1e-5)


def test_within_the_median_band_priority_decides() -> None:
    # capacity 7: the store's median (priority 3) comes before the batch account's demand,
    # the batch account's demand before the store's tail
    org, profiles = store_and_batch(with_quantiles=True)
    org = org.model_copy(
        update={"parent": org.parent.model_copy(update={"capacity": {"cpu": 7.0}})}
    )
    plan = plan_mip(org, profiles, start=START)
    got = quotas(plan)
    assert got["store"] == pytest.approx(MEDIAN, abs=1e-5)
    assert got["batch"] == pytest.approx(5.0, abs=1e-5)
    data = problem_data(org, profiles, start=START)
    assert data.tail is not None
    w_store, w_batch = data.unmet_weight
    assert data.tail.width[0, 0, 0] == pytest.approx(Q99 - MEDIAN)
    shortfall = 4 * (w_store * data.tail.price[0, 0, 0] * (Q99 - MEDIAN) + w_batch * 1.0)
    held = data.unit_cost[0] * 4 * 7.0
    churn = org.rules.churn_cost * (5.0 - MEDIAN)
    assert evaluate_plan(org, profiles, plan) == pytest.approx(shortfall + held + churn, rel=1e-6)
