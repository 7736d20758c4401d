"""The backend registry, and every backend on small hand-checkable models."""

from __future__ import annotations

import numpy as np
import pytest
from test_mip_cases import START, case, loan_case, no_incumbent_backend, priority_case, shadow_case

from models import Status
from planner.backends import (
    REGISTRY,
    SolveOptions,
    available_backends,
    get_backend,
)
from planner.formulation import build_model, problem_data
from planner.mip import plan_mip
from planner.verify import verify_plan

EPS = 1e-4  # formulation.data.EPSILON_COST


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="valid names: highs, scip") as err:
        get_backend("gurobi-please")
    for name in REGISTRY:
        assert name in str(err.value)


def test_default_is_highs_and_features_are_declared() -> None:
    assert get_backend(None).name == "highs"
    for cls in REGISTRY.values():
        assert cls.features, cls.name
        assert {"mip", "lp"} & cls.features, cls.name
    assert "highs" in available_backends(mip_only=True)
    assert "glop" not in available_backends(mip_only=True)


def test_loans_hand_checked(solver: str) -> None:
    org, profiles = loan_case()
    plan = plan_mip(org, profiles, start=START, solver=solver, time_limit=30)
    assert plan.report.status in (Status.OPTIMAL, Status.FEASIBLE), plan.report
    # 3 units lent each way for two periods: 12 unit-periods at the premium (+ 2 epsilons).
    assert plan.report.objective == pytest.approx(12 * (0.05 + 2 * EPS), abs=1e-3)
    assert not plan.unmet
    assert verify_plan(org, plan, profiles) == []
    lent = {
        (x.lender, x.borrower): x.amount * ((x.until - x.start).seconds // 3600) for x in plan.loans
    }
    assert lent == {("B", "A"): pytest.approx(6.0), ("A", "B"): pytest.approx(6.0)}


def test_shadow_hand_checked(solver: str) -> None:
    org, profiles = shadow_case(ttl=6)
    plan = plan_mip(org, profiles, start=START, solver=solver, time_limit=30)
    # A shadow of 2 for 4 periods (premium 0.1 + epsilon) beats a quota change (churn 0.5 x 2).
    assert plan.report.objective == pytest.approx(8 * (0.1 + EPS), abs=1e-3)
    assert [(s.amount, s.start, s.until) for s in plan.shadow_quotas] == [
        (pytest.approx(2.0), START, START.replace(hour=4))
    ]
    assert verify_plan(org, plan, profiles) == []


def test_shadow_ttl_binds(solver: str) -> None:
    org, profiles = shadow_case(ttl=2)
    plan = plan_mip(org, profiles, start=START, solver=solver, time_limit=30)
    # No shadow may last 4 periods: raising the quota by 2 (churn 1.0) is now optimal.
    assert plan.report.objective == pytest.approx(1.0, abs=1e-3)
    assert plan.quota("A", "cpu") == pytest.approx(12.0)
    assert verify_plan(org, plan, profiles) == []


def test_priority_decides(solver: str) -> None:
    org, profiles = priority_case()
    plan = plan_mip(org, profiles, start=START, solver=solver, time_limit=30)
    assert plan.quota("hi", "cpu") == pytest.approx(8.0, abs=1e-6)
    assert plan.quota("lo", "cpu") == pytest.approx(2.0, abs=1e-6)
    assert plan.unmet == {"lo": {"cpu": pytest.approx(18.0)}}
    denied = [b for b in plan.bids if b.account == "lo"]
    assert denied[0].outcome == "denied"
    assert "priority" in denied[0].reason or "capacity" in denied[0].reason


def test_backends_agree_on_a_generated_model() -> None:
    from planner.formulation.synthetic import make_organisation

    org, profiles = make_organisation(6, 2, 6, seed=3, integral=True)
    model = build_model(problem_data(org, profiles, start=START.replace(month=1, day=5)))
    objectives = {}
    for name in available_backends():
        if name == "cpsat":
            continue  # the integer-scaled model is a restriction: checked on the hand cases
        res = get_backend(name).solve(model, SolveOptions(time_limit=30))
        assert res.status is Status.OPTIMAL, (name, res.message)
        assert model.violations(res.x) == [], name
        objectives[name] = res.objective
    values = list(objectives.values())
    assert max(values) - min(values) <= 1e-4 * max(1.0, abs(min(values))), objectives


def test_a_time_to_live_round_without_solution_repairs_the_previous_one(monkeypatch) -> None:
    """A backend that finds no MIP solution in time (as OR-Tools' HiGHS reports a time limit
    without an incumbent): the relaxed round's solution is repaired, no greedy fallback."""
    monkeypatch.setitem(REGISTRY, "no-incumbent", no_incumbent_backend())
    org, profiles = shadow_case(ttl=2)
    plan = plan_mip(org, profiles, start=START, solver="no-incumbent", time_limit=30)
    assert plan.report.fallback is None
    assert plan.report.status is Status.FEASIBLE
    assert any("repaired" in m for m in plan.report.messages)
    assert verify_plan(org, plan, profiles) == []
    # the relaxed round's value stays a valid bound; the repair is no worse than the optimum
    # by more than the LP it re-solves allows (here it finds the optimum, a quota of 12)
    assert plan.report.bound == pytest.approx(8 * (0.1 + EPS), abs=1e-3)
    assert plan.report.objective == pytest.approx(1.0, abs=1e-3)


def _two_over_quota(ttl_rows_for: tuple[str, ...]):  # type: ignore[no-untyped-def]
    """Both accounts want 2 above their quota for 6 periods; the reserve keeps base quotas
    from growing, so shadows (at most 2 periods running) or unmet demand it is. The model has
    time-to-live binaries for the accounts ``ttl_rows_for`` only. Returns (data, model)."""
    import dataclasses

    import numpy as np

    org, profiles = case(
        [{"id": "A", "quota": {"cpu": 10}}, {"id": "B", "quota": {"cpu": 10}}],
        {"A": [12] * 6, "B": [12] * 6},
        capacity=30,
        reserve=10,
        rules={"allow_loans": False, "shadow_ttl_periods": 2},
    )
    data = problem_data(org, profiles, start=START)
    mask = np.zeros(data.carry.shape, dtype=bool)
    for account in ttl_rows_for:
        mask[data.accounts.index(account)] = True
    data = dataclasses.replace(data, ttl_mask=mask)
    return data, build_model(data)


def _runs_within_two(shadow) -> bool:  # type: ignore[no-untyped-def]
    """No account's shadow (accounts x one resource x periods) runs 3 periods in a row."""
    on = shadow[:, 0] > 1e-6
    return not (on[:, :-2] & on[:, 1:-1] & on[:, 2:]).any()


def test_the_repair_keeps_the_shadow_switches_of_a_round_with_time_to_live_rows() -> None:
    """A round whose time-to-live rows bind is repaired with its own switches: switching them
    all on would break those rows and make the repair infeasible."""
    from planner.backends.strategy import _repair

    # the round solved had time-to-live binaries for A only: B's shadow runs all 6 periods
    # and must be cut
    data, model = _two_over_quota(("A",))
    highs = get_backend("highs")
    solved = highs.solve(model, SolveOptions(time_limit=30))
    assert solved.x is not None
    assert (model.values("shadow", solved.x)[1] > 1e-6).all()  # B: a shadow in every period
    repaired = _repair(data, model, solved, highs, SolveOptions(time_limit=30), None)
    assert repaired.x is not None
    assert _runs_within_two(model.values("shadow", repaired.x))
    assert repaired.objective >= solved.objective - 1e-6


def test_a_repair_whose_lp_runs_out_of_time_cuts_the_runs_without_solving() -> None:
    """The repair's LP gives no answer (its time ran out): the runs too long are cut from the
    round's solution without solving again, their demand counted unmet; the plan keeps the
    time-to-live and every row of the model, rather than falling back to the greedy."""
    from planner.backends import SolveResult
    from planner.backends.strategy import _repair

    data, model = _two_over_quota(())
    highs = get_backend("highs")
    solved = highs.solve(model, SolveOptions(time_limit=30))
    assert solved.x is not None
    assert (model.values("shadow", solved.x) > 1e-6).all()  # both: a shadow in every period

    class OutOfTime:
        name = "out-of-time"

        def solve(self, model, options):  # type: ignore[no-untyped-def]
            return SolveResult(Status.ERROR, self.name, message="time limit, no answer")

    repaired = _repair(data, model, solved, OutOfTime(), SolveOptions(time_limit=30), None)  # type: ignore[arg-type]
    assert repaired.x is not None
    assert "cut without solving again" in repaired.message
    assert model.violations(repaired.x) == []
    shadow = model.values("shadow", repaired.x)
    assert _runs_within_two(shadow)
    assert ((shadow[:, 0] > 1e-6).sum(axis=1) == 4).all()  # two rests of six periods, no more
    # what the cut shadows covered is now unmet, and priced
    assert repaired.objective > solved.objective + 1.0


def test_pulp_imported_first_does_not_crash_the_default_solver() -> None:
    """PuLP 3 loads its own HiGHS when imported; OR-Tools' HiGHS loaded after it crashed the
    process. The default backend then solves with highspy and says so."""
    import subprocess
    import sys
    from pathlib import Path

    tests = Path(__file__).resolve().parent
    code = (
        "import pulp\n"
        "import sys\n"
        f"sys.path.insert(0, {str(tests)!r})\n"
        "from test_mip_cases import START, loan_case\n"
        "from planner.mip import plan_mip\n"
        "org, profiles = loan_case()\n"
        "plan = plan_mip(org, profiles, start=START, solver='highs')\n"
        "print(plan.report.status.value, any('highspy used' in m for m in plan.report.messages))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, check=False
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split()[-2:] == ["optimal", "True"]


def test_values_that_break_the_model_are_not_a_solution() -> None:
    """A backend that hands back an unfinished iterate as "feasible" (PuLP at an LP's time
    limit) gets status error and no values."""
    from planner.backends.base import finish, infeasibility

    org, profiles = loan_case()
    model = build_model(problem_data(org, profiles, start=START))
    good = get_backend("highs").solve(model, SolveOptions(time_limit=30))
    assert good.x is not None
    assert infeasibility(model, good.x) <= 1e-6
    bad = finish(model, "x", Status.FEASIBLE, good.x * 0.0 - 1.0, None, None, 0.1, "stopped")
    assert bad.status is Status.ERROR
    assert bad.x is None
    assert "break the model" in bad.message


def test_large_lps_go_to_clp_under_the_default_solver_only(monkeypatch) -> None:
    from planner.backends import strategy
    from planner.formulation.synthetic import START as SYN_START
    from planner.formulation.synthetic import make_organisation

    calls: list[tuple[str, bool, int]] = []

    class Spy(strategy.Backend):
        def __init__(self, inner: strategy.Backend) -> None:
            self.inner = inner

        def solve(self, model, options):  # type: ignore[no-untyped-def]
            calls.append((self.inner.name, model.is_mip, model.num_vars))
            return self.inner.solve(model, options)

    org, profiles = make_organisation(6, 2, 6, seed=3)
    data = problem_data(org, profiles, start=SYN_START)
    small_model = build_model(strategy.subset(data, [0]))
    monkeypatch.setattr(strategy, "LARGE_LP_COLUMNS", small_model.num_vars)
    router = strategy.LpRouter(Spy(get_backend("highs")), Spy(get_backend("clp")))
    monkeypatch.setattr(strategy, "default_backend", lambda: router)
    opts = SolveOptions(time_limit=30, threads=1)
    sol = strategy.solve_negotiation(data, solver=None, options=opts, fast=True)
    assert sol.status in (Status.OPTIMAL, Status.FEASIBLE)
    assert calls
    assert all(name == "clp" for name, is_mip, n in calls if not is_mip)
    assert any("solved by CLP" in m for m in sol.messages)
    # the same LPs through the LP solver named by the caller: no routing
    calls.clear()
    named = strategy.solve_negotiation(data, solver="highs", options=opts, fast=True)
    assert named.objective == pytest.approx(sol.objective, rel=1e-6)
    assert not calls
    assert not any("solved by CLP" in m for m in named.messages)


def test_a_large_lp_that_clp_fails_is_solved_again_by_highs(monkeypatch) -> None:
    from planner.backends import strategy
    from planner.formulation.synthetic import START as SYN_START
    from planner.formulation.synthetic import make_organisation

    class Broken(strategy.Backend):
        name = "clp"

        def solve(self, model, options):  # type: ignore[no-untyped-def]
            raise RuntimeError("no CLP in this build")

    org, profiles = make_organisation(6, 1, 6, seed=3)
    model = build_model(problem_data(org, profiles, start=SYN_START))
    monkeypatch.setattr(strategy, "LARGE_LP_COLUMNS", 1)
    router = strategy.LpRouter(get_backend("highs"), Broken())
    res = router.solve(model, SolveOptions(time_limit=30))
    direct = get_backend("highs").solve(model, SolveOptions(time_limit=30))
    assert res.status is Status.OPTIMAL
    assert res.objective == pytest.approx(direct.objective, rel=1e-6)
    assert "clp failed: no CLP in this build" in res.message
    assert "highs solved it again" in res.message
    assert router.used_large == 1


def test_parts_in_threads_give_the_plan_of_parts_in_turn() -> None:
    from planner.backends.strategy import solve_negotiation
    from planner.formulation.synthetic import START as SYN_START
    from planner.formulation.synthetic import make_organisation

    org, profiles = make_organisation(12, 3, 8, seed=5)
    data = problem_data(org, profiles, start=SYN_START)
    one = solve_negotiation(data, solver="highs", options=SolveOptions(time_limit=60, threads=1))
    three = solve_negotiation(data, solver="highs", options=SolveOptions(time_limit=60, threads=3))
    assert one.status is three.status is Status.OPTIMAL
    assert three.objective == pytest.approx(one.objective, rel=1e-6)
    assert three.bound == pytest.approx(one.bound, rel=1e-6)
    for name, values in one.values.items():
        assert three.values[name].shape == values.shape
    assert np.allclose(three.values["unmet"].sum(axis=(0, 2)), one.values["unmet"].sum(axis=(0, 2)))
    assert any("3 parts (one per resource) solved 3 at a time" in m for m in three.messages)
    assert not any("at a time" in m for m in one.messages)
