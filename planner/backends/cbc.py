"""COIN-OR CBC and CLP through OR-Tools ``pywraplp`` (``model_builder`` has neither).

The arrays go in as one ``MPModelProto`` (exported by ``model_builder``), not term by term.
Passthrough: ``{"parameters": "<CBC or CLP parameter string>"}``.

CLP (COIN-OR's simplex) is an LP solver; on the negotiation's LP at 1,000 accounts x 24 periods
(98,000 columns, 79,593 rows, one resource) its dual simplex took 14.5 s where HiGHS's took
38 s, HiGHS's interior point 40 s, PDLP 36 s and GLOP 56 s (one run each, 2-core machine), so
the solving strategy hands large LPs to it (:mod:`planner.backends.strategy`).
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from models import Status
from planner.backends.base import (
    Backend,
    SolveOptions,
    SolveResult,
    SolverUnavailableError,
    finish,
)
from planner.backends.ortools_mb import to_ortools
from planner.formulation.core import LinearModel


class CbcBackend(Backend):
    """COIN-OR CBC via OR-Tools pywraplp."""

    name = "cbc"
    module = "ortools"
    features = frozenset({"mip", "lp"})
    description = "CBC via OR-Tools pywraplp"
    solver_id = "CBC"

    def solve(self, model: LinearModel, options: SolveOptions) -> SolveResult:
        """Solve with pywraplp; map its result status to :class:`models.Status`."""
        import importlib

        pywraplp: Any = importlib.import_module("ortools.linear_solver.pywraplp")
        linear_solver_pb2: Any = importlib.import_module("ortools.linear_solver.linear_solver_pb2")

        t0 = time.perf_counter()
        solver = pywraplp.Solver.CreateSolver(self.solver_id)
        if solver is None:
            raise SolverUnavailableError(f"OR-Tools was built without {self.solver_id}")
        proto = to_ortools(model).export_to_proto()
        err = solver.LoadModelFromProto(proto)
        if err:
            raise SolverUnavailableError(f"{self.solver_id} could not load the model: {err}")
        if options.time_limit is not None:
            solver.SetTimeLimit(int(max(options.time_limit, 1e-3) * 1000))
        if options.threads:
            solver.SetNumThreads(int(options.threads))
        extra = options.passthrough.get("parameters")
        if extra:
            solver.SetSolverSpecificParametersAsString(str(extra))
        params = pywraplp.MPSolverParameters()
        params.SetDoubleParam(params.RELATIVE_MIP_GAP, float(options.relative_gap))
        native = solver.Solve(params)
        seconds = time.perf_counter() - t0
        status = {
            pywraplp.Solver.OPTIMAL: Status.OPTIMAL,
            pywraplp.Solver.FEASIBLE: Status.FEASIBLE,
            pywraplp.Solver.INFEASIBLE: Status.INFEASIBLE,
            pywraplp.Solver.UNBOUNDED: Status.UNBOUNDED,
        }.get(native, Status.ERROR)
        x = duals = None
        obj = bound = None
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            response = linear_solver_pb2.MPSolutionResponse()
            solver.FillSolutionResponseProto(response)
            x = np.asarray(response.variable_value, dtype=np.float64)
            obj = solver.Objective().Value()
            bound = solver.Objective().BestBound() if model.is_mip else obj
            if "duals" in self.features and status is Status.OPTIMAL and len(response.dual_value):
                duals = np.asarray(response.dual_value, dtype=np.float64)
        message = f"{self.name}: status {native}"
        return finish(model, self.name, status, x, obj, bound, seconds, message, duals)


class ClpBackend(CbcBackend):
    """COIN-OR CLP via OR-Tools pywraplp: LPs only (a model with integers is relaxed)."""

    name = "clp"
    features = frozenset({"lp", "duals"})
    description = "CLP via OR-Tools pywraplp (LP only)"
    solver_id = "CLP"

    def solve(self, model: LinearModel, options: SolveOptions) -> SolveResult:
        """Solve the LP (the relaxation of a model with integers) with CLP."""
        return super().solve(model.relaxed() if model.is_mip else model, options)
