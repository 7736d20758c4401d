"""Small hand-checkable organisations for the negotiation tests."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from models import NeedProfile, Organisation, ResourceDemand

START = datetime(2026, 3, 2, tzinfo=UTC)


def case(
    accounts: list[dict[str, Any]],
    demand: dict[str, list[float]],
    *,
    capacity: float,
    reserve: float = 0.0,
    rules: dict[str, Any] | None = None,
    state: dict[str, Any] | None = None,
    resource: str = "cpu",
) -> tuple[Organisation, dict[str, NeedProfile]]:
    """One-resource organisation; ``demand`` maps account id to its target per period."""
    n_t = len(next(iter(demand.values())))
    org = Organisation.model_validate(
        {
            "name": "case",
            "resources": [{"name": resource}],
            "parent": {"capacity": {resource: capacity}, "reserve": {resource: reserve}},
            "accounts": accounts,
            "rules": {"horizon_periods": n_t, **(rules or {})},
            "state": state or {},
        }
    )
    periods = [START + k * timedelta(hours=1) for k in range(n_t)]
    profiles = {
        a: NeedProfile(
            account=a,
            demand={resource: ResourceDemand(resource=resource, periods=periods, target=values)},
        )
        for a, values in demand.items()
    }
    return org, profiles


def loan_case() -> tuple[Organisation, dict[str, NeedProfile]]:
    """A and B peak at different times: each lends 3 to the other for two periods."""
    return case(
        [{"id": "A", "quota": {"cpu": 5}}, {"id": "B", "quota": {"cpu": 5}}],
        {"A": [8, 8, 2, 2], "B": [2, 2, 8, 8]},
        capacity=10,
        rules={"allow_shadow": False, "churn_cost": 10.0},
    )


def shadow_case(ttl: int = 6) -> tuple[Organisation, dict[str, NeedProfile]]:
    """One account 2 above its quota in every period: shadow (if the TTL allows) or quota."""
    return case(
        [{"id": "A", "quota": {"cpu": 10}}],
        {"A": [12, 12, 12, 12]},
        capacity=20,
        reserve=5,
        rules={"allow_loans": False, "churn_cost": 0.5, "shadow_ttl_periods": ttl},
    )


def priority_case() -> tuple[Organisation, dict[str, NeedProfile]]:
    """Two accounts want 8 of 10: the important one is served first."""
    return case(
        [{"id": "hi", "quota": {"cpu": 5}, "priority": 5}, {"id": "lo", "quota": {"cpu": 5}}],
        {"hi": [8, 8, 8], "lo": [8, 8, 8]},
        capacity=10,
        rules={"allow_loans": False, "allow_shadow": False},
    )


def no_incumbent_backend() -> type:
    """A HiGHS (highspy) backend that finds no solution to any mixed-integer model, as
    OR-Tools' HiGHS reports a time limit without its incumbent; LPs it solves."""
    from models import Status
    from planner.backends import SolveResult, highspy_direct

    class NoIncumbent(highspy_direct.HighspyBackend):
        name = "no-incumbent"

        def solve(self, model, options):  # type: ignore[no-untyped-def]
            if model.is_mip:
                return SolveResult(Status.ERROR, self.name, message="time limit, no incumbent")
            return super().solve(model, options)

    return NoIncumbent
