"""HiGHS through ``highspy`` directly (the model's CSC arrays passed in one call).

Passthrough: any HiGHS option by name, e.g. ``{"presolve": "off", "mip_heuristic_effort": 0.1}``.
"""

from __future__ import annotations

import math
import os
import sys
import threading
import time
from typing import Any, cast

import numpy as np

from models import Status
from planner.backends.base import Backend, SolveOptions, SolveResult, finish
from planner.formulation.core import LinearModel

_BANNER_SHOWN = False
_BANNER_LOCK = threading.Lock()  # parts solve in threads; file descriptor 1 is shared


def _new_highs(highspy: Any, *, quiet: bool) -> Any:
    """A ``highspy.Highs``; the first one of a process prints HiGHS's banner on the process's
    standard output before any option can be set, so unless output is asked for it is made
    with file descriptor 1 pointed at ``os.devnull``."""
    global _BANNER_SHOWN
    with _BANNER_LOCK:
        if _BANNER_SHOWN or not quiet:
            _BANNER_SHOWN = True
            return highspy.Highs()
        return _quiet_highs(highspy)


def _quiet_highs(highspy: Any) -> Any:
    global _BANNER_SHOWN
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 1)
            h = highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    _BANNER_SHOWN = True
    return h


class HighspyBackend(Backend):
    """HiGHS via highspy, no modelling layer in between."""

    name = "highspy"
    module = "highspy"
    features = frozenset({"mip", "lp", "duals"})
    description = "HiGHS via highspy (direct arrays)"

    def solve(self, model: LinearModel, options: SolveOptions) -> SolveResult:
        """Solve with highspy; map ``HighsModelStatus`` to :class:`models.Status`."""
        import highspy

        t0 = time.perf_counter()
        h = load_highs(model, options)
        h.run()
        seconds = time.perf_counter() - t0
        ms = h.getModelStatus()
        info = h.getInfo()
        has = info.primal_solution_status == 2  # kSolutionStatusFeasible
        M = highspy.HighsModelStatus
        if ms == M.kOptimal:
            status = Status.OPTIMAL
        elif ms == M.kInfeasible:
            status = Status.INFEASIBLE
        elif ms in (M.kUnbounded, M.kUnboundedOrInfeasible):
            status = Status.UNBOUNDED if ms == M.kUnbounded else Status.INFEASIBLE
        elif has:
            status = Status.FEASIBLE
        else:
            status = Status.ERROR
        x = duals = None
        bound: float | None = None
        if has:
            sol = h.getSolution()
            x = np.asarray(sol.col_value)
            if model.is_mip:
                bound = float(info.mip_dual_bound)
            elif status is Status.OPTIMAL:
                duals = np.asarray(sol.row_dual)
        obj = float(info.objective_function_value) if has else math.inf
        message = f"highspy: {h.modelStatusToString(ms)}"
        return finish(model, self.name, status, x, obj, bound, seconds, message, duals)


def load_highs(model: LinearModel, options: SolveOptions) -> Any:
    """A ``highspy.Highs`` holding ``model`` (its CSC arrays passed in one call), with the
    common options and the passthrough set."""
    import highspy

    h = _new_highs(highspy, quiet=not options.passthrough.get("output", False))
    h.setOptionValue("output_flag", bool(options.passthrough.get("output", False)))
    h.setOptionValue("mip_rel_gap", float(options.relative_gap))
    h.setOptionValue("random_seed", int(options.seed))
    if options.time_limit is not None:
        h.setOptionValue("time_limit", float(max(options.time_limit, 1e-3)))
    if options.threads:
        h.setOptionValue("threads", int(options.threads))
    for key, value in options.passthrough.items():
        if key != "output":
            h.setOptionValue(key, cast(Any, value))
    lp = highspy.HighsLp()
    csc = model.matrix.tocsc()
    lp.num_col_ = model.num_vars
    lp.num_row_ = model.num_rows
    lp.col_cost_ = model.cost
    lp.col_lower_ = model.lower
    lp.col_upper_ = model.upper
    lp.row_lower_ = model.row_lower
    lp.row_upper_ = model.row_upper
    lp.offset_ = model.offset
    lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    lp.a_matrix_.start_ = csc.indptr.astype(np.int32)
    lp.a_matrix_.index_ = csc.indices.astype(np.int32)
    lp.a_matrix_.value_ = csc.data
    lp.a_matrix_.num_col_ = model.num_vars
    lp.a_matrix_.num_row_ = model.num_rows
    if model.is_mip:
        lp.integrality_ = [
            highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous
            for i in model.integer
        ]
    h.passModel(lp)
    return h
