"""OR-Tools ``model_builder`` backends: HiGHS (the default), SCIP, CP-SAT and GLOP.

The model's arrays go in with one call (``fill_model_from_sparse_data``); integrality is set
per integer column. Passthrough: ``{"parameters": "<solver-specific string>"}`` is appended to
the parameters built from the common options (HiGHS ``name=value`` lines, SCIP
``section/name = value`` lines, CP-SAT and GLOP protobuf text), and ``{"output": True}`` shows
the solver's log.
"""

from __future__ import annotations

import dataclasses
import sys
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

_HELPER = "ortools.linear_solver.python.model_builder_helper"
_PULP_FIRST: list[bool] = []  # decided once per process, at the first model_builder solve


def _pulp_loaded_first() -> bool:
    """Whether ``pulp`` was imported before OR-Tools' ``model_builder`` helper (judged at the
    first solve through ``model_builder``, before this module loads the helper)."""
    if not _PULP_FIRST:
        _PULP_FIRST.append("pulp" in sys.modules and _HELPER not in sys.modules)
    return _PULP_FIRST[0]


def to_ortools(model: LinearModel, *, names: bool = False) -> Any:
    """The model as an OR-Tools ``model_builder.Model`` (names only when asked: they are slow)."""
    from ortools.linear_solver.python import model_builder as mb

    m = mb.Model()
    h: Any = m.helper
    h.fill_model_from_sparse_data(
        model.lower, model.upper, model.cost, model.row_lower, model.row_upper, model.matrix
    )
    for j in np.flatnonzero(model.integer):
        h.set_var_integrality(int(j), True)
    if model.offset:
        h.set_objective_offset(model.offset)
    if names:
        for col, label in enumerate(model.var_names()):
            h.set_var_name(col, label)
        for row, label in enumerate(model.row_names()):
            h.set_constraint_name(row, label)
    return m


class _ModelBuilderBackend(Backend):
    module = "ortools"
    solver_id: ClassVar[str] = ""

    def parameters(self, options: SolveOptions) -> list[str]:
        """Solver-specific parameter lines for the common options."""
        return []

    def prepare(self, model: LinearModel) -> LinearModel:
        """Adapt the model to what the solver handles (default: as is)."""
        return model

    def solve(self, model: LinearModel, options: SolveOptions) -> SolveResult:
        """Solve through ``model_builder``; statuses mapped to :class:`models.Status`."""
        if _pulp_loaded_first() and self.solver_id == "highs":
            # OR-Tools' HiGHS would crash the process (see pulp_backend.import_pulp): solve
            # with the same HiGHS through highspy and say so
            from planner.backends.highspy_direct import HighspyBackend

            res = HighspyBackend().solve(model, options)
            note = "pulp was imported before OR-Tools, whose HiGHS would crash: highspy used"
            return dataclasses.replace(res, message=f"{note}; {res.message}")
        import ortools.linear_solver.python.model_builder_helper as mbh
        from ortools.linear_solver.python import model_builder as mb

        t0 = time.perf_counter()
        model = self.prepare(model)
        m = to_ortools(model)
        solver: Any = mbh.ModelSolverHelper(self.solver_id)
        if not solver.solver_is_supported():
            raise SolverUnavailableError(f"OR-Tools was built without {self.solver_id}")
        solver.enable_output(bool(options.passthrough.get("output", False)))
        if options.time_limit is not None:
            solver.set_time_limit_in_seconds(max(options.time_limit, 1e-3))
        params = self.parameters(options)
        extra = options.passthrough.get("parameters")
        if extra:
            params.append(str(extra))
        if params:
            solver.set_solver_specific_parameters(self.separator.join(params))
        solver.solve(m.helper)
        seconds = time.perf_counter() - t0
        native = mb.SolveStatus(solver.status())
        status = {
            mb.SolveStatus.OPTIMAL: Status.OPTIMAL,
            mb.SolveStatus.FEASIBLE: Status.FEASIBLE,
            mb.SolveStatus.INFEASIBLE: Status.INFEASIBLE,
            mb.SolveStatus.UNBOUNDED: Status.UNBOUNDED,
        }.get(native, Status.ERROR)
        has = solver.has_solution() and status in (Status.OPTIMAL, Status.FEASIBLE)
        if status is Status.ERROR and solver.has_solution():
            # A time limit with an incumbent comes back as NOT_SOLVED or UNKNOWN_STATUS.
            status, has = Status.FEASIBLE, True
        x = np.asarray(solver.variable_values()) if has else None
        duals = None
        if has and not model.is_mip and "duals" in self.features:
            duals = np.asarray(solver.dual_values())
        bound = solver.best_objective_bound() if has else None
        message = f"{self.name}: {native.name} {solver.status_string()}".strip()
        return finish(
            model,
            self.name,
            status,
            x,
            solver.objective_value() if has else None,
            bound,
            seconds,
            message,
            duals,
        )

    separator: ClassVar[str] = "\n"


