"""PuLP backends (CBC, HiGHS): the modelling-layer peer.

PuLP builds term by term: one ``LpVariable`` per column and one ``LpAffineExpression`` per row
of the same matrix. It reports "Optimal" when CBC stops at its time limit, so the status is read
from ``sol_status`` (optimal / integer feasible / none), not ``status``.
Passthrough: keyword arguments of the PuLP solver class (``{"msg": True}``, ...).
"""

from __future__ import annotations

import contextlib
import math
import time
from typing import Any, ClassVar

import numpy as np

from models import Status
from planner.backends.base import (
    Backend,
    SolveOptions,
    SolveResult,
    SolverUnavailableError,
    finish,
)
from planner.formulation.core import LinearModel


def import_pulp() -> Any:
    """``pulp``, imported after OR-Tools' ``model_builder`` helper.

    PuLP 3 loads its own HiGHS library into the process when it is imported; an OR-Tools HiGHS
    solve that loads OR-Tools' helper only afterwards crashes the process (a segmentation
    fault in ``HighsSolveProto``). Loading OR-Tools' helper first keeps both usable.
    """
    with contextlib.suppress(ImportError):
        import ortools.linear_solver.python.model_builder_helper  # noqa: F401
    import pulp

    return pulp


def to_pulp(model: LinearModel) -> tuple[Any, list[Any]]:
    """The model as a ``pulp.LpProblem``, built variable by variable and row by row."""
    pulp = import_pulp()

    prob = pulp.LpProblem("negotiation", pulp.LpMinimize)
    xs = []
    for j in range(model.num_vars):
        lo, hi = model.lower[j], model.upper[j]
        xs.append(
            pulp.LpVariable(
                f"x{j}",
                lowBound=None if math.isinf(lo) else float(lo),
                upBound=None if math.isinf(hi) else float(hi),
                cat=pulp.LpInteger if model.integer[j] else pulp.LpContinuous,
            )
        )
    nz = np.flatnonzero(model.cost)
    prob += pulp.LpAffineExpression([(xs[j], float(model.cost[j])) for j in nz]) + model.offset
    m = model.matrix
    for i in range(model.num_rows):
        lo, hi = model.row_lower[i], model.row_upper[i]
        s, e = m.indptr[i], m.indptr[i + 1]
        expr = pulp.LpAffineExpression(
            [(xs[j], float(v)) for j, v in zip(m.indices[s:e], m.data[s:e], strict=True)]
        )
        if lo == hi:
            prob += expr == float(lo), f"r{i}"
        else:
            if not math.isinf(lo):
                prob += expr >= float(lo), f"r{i}_lo"
            if not math.isinf(hi):
                prob += expr <= float(hi), f"r{i}_hi"
    return prob, xs


class _PulpBackend(Backend):
    module = "pulp"
    features = frozenset({"mip", "lp"})
    solver_class: ClassVar[str] = ""

    def make_solver(self, options: SolveOptions) -> Any:
        """The PuLP solver object for the common options."""
        pulp = import_pulp()

        cls = getattr(pulp, self.solver_class)
        kwargs: dict[str, Any] = {"msg": False, "gapRel": options.relative_gap}
        if options.time_limit is not None:
            kwargs["timeLimit"] = max(options.time_limit, 0.01)
        if options.threads:
            kwargs["threads"] = options.threads
        kwargs.update(dict(options.passthrough))
        solver = cls(**kwargs)
        if not solver.available():
            raise SolverUnavailableError(f"PuLP's {self.solver_class} is not available here")
        return solver

    def solve(self, model: LinearModel, options: SolveOptions) -> SolveResult:
        """Build term by term, solve, read ``sol_status``."""
        pulp = import_pulp()

        t0 = time.perf_counter()
        prob, xs = to_pulp(model)
        build = time.perf_counter() - t0
        solver = self.make_solver(options)
        prob.solve(solver)
        seconds = time.perf_counter() - t0
        sol = prob.sol_status
        if sol == pulp.LpSolutionOptimal:
            status = Status.OPTIMAL
        elif sol == pulp.LpSolutionIntegerFeasible:
            status = Status.FEASIBLE
        elif sol == pulp.LpSolutionInfeasible:
            status = Status.INFEASIBLE
        elif sol == pulp.LpSolutionUnbounded:
            status = Status.UNBOUNDED
        else:
            status = Status.ERROR
        x = None
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            x = np.array([v.varValue if v.varValue is not None else 0.0 for v in xs])
        message = (
            f"{self.name}: status {pulp.LpStatus[prob.status]}, sol_status {sol}; "
            f"term-by-term build {build:.2f} s"
        )
        return finish(model, self.name, status, x, None, None, seconds, message)


class PulpCbcBackend(_PulpBackend):
    """CBC bundled with PuLP."""

    name = "pulp-cbc"
    solver_class = "PULP_CBC_CMD"
    description = "CBC via PuLP (term-by-term build)"


class PulpHighsBackend(_PulpBackend):
    """HiGHS through PuLP's highspy interface."""

    name = "pulp-highs"
    module = "highspy"
    solver_class = "HiGHS"
    description = "HiGHS via PuLP (term-by-term build)"

    @classmethod
    def is_available(cls) -> bool:
        """Both PuLP and highspy must be installed."""
        import importlib.util

        return (
            importlib.util.find_spec("pulp") is not None
            and importlib.util.find_spec("highspy") is not None
        )
