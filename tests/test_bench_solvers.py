"""``benchmarks/solvers.py``: a small run end to end, and the PuLP term-by-term peer is the same
model as the array-built one."""

from __future__ import annotations

import math
from pathlib import Path
from types import ModuleType

import pandas as pd
import pytest
from benchmark_module import load_benchmark

from planner.backends import SolveOptions, get_backend
from planner.formulation import build_model, problem_data
from planner.formulation.synthetic import START, make_organisation

ROOT = Path(__file__).resolve().parents[1]


def _benchmark() -> ModuleType:
    return load_benchmark("solvers")


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    # the module loads OR-Tools before PuLP (see its imports): importing PuLP first would make
    # OR-Tools' HiGHS crash later in this process
    module = _benchmark()
    pytest.importorskip("pulp")
    return module


def test_small_run_writes_sane_results(bench: ModuleType, tmp_path: Path) -> None:
    args = [
        "--sizes",
        "20",
        "--backends",
        "highspy",
        "--time-limit",
        "3",
        "--greedy-scale",
        "300",
        "--pulp-solve-max",
        "0",
        "--data-dir",
        str(tmp_path / "no-data"),  # the synthetic fallback: fast and independent of the data
        "--out",
        str(tmp_path),
    ]
    assert bench.main(args) == 0
    table = pd.read_csv(tmp_path / "solvers.csv")
    text = (tmp_path / "solvers.md").read_text()
    assert "## Targets" in text
    assert "shared 2-core machine" in text
    assert "synthetic" in text  # says the shapes were not from the trace

    build = table[table["part"] == "build"].iloc[0]
    assert build["vars"] > 0
    assert build["rows"] > 0
    assert 0 < build["array_build_s"] < build["pulp_build_s"]
    assert bool(build["identical"])

    solve = table[table["part"] == "solve"].set_index("method")
    assert {"greedy", "greedy-strict", "mip-fast", "mip"} <= set(solve.index)
    # every plan is verified, the fallback's too; the exact mode's outcome depends on the
    # machine's load within the time limit, the fast mode's LP is quick at this size
    assert (solve["violations"] == 0).drop("greedy-strict").all()
    # the default solver (solver=None) has rows of its own, beside each backend as named
    assert set(solve.loc[["mip"], "solver"]) == {"default", "highspy"}
    assert solve.loc["mip-fast", "solver"] == "default"
    for _, mip in solve.loc[["mip"]].iterrows():
        assert mip["status"] in ("optimal", "feasible", "error", "infeasible")
    fast = solve.loc["mip-fast"]
    assert fast["status"] in ("optimal", "feasible")
    assert not bool(fast["fallback"])
    assert fast["bound"] <= fast["objective"] * (1 + 1e-6)
    assert bool(fast["consistent"])
    assert fast["vs_best_mip"] >= -1e-9
    # the greedy is priced like the program and cannot beat the LP bound
    greedy = solve.loc["greedy"]
    assert greedy["violations"] == 0
    assert greedy["evaluated"] >= fast["bound"] * (1 - 1e-6)
    assert greedy["vs_best_mip"] >= -1e-6
    assert (solve["evaluated"] > 0).all()

    scale = table[table["part"] == "greedy-scale"].iloc[0]
    assert scale["size"] == 300
    assert 0 < scale["wall_s"] < 30

    # the page can be rebuilt from the CSV alone
    (tmp_path / "solvers.md").unlink()
    assert bench.main(["--report-only", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "solvers.md").read_text() == text


@pytest.mark.parametrize("hard", [False, True])
def test_pulp_peer_has_the_same_variables_and_rows(bench: ModuleType, hard: bool) -> None:
    org, profiles = make_organisation(12, 2, 10, seed=5, hard_thresholds=hard)
    data = bench.full_data(problem_data(org, profiles, start=START))
    model = build_model(data)
    prob, variables = bench.pulp_model(data)
    assert bench.compare_structure(model, prob, variables) == []
    # and the comparison notices a difference
    next(iter(variables["quota"].values())).upBound = 1e9
    assert bench.compare_structure(model, prob, variables) != []


def test_pulp_peer_solves_to_the_same_objective(bench: ModuleType) -> None:
    pytest.importorskip("highspy")
    import pulp

    org, profiles = make_organisation(20, 2, 12, seed=0, integral=True)
    data = bench.full_data(problem_data(org, profiles, start=START))
    model = build_model(data)
    assert model.is_mip  # the time-to-live binaries are in
    ours = get_backend("highspy").solve(model, SolveOptions(relative_gap=1e-9, time_limit=60))
    prob, _ = bench.pulp_model(data)
    status = bench.solve_peer(prob, 60, relative_gap=1e-9)
    assert status == pulp.LpSolutionOptimal
    assert ours.status.value == "optimal"
    theirs = pulp.value(prob.objective)
    assert math.isclose(theirs, ours.objective, rel_tol=1e-6)