class HighsBackend(_ModelBuilderBackend):
    """HiGHS through OR-Tools ``model_builder`` (the default)."""

    name = "highs"
    solver_id = "highs"
    features = frozenset({"mip", "lp", "duals"})
    description = "HiGHS via OR-Tools model_builder (default)"

    def parameters(self, options: SolveOptions) -> list[str]:
        """HiGHS option lines."""
        out = [f"mip_rel_gap={options.relative_gap}", f"random_seed={options.seed}"]
        if not options.passthrough.get("output", False):
            # enable_output(False) alone still lets HiGHS print its banner on stdout.
            out += ["output_flag=false", "log_to_console=false"]
        if options.threads:
            out.append(f"threads={options.threads}")
        return out


class ScipBackend(_ModelBuilderBackend):
    """SCIP through OR-Tools ``model_builder``."""

    name = "scip"
    solver_id = "scip"
    features = frozenset({"mip", "lp"})
    description = "SCIP via OR-Tools model_builder"

    def parameters(self, options: SolveOptions) -> list[str]:
        """SCIP parameter-file lines."""
        return [
            f"limits/gap = {options.relative_gap}",
            f"randomization/randomseedshift = {options.seed}",
        ]


class CpSatBackend(_ModelBuilderBackend):
    """CP-SAT through OR-Tools ``model_builder``, on the integer-scaled model.

    Every variable is made integral (amounts in whole units of each resource), so it applies
    only when the model's bounds and right-hand sides are whole numbers; otherwise it raises
    :class:`SolverUnavailableError` (the planner then falls back). At least 8 workers: with 2-4
    it did not converge on this shape.
    """

    name = "cpsat"
    solver_id = "sat"
    features = frozenset({"mip", "integer_only"})
    description = "CP-SAT via OR-Tools model_builder, integer-scaled model, >= 8 workers"
    separator = " "

    def prepare(self, model: LinearModel) -> LinearModel:
        """Make every column integral (bounds rounded inwards); refuse fractional rows.

        The integer model is a restriction of the continuous one: its solutions are feasible
        plans, but its bound is not a bound of the continuous model (the planner reports it
        as such).
        """
        rows = np.concatenate([model.row_lower, model.row_upper])
        finite = rows[np.isfinite(rows)]
        if not np.allclose(finite, np.round(finite), atol=1e-9):
            raise SolverUnavailableError(
                "cpsat solves only integer-scaled models: some demands, quotas or capacities "
                "are not whole units; use another solver or express amounts in smaller units"
            )
        lower = np.ceil(model.lower - 1e-9)
        upper = np.floor(model.upper + 1e-9)
        return LinearModel(
            **{
                **model.__dict__,
                "integer": np.ones_like(model.integer),
                "lower": lower,
                "upper": np.maximum(upper, lower),
            }
        )

    def parameters(self, options: SolveOptions) -> list[str]:
        """CP-SAT parameters (protobuf text)."""
        workers = max(8, options.threads or 8)
        return [
            f"num_workers:{workers}",
            f"relative_gap_limit:{options.relative_gap}",
            f"random_seed:{options.seed}",
        ]


class GlopBackend(_ModelBuilderBackend):
    """GLOP (OR-Tools' simplex): the LP relaxation only, with duals."""

    name = "glop"
    solver_id = "glop"
    features = frozenset({"lp", "duals"})
    description = "GLOP via OR-Tools model_builder (LP relaxation only)"
    separator = " "

    def prepare(self, model: LinearModel) -> LinearModel:
        """Drop integrality: GLOP solves LPs."""
        return model.relaxed()

    def parameters(self, options: SolveOptions) -> list[str]:
        """GLOP parameters (protobuf text)."""
        return [f"random_seed:{options.seed}"]
