"""What every backend takes and returns: options, result, the backend interface."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from models import Status
from planner.formulation.core import FloatArray, LinearModel


class SolverUnavailableError(RuntimeError):
    """The backend's library is missing or cannot handle this model."""


@dataclass(frozen=True)
class SolveOptions:
    """Common solve options, plus a passthrough handed to the backend as is.

    Parameters
    ----------
    time_limit
        Seconds; ``None`` for no limit.
    relative_gap
        Stop when ``(objective - bound) / |objective|`` is below it.
    threads
        Worker threads; ``None`` lets the backend choose (CP-SAT: at least 8). In
        :func:`planner.backends.strategy.solve_negotiation` also how many parts (one per
        resource) run at once, each with its share (``None``: the cores this process may use).
    seed
        Random seed.
    passthrough
        Backend-specific options (HiGHS option names, SCIP/CP-SAT parameter strings, PuLP
        solver keyword arguments), documented by each backend.
    """

    time_limit: float | None = None
    relative_gap: float = 1e-4
    threads: int | None = None
    seed: int = 0
    passthrough: Mapping[str, object] = field(default_factory=dict)


@dataclass
class SolveResult:
    """One solve's outcome, the same for every backend.

    ``x`` is ``None`` unless there is a feasible solution (never stale values); ``duals`` are
    row duals of an LP when the backend provides them (sign: the objective change per unit
    increase of the row's bound, minimisation).
    """

    status: Status
    solver: str
    x: FloatArray | None = None
    objective: float = math.inf
    bound: float | None = None
    duals: FloatArray | None = None
    solve_seconds: float = 0.0
    message: str = ""

    @property
    def gap(self) -> float | None:
        """``(objective - bound) / max(1, |objective|)`` or ``None`` without both."""
        if self.x is None or self.bound is None or not math.isfinite(self.bound):
            return None
        return max(0.0, (self.objective - self.bound) / max(1.0, abs(self.objective)))


class Backend:
    """A solver behind the registry.

    Subclasses set ``name``, ``module`` (the import that must be present), ``features``
    (``mip``, ``lp``, ``duals``, ``integer_only``) and implement :meth:`solve`.
    """

    name: ClassVar[str] = ""
    module: ClassVar[str] = ""
    features: ClassVar[frozenset[str]] = frozenset()
    description: ClassVar[str] = ""
    _available: ClassVar[dict[str, bool]] = {}

    @classmethod
    def is_available(cls) -> bool:
        """Whether the library is installed (cached; finds the module without importing it)."""
        if cls.name not in Backend._available:
            Backend._available[cls.name] = importlib.util.find_spec(cls.module) is not None
        return Backend._available[cls.name]

    def solve(self, model: LinearModel, options: SolveOptions) -> SolveResult:
        """Solve ``model``; map the native status to :class:`models.Status`."""
        raise NotImplementedError(f"backend {self.name!r} does not implement solve()")


#: Largest relative violation of a row, a bound or integrality accepted in a solution.
FEASIBILITY_TOL = 1e-5


def infeasibility(model: LinearModel, x: FloatArray) -> float:
    """The largest violation of ``x``: of the rows and the bounds, each relative to
    ``max(1, |bound|)``, and of integrality; 0 for a feasible point, ``inf`` for non-finite
    values."""
    if x.shape != (model.num_vars,) or not np.isfinite(x).all():
        return math.inf
    act = model.matrix @ x
    worst = 0.0
    for lo, val, hi in ((model.row_lower, act, model.row_upper), (model.lower, x, model.upper)):
        low, high = np.isfinite(lo), np.isfinite(hi)
        below = (lo[low] - val[low]) / np.maximum(1.0, np.abs(lo[low]))
        above = (val[high] - hi[high]) / np.maximum(1.0, np.abs(hi[high]))
        worst = max(worst, float(below.max(initial=0.0)), float(above.max(initial=0.0)))
    if model.is_mip:
        xi = x[model.integer]
        worst = max(worst, float(np.abs(xi - np.round(xi)).max(initial=0.0)))
    return worst


def finish(
    model: LinearModel,
    solver: str,
    status: Status,
    x: FloatArray | None,
    objective: float | None,
    bound: float | None,
    seconds: float,
    message: str = "",
    duals: FloatArray | None = None,
) -> SolveResult:
    """Build a :class:`SolveResult`, dropping values that are not a feasible solution.

    Values are checked against the model (:func:`infeasibility`): a backend that hands back an
    unfinished iterate as a solution (PuLP says "integer feasible" for an LP stopped at its
    time limit) gets status ``error`` and no values, never a plan that breaks the rules.
    """
    if status not in (Status.OPTIMAL, Status.FEASIBLE) or x is None:
        return SolveResult(status, solver, solve_seconds=seconds, message=message, bound=bound)
    x = np.asarray(x, dtype=np.float64)
    worst = infeasibility(model, x)
    if worst > FEASIBILITY_TOL:
        note = (
            f"{solver}: its values break the model (worst relative violation {worst:.3g}): dropped"
        )
        return SolveResult(
            Status.ERROR, solver, solve_seconds=seconds, message=f"{message}; {note}".strip("; ")
        )
    obj = model.objective(x) if objective is None or not math.isfinite(objective) else objective
    if bound is not None and not math.isfinite(bound):
        bound = None
    if status is Status.OPTIMAL and bound is None:
        bound = obj
    if not model.is_mip and status is Status.OPTIMAL:
        bound = obj
    return SolveResult(status, solver, x, float(obj), bound, duals, seconds, message)
