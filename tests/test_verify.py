"""verify_plan catches each broken rule by name and accepts good plans (greedy's too)."""

from __future__ import annotations

from datetime import timedelta

from test_mip_cases import START, case, loan_case, shadow_case

from models import Loan, QuotaAssignment, ShadowQuota
from planner.greedy import negotiate_resources
from planner.mip import plan_mip
from planner.verify import verify_plan

H = timedelta(hours=1)


def _rules(messages: list[str]) -> set[str]:
    return {m.split(":", 1)[0] for m in messages}


def test_greedy_plan_verifies() -> None:
    org, profiles = loan_case()
    assert verify_plan(org, negotiate_resources(org, profiles, start=START), profiles) == []


def test_quota_rules() -> None:
    org, profiles = case(
        [
            {"id": "A", "quota": {"cpu": 5}, "floor": {"cpu": 2}, "ceiling": {"cpu": 6}},
            {"id": "B", "quota": {"cpu": 5}},
        ],
        {"A": [1, 1], "B": [1, 1]},
        capacity=10,
        reserve=1,
    )
    plan = plan_mip(org, profiles, start=START)
    bad = plan.model_copy(
        update={
            "quotas": [
                QuotaAssignment(account="A", resource="cpu", before=5, after=1),
                QuotaAssignment(account="B", resource="cpu", before=5, after=8.5),
                QuotaAssignment(account="ghost", resource="cpu", before=0, after=1),
            ]
        }
    )
    assert _rules(verify_plan(org, bad)) == {"floor", "reserve", "known-reference"}
    too_high = plan.model_copy(
        update={"quotas": [QuotaAssignment(account="A", resource="cpu", before=5, after=7)]}
    )
    assert "ceiling" in _rules(verify_plan(org, too_high))
    negative = plan.model_copy(
        update={"quotas": [QuotaAssignment(account="B", resource="cpu", before=5, after=-1)]}
    )
    assert "non-negative" in _rules(verify_plan(org, negative))


def test_loan_rules() -> None:
    org, profiles = case(
        [
            {"id": "A", "quota": {"cpu": 5}, "borrow_limit": {"cpu": 1}},
            {"id": "B", "quota": {"cpu": 2}, "lend_limit": {"cpu": 1}},
        ],
        {"A": [1, 1, 1], "B": [1, 1, 1]},
        capacity=10,
        rules={"loan_max_periods": 2},
    )
    plan = plan_mip(org, profiles, start=START)
    loan = Loan(
        id="x", lender="B", borrower="A", resource="cpu", amount=3, start=START, until=START + 3 * H
    )
    bad = plan.model_copy(update={"loans": [loan]})
    found = _rules(verify_plan(org, bad))
    assert {"loan-duration", "lend-limit", "borrow-limit", "lend-within-quota"} <= found
    no_loans = org.model_copy(update={"rules": org.rules.model_copy(update={"allow_loans": False})})
    assert "loans-allowed" in _rules(verify_plan(no_loans, bad))


def test_shadow_rules() -> None:
    org, profiles = shadow_case(ttl=2)
    plan = plan_mip(org, profiles, start=START)
    long = ShadowQuota(account="A", resource="cpu", amount=2, start=START, until=START + 2 * H)
    touching = ShadowQuota(
        account="A", resource="cpu", amount=1, start=START + 2 * H, until=START + 3 * H
    )
    big = ShadowQuota(
        account="A", resource="cpu", amount=9, start=START + 3 * H, until=START + 4 * H
    )
    bad = plan.model_copy(update={"shadow_quotas": [long, touching, big]})
    found = verify_plan(org, bad)
    assert {"shadow-ttl", "shadow-fraction", "capacity"} <= _rules(found)
    assert any("A's cpu shadow quota runs from" in m for m in found)


def test_min_coverage_under_hard_thresholds() -> None:
    org, profiles = case(
        [{"id": "A", "quota": {"cpu": 5}}],
        {"A": [10, 10]},
        capacity=20,
        rules={"hard_thresholds": True, "allow_shadow": False, "allow_loans": False},
    )
    plan = plan_mip(org, profiles, start=START)
    assert verify_plan(org, plan, profiles) == []
    starved = plan.model_copy(
        update={"quotas": [QuotaAssignment(account="A", resource="cpu", before=5, after=5)]}
    )
    assert "min-coverage" in _rules(verify_plan(org, starved, profiles))
