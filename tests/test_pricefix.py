"""Price and fix (planner.backends.pricefix): the large-part path of the default solver.

The path is taken for parts of ``PRICE_FIX_COLUMNS`` columns or more (500 accounts and up);
here the threshold is lowered so that small organisations, whose exact optimum HiGHS finds in
a second, take it and can be compared with that optimum.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from models import Status
from planner.backends import SolveOptions, get_backend, pricefix
from planner.backends.base import infeasibility
from planner.backends.strategy import solve_priced, subset, ttl_breaks
from planner.formulation import build_model, problem_data
from planner.formulation.core import ModelBuilder
from planner.formulation.synthetic import START, make_organisation
from planner.mip import plan_mip
from planner.verify import verify_plan


def _org(n: int = 60, seed: int = 3, ttl: int = 2):  # type: ignore[no-untyped-def]
    org, profiles = make_organisation(n, 2, 24, seed=seed)
    # a short time-to-live so that shadows break it and the per-account programs run
    rules = org.rules.model_copy(update={"shadow_ttl_periods": ttl})
    return org.model_copy(update={"rules": rules}), profiles


def _part(n: int = 60, seed: int = 3):  # type: ignore[no-untyped-def]
    org, profiles = _org(n, seed)
    data = subset(problem_data(org, profiles, start=START), [0])
    data = dataclasses.replace(data, ttl_mask=np.zeros(data.carry.shape, dtype=bool))
    return data, build_model(data)


def test_priced_out_is_a_lower_bound_for_any_prices_and_tight_at_the_duals() -> None:
    _data, model = _part()
    highs = get_backend("highspy")
    exact = highs.solve(model, SolveOptions())
    assert exact.status is Status.OPTIMAL
    assert exact.duals is not None
    rng = np.random.default_rng(0)
    for _ in range(5):
        # any prices, wrong signs included: those are set to 0 and the bound stays valid
        y = rng.normal(scale=50.0, size=model.num_rows)
        relaxed, _ = pricefix.relaxation(model, y)
        low = highs.solve(relaxed, SolveOptions())
        assert low.status is Status.OPTIMAL
        assert low.objective <= exact.objective + 1e-6 * abs(exact.objective)
    relaxed, _note = pricefix.relaxation(model, exact.duals)
    low = highs.solve(relaxed, SolveOptions())
    assert low.objective == pytest.approx(exact.objective, rel=1e-6)
    assert relaxed.num_rows == model.num_rows - sum(
        model.families[f].size for f in pricefix.COUPLING
    )


def test_pieces_are_the_accounts_once_coupling_rows_are_priced_out() -> None:
    _data, model = _part(n=25)
    relaxed, _ = pricefix.relaxation(model, np.zeros(model.num_rows))
    col_of, _ = pricefix.pieces(relaxed)
    quota = model.blocks["quota"]
    labels = col_of[quota.offset : quota.offset + quota.size]
    assert len(set(labels.tolist())) == 25  # one piece per account
    # the whole model is one piece
    whole, _ = pricefix.pieces(model)
    assert len(set(whole.tolist())) == 1


def test_implied_bounds_raise_a_quota_to_what_it_has_lent() -> None:
    b = ModelBuilder("tiny")
    b.add_block("quota", ("a",), (["x", "y"],), upper=np.array([10.0, 10.0]), doc="")
    b.add_block("lend", ("a",), (["x", "y"],), lower=np.array([3.0, 0.0]), upper=5.0, doc="")
    b.add_block("borrow", ("a",), (["x", "y"],), upper=np.array([2.0, 2.0]), doc="")
    f = b.add_family("lend_within_quota", ("a",), (["x", "y"],), upper=0.0)
    b.add_terms("lend_within_quota", "lend", f.index(), b.blocks["lend"].index(), 1.0)
    b.add_terms("lend_within_quota", "quota", f.index(), b.blocks["quota"].index(), -1.0)
    g = b.add_family("ceiling", ("a",), (["x", "y"],), upper=np.array([8.0, 8.0]))
    b.add_terms("ceiling", "quota", g.index(), b.blocks["quota"].index(), 1.0)
    b.add_terms("ceiling", "borrow", g.index(), b.blocks["borrow"].index(), 1.0)
    m = b.build()
    q = m.blocks["quota"]
    lo, hi = pricefix.implied_bounds(m, slice(q.offset, q.offset + q.size))
    assert lo.tolist() == [3.0, 0.0]  # x lent 3, so its quota is at least 3
    assert hi.tolist() == [8.0, 8.0]  # the ceiling, borrowing at least 0


def test_fixed_quotas_fit_their_bounds_and_the_reserve() -> None:
    data, model = _part()
    q = model.blocks["quota"]
    x = np.zeros(model.num_vars)
    x[q.offset : q.offset + q.size] = 1e6  # far above every bound and the reserve
    quotas = pricefix.fixed_quotas(model, data, x)
    assert quotas.sum() <= (data.capacity - data.reserve).sum() + 1e-6
    assert (quotas >= model.lower[q.offset : q.offset + q.size].reshape(q.shape) - 1e-9).all()
    fixed = pricefix.with_quotas(model, quotas)
    assert get_backend("highspy").solve(fixed, SolveOptions()).x is not None


def test_cut_runs_keeps_every_row_and_moves_the_shadow_to_unmet() -> None:
    _data, model = _part()
    res = get_backend("highspy").solve(model, SolveOptions())
    assert res.x is not None
    shadow = model.values("shadow", res.x)
    gaps = shadow > 1e-6
    assert gaps.any()
    cut = pricefix.cut_runs(model, res.x, gaps)
    assert infeasibility(model, cut) <= 1e-6
    assert (model.values("shadow", cut)[gaps] == 0).all()
    assert model.objective(cut) >= model.objective(res.x) - 1e-6


def test_warm_lp_matches_a_cold_solve_after_bound_changes() -> None:
    data, model = _part()
    exact = get_backend("highspy").solve(model, SolveOptions())
    assert exact.x is not None
    quotas = model.values("quota", exact.x)
    warm = pricefix.WarmLP(model, SolveOptions())
    rests = np.zeros(data.demand.shape, dtype=bool)
    x = warm.solve(quotas, rests, None)
    assert x is not None
    assert model.objective(x) == pytest.approx(exact.objective, rel=1e-7)
    rests[:5, 0, ::3] = True
    x2 = warm.solve(quotas, rests, None)
    assert x2 is not None
    cold = pricefix.with_quotas(model, quotas)
    upper = cold.upper.copy()
    s = model.blocks["shadow"]
    upper[s.offset : s.offset + s.size][rests.ravel()] = 0.0
    again = get_backend("highspy").solve(cold.with_bounds(cold.lower, upper), SolveOptions())
    assert model.objective(x2) == pytest.approx(again.objective, rel=1e-7)


@pytest.mark.parametrize("seed", [3, 11])
def test_price_and_fix_plans_verify_and_their_bound_is_below_the_optimum(
    monkeypatch: pytest.MonkeyPatch, seed: int
) -> None:
    org, profiles = _org(n=30, seed=seed, ttl=4)
    exact = plan_mip(org, profiles, start=START, solver="highs", time_limit=10)
    assert exact.report.objective is not None
    assert exact.report.bound is not None
    monkeypatch.setattr(pricefix, "PRICE_FIX_COLUMNS", 0)
    plan = plan_mip(org, profiles, start=START, time_limit=60)
    assert plan.report.fallback is None
    assert verify_plan(org, plan, profiles) == []  # time-to-live included
    text = " ".join(plan.report.messages)
    assert "price and fix" in text
    assert plan.report.bound is not None
    assert plan.report.objective is not None
    # bound <= optimum <= any plan's objective: each side checked against HiGHS's whole model
    assert plan.report.bound <= exact.report.objective * (1 + 1e-6)
    assert plan.report.objective >= exact.report.bound * (1 - 1e-6)
    assert plan.report.gap is not None
    assert plan.report.gap < 0.05
    assert plan.report.objective <= exact.report.objective * 1.05


def test_shadows_that_break_the_time_to_live_get_their_own_programs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org, profiles = _org(seed=3, ttl=1)
    data = problem_data(org, profiles, start=START)
    part = dataclasses.replace(subset(data, [0]), ttl_mask=np.zeros((60, 1), dtype=bool))
    model = build_model(part)
    lp = get_backend("highspy").solve(model, SolveOptions())
    assert lp.x is not None
    assert ttl_breaks(model.values("shadow", lp.x), part.carry, 1).any()  # the case is real
    monkeypatch.setattr(pricefix, "PRICE_FIX_COLUMNS", 0)
    plan = plan_mip(org, profiles, start=START, time_limit=60)
    assert verify_plan(org, plan, profiles) == []
    assert "broke the shadow time-to-live" in " ".join(plan.report.messages)


def test_a_failing_first_order_method_falls_back_to_the_whole_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    org, profiles = _org(n=20, ttl=6)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("no PDLP here")

    monkeypatch.setattr(pricefix, "PRICE_FIX_COLUMNS", 0)
    monkeypatch.setattr(pricefix, "first_order", broken)
    plan = plan_mip(org, profiles, start=START, time_limit=60)
    assert plan.report.fallback is None
    assert verify_plan(org, plan, profiles) == []
    text = " ".join(plan.report.messages)
    assert "no PDLP here" in text
    assert "solved whole" in text


def test_a_failing_time_to_live_round_never_returns_a_plan_that_breaks_the_rule(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the first round's LP fails (a time limit): its rests were never solved with, so the
    # earlier solution must be cut, and whatever comes back keeps the time-to-live
    org, profiles = _org(seed=3, ttl=1)
    data = subset(problem_data(org, profiles, start=START), [0])
    data = dataclasses.replace(data, ttl_mask=np.zeros(data.carry.shape, dtype=bool))
    model = build_model(data)
    solve = pricefix.WarmLP.solve
    calls = {"n": 0}

    def flaky(self: pricefix.WarmLP, *args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 2:
            self.status = "Time limit reached"
            return None
        return solve(self, *args, **kwargs)

    monkeypatch.setattr(pricefix.WarmLP, "solve", flaky)
    res, why = solve_priced(data, model, SolveOptions(), None)
    assert calls["n"] >= 2
    assert res is not None, why
    assert res.x is not None
    assert not ttl_breaks(model.values("shadow", res.x), data.carry, 1).any()
    assert "gave no plan" in res.message
    assert res.status is not Status.OPTIMAL or res.bound is not None


def test_hard_thresholds_keep_the_whole_model(monkeypatch: pytest.MonkeyPatch) -> None:
    org, profiles = make_organisation(20, 1, 24, seed=1, hard_thresholds=True)
    data = problem_data(org, profiles, start=START)
    monkeypatch.setattr(pricefix, "PRICE_FIX_COLUMNS", 0)
    assert not pricefix.applies(build_model(data))
    org2, profiles2 = make_organisation(20, 1, 24, seed=1)
    assert pricefix.applies(build_model(problem_data(org2, profiles2, start=START)))


def test_price_and_fix_never_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    data, model = _part(n=20)

    def boom(*args: object, **kwargs: object) -> None:
        raise MemoryError("out of memory in HiGHS")

    monkeypatch.setattr(pricefix, "WarmLP", boom)
    res, why = solve_priced(data, model, SolveOptions(), None)
    assert res is None
    assert "out of memory" in why
