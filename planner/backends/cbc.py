"""CBC through OR-Tools ``pywraplp`` (``model_builder`` has no CBC).

The arrays go in as one ``MPModelProto`` (exported by ``model_builder``), not term by term.
Passthrough: ``{"parameters": "<CBC parameter string>"}``.
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

    def solve(self, model: LinearModel, options: SolveOptions) -> SolveResult:
        """Solve with pywraplp CBC; map its result status to :class:`models.Status`."""
        import importlib

        pywraplp: Any = importlib.import_module("ortools.linear_solver.pywraplp")
        linear_solver_pb2: Any = importlib.import_module("ortools.linear_solver.linear_solver_pb2")

        t0 = time.perf_counter()
        solver = pywraplp.Solver.CreateSolver("CBC")
        if solver is None:
            raise SolverUnavailableError("OR-Tools was built without CBC")
        proto = to_ortools(model).export_to_proto()
        err = solver.LoadModelFromProto(proto)
        if err:
            raise SolverUnavailableError(f"CBC could not load the model: {err}")
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
        x = None
        obj = bound = None
        if status in (Status.OPTIMAL, Status.FEASIBLE):
            response = linear_solver_pb2.MPSolutionResponse()
            solver.FillSolutionResponseProto(response)
            x = np.asarray(response.variable_value, dtype=np.float64)
            obj = solver.Objective().Value()
            bound = solver.Objective().BestBound() if model.is_mip else obj
        return finish(model, self.name, status, x, obj, bound, seconds, f"cbc: status {native}")
