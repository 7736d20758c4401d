"""Properties over generated organisations: every plan keeps every rule, greedy never wins."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from models import Status
from planner.formulation.synthetic import START, make_organisation
from planner.greedy import negotiate_resources
from planner.mip import evaluate_plan, plan_mip
from planner.verify import verify_plan

orgs = st.builds(
    make_organisation,
    n_accounts=st.integers(2, 6),
    n_resources=st.integers(1, 2),
    n_periods=st.integers(3, 9),
    seed=st.integers(0, 10_000),
    tightness=st.floats(0.7, 1.6),
    integral=st.booleans(),
)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orgs, st.booleans(), st.integers(1, 4))
def test_every_plan_keeps_the_rules(generated, fast, ttl) -> None:
    org, profiles = generated
    org = org.model_copy(
        update={
            "rules": org.rules.model_copy(update={"shadow_ttl_periods": ttl, "loan_max_periods": 3})
        }
    )
    plan = plan_mip(org, profiles, start=START, fast=fast, solver="highspy", time_limit=20)
    assert plan.report.status in (Status.OPTIMAL, Status.FEASIBLE), plan.report
    assert verify_plan(org, plan, profiles) == []

    step = timedelta(minutes=org.rules.period_minutes)
    grid = [START + k * step for k in range(plan.periods)]
    for r in org.resource_names:
        base = sum(q.after for q in plan.quotas if q.resource == r)
        for p in grid:
            shadow = sum(
                s.amount for s in plan.shadow_quotas if s.resource == r and s.start <= p < s.until
            )
            assert base + shadow <= org.parent.capacity[r] * (1 + 1e-9) + 1e-6
            lent = sum(x.amount for x in plan.loans if x.resource == r and x.start <= p < x.until)
            per_borrower: dict[str, float] = defaultdict(float)
            for x in plan.loans:
                if x.resource == r and x.start <= p < x.until:
                    per_borrower[x.borrower] += x.amount
            assert (
                sum(per_borrower.values()) == lent or abs(sum(per_borrower.values()) - lent) < 1e-6
            )
    for q in plan.quotas:
        acc = org.account(q.account)
        assert q.after >= acc.floor.get(q.resource, 0.0) - 1e-6
        assert q.after <= acc.ceiling.get(q.resource, float("inf")) + 1e-6
    for s in plan.shadow_quotas:  # shadow quotas expire
        assert s.until - s.start <= ttl * step
        assert s.until <= grid[-1] + step

    greedy = negotiate_resources(org, profiles, start=START)
    if not verify_plan(org, greedy, profiles):
        assert evaluate_plan(org, profiles, greedy) >= (
            plan.report.bound or plan.report.objective
        ) - 1e-6 * max(1.0, abs(plan.report.objective))
    assert evaluate_plan(org, profiles, plan) <= plan.report.objective * (1 + 1e-6) + 1e-6
