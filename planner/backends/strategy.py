"""How the negotiation model is solved: decomposition, lazy time-to-live rows, fast mode.

- **Decomposition.** Without extensions, resources share no constraint (capacity, pool,
  coverage and limits are all per resource), so the model splits into one independent model per
  resource; objectives and bounds add up. Extensions (provisioning moves a workload's demand of
  every resource at once) couple them, and the model is solved whole.
- **Lazy time-to-live.** Binaries that enforce a shadow quota's time-to-live are added only for
  the (account, resource) pairs whose solution breaks it, and the model is solved again. A model
  with fewer such rows is a relaxation, so every round's bound is valid; when no pair breaks the
  rule the solution is optimal for the full model.
- **Fast mode.** Solve the LP relaxation, round the binaries (each block's rounder from
  ``model.meta["rounders"]``, else to the nearest integer), force a shadow gap where a run is too
  long, fix them and solve the LP again.
- **Large parts by price and fix.** With the default solver, a part (one resource, no
  extensions) whose first LP has :data:`pricefix.PRICE_FIX_COLUMNS` columns or more is
  solved by :func:`solve_priced`: PDLP's rough LP (HiPDLP) sets the quotas and the coupling rows'
  prices, the rest is solved exactly with the quotas fixed, the time-to-live is settled per
  account at those prices, and the bound is the Lagrangian bound at them
  (:mod:`planner.backends.pricefix`). At 1,000 accounts: a plan in about 10 s within 0.5 %
  of its bound, where the whole model gave none in 60 s. If a step fails, the part is solved
  whole as below.
- **Large LPs.** With the default solver, an LP of :data:`LARGE_LP_COLUMNS` columns or more
  (a round without binaries, fast mode's LPs, a repair) goes to CLP through OR-Tools: 2.6 times
  faster than HiGHS's simplex on the 1,000-account LP (:mod:`planner.backends.cbc`); when CLP
  fails, HiGHS solves it again in the time left. A named solver is always used as named.
- **Parts in parallel.** The parts run in threads (the solvers release the GIL), as many at a
  time as ``options.threads`` allows (default: the cores this process may use), each with its
  share of those threads; each wave of parts shares the time limit. ``build_seconds`` and
  ``solve_seconds`` are then summed over the parts (thread time, not wall time).
- **Repair.** When a time-to-live round finds no solution in its time (or the last round
  still breaks the rule), the previous round's solution is repaired the same way: its integer
  columns fixed, shadow runs cut where they are too long, the LP solved again. The plan is
  feasible, its bound still valid, and ``messages`` says so. When the first round of a
  mixed-integer model (provisioning binaries) finds no solution in its time, fast mode
  answers with the time kept for it, before any greedy fallback.
"""

from __future__ import annotations

import dataclasses
import functools
import importlib
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from models import Status
from planner.backends import (
    Backend,
    SolveOptions,
    SolveResult,
    get_backend,
    pricefix,
)
from planner.backends.base import finish
from planner.backends.cbc import ClpBackend
from planner.backends.ortools_mb import HighsBackend
from planner.formulation import Extension, LinearModel, ProblemData, build_model
from planner.formulation.allocation import unmet_values
from planner.formulation.core import FloatArray

SHADOW_EPS = 1e-6
#: LPs with at least this many columns go to CLP under the default solver (at 300 accounts,
#: 29,400 columns, CLP took 1.0 s and HiGHS 1.7 s; below, both take a fraction of a second).
LARGE_LP_COLUMNS = 20_000
BASE_BLOCKS = {"quota": 2, "churn": 2, "shadow": 3, "lend": 3, "borrow": 3, "unmet": 3}
MAX_ROUNDS = 4
#: Share of a part's time that its rounds may use; the rest is kept for a repair (of a later
#: round) or for fast mode (when the first round of a mixed-integer model finds nothing).
REPAIR_SHARE = 0.8
_WORST = [Status.OPTIMAL, Status.FEASIBLE, Status.UNBOUNDED, Status.INFEASIBLE, Status.ERROR]


@dataclass
class Solution:
    """The solved negotiation, resources put back together.

    ``values`` holds the base blocks in full shape (``quota``/``churn``: accounts x resources;
    the rest: accounts x resources x periods); ``duals`` (when an LP gave them) holds
    ``coverage`` (a, r, t) and ``capacity`` (r, t) row duals; ``models``/``xs`` keep each part's
    model and solution vector (one part when the model was solved whole). ``build_seconds`` and
    ``solve_seconds`` are summed over the parts (with parts in threads, more than wall time).
    """

    status: Status
    solver: str
    objective: float = math.inf
    bound: float | None = None
    values: dict[str, FloatArray] = field(default_factory=dict)
    duals: dict[str, FloatArray] | None = None
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    messages: list[str] = field(default_factory=list)
    models: list[LinearModel] = field(default_factory=list)
    xs: list[FloatArray | None] = field(default_factory=list)

    @property
    def gap(self) -> float | None:
        """Relative gap ``(objective - bound) / max(1, |objective|)``."""
        if self.bound is None or not math.isfinite(self.objective):
            return None
        return max(0.0, (self.objective - self.bound) / max(1.0, abs(self.objective)))


def subset(data: ProblemData, resources: Sequence[int]) -> ProblemData:
    """``data`` restricted to the resources at positions ``resources``."""
    idx = np.asarray(resources, dtype=np.int64)
    out = dataclasses.replace(
        data,
        resources=[data.resources[j] for j in idx],
        demand=data.demand[:, idx],
        quota0=data.quota0[:, idx],
        floor=data.floor[:, idx],
        ceiling=data.ceiling[:, idx],
        borrow_limit=data.borrow_limit[:, idx],
        lend_limit=data.lend_limit[:, idx],
        capacity=data.capacity[idx],
        reserve=data.reserve[idx],
        unit_cost=data.unit_cost[idx],
        carry=data.carry[:, idx],
        committed_lend=data.committed_lend[:, idx],
        committed_borrow=data.committed_borrow[:, idx],
        ttl_mask=None if data.ttl_mask is None else data.ttl_mask[:, idx],
        tail=None if data.tail is None else data.tail.take(idx),
    )
    return out


def ttl_breaks(shadow: FloatArray, carry: npt.NDArray[np.int64], ttl: int) -> npt.NDArray[np.bool_]:
    """(account, resource) pairs whose shadow runs longer than ``ttl`` periods (carry included)."""
    on = shadow > SHADOW_EPS
    run = carry.astype(np.int64).copy()
    bad = np.zeros(on.shape[:2], dtype=bool)
    for t in range(on.shape[2]):
        run = np.where(on[:, :, t], run + 1, 0)
        bad |= run > ttl
    return bad


def ttl_gaps(shadow: FloatArray, carry: npt.NDArray[np.int64], ttl: int) -> npt.NDArray[np.bool_]:
    """Periods where a shadow must be forced to zero so that no run outlives ``ttl``.

    Walks each breaking pair left to right; when a run would exceed the time-to-live, the
    period with the smallest shadow among the run's last ``ttl + 1`` periods (the latest of
    equals) becomes the gap.
    """
    gaps = np.zeros(shadow.shape, dtype=bool)
    n_t = shadow.shape[2]
    for a, r in zip(*np.nonzero(ttl_breaks(shadow, carry, ttl)), strict=True):
        vals = shadow[a, r]
        run_start = -int(carry[a, r])  # virtual start of the current run
        for t in range(n_t):
            if vals[t] <= SHADOW_EPS or gaps[a, r, t]:
                run_start = t + 1
                continue
            if t - run_start + 1 > ttl:
                window = [p for p in range(max(0, t - ttl), t + 1) if not gaps[a, r, p]]
                # the latest of equal smallest: the run restarts as late as it can
                p = min(reversed(window), key=lambda k: vals[k])
                gaps[a, r, p] = True
                run_start = p + 1
    return gaps


class LpRouter(Backend):
    """The default solver, except that LPs of :data:`LARGE_LP_COLUMNS` columns or more go to
    ``large`` (CLP); ``used_large`` counts them for the plan's report. A large LP that CLP
    fails to solve is solved again by ``small`` in the time left."""

    name = HighsBackend.name
    module = HighsBackend.module
    features = HighsBackend.features
    description = f"{HighsBackend.description}; large LPs: {ClpBackend.description}"

    def __init__(self, small: Backend, large: Backend) -> None:
        self.small, self.large = small, large
        self.used_large = 0
        self._lock = threading.Lock()  # parts solve in threads

    def solve(self, model: LinearModel, options: SolveOptions) -> SolveResult:
        """Solve ``model`` with ``large`` when it is a large LP, else with ``small``."""
        if model.is_mip or model.num_vars < LARGE_LP_COLUMNS:
            return self.small.solve(model, options)
        with self._lock:
            self.used_large += 1
        t0 = time.perf_counter()
        res = _run(self.large, model, options)
        if res.x is not None or res.status is not Status.ERROR:
            return res
        left = None
        if options.time_limit is not None:
            left = max(options.time_limit - (time.perf_counter() - t0), 0.01)
        retry = self.small.solve(model, dataclasses.replace(options, time_limit=left))
        note = f"{res.message or self.large.name + ' returned no solution'}; {self.small.name}"
        return dataclasses.replace(retry, message=f"{note} solved it again: {retry.message}")


@functools.cache
def _clp_works() -> bool:
    """OR-Tools is installed and was built with CLP."""
    try:
        get_backend("clp")
        pywraplp: Any = importlib.import_module("ortools.linear_solver.pywraplp")
        return pywraplp.Solver.CreateSolver("CLP") is not None
    except Exception:
        return False


def default_backend() -> Backend:
    """The default solver (HiGHS through OR-Tools) with large LPs routed to CLP when OR-Tools
    has it."""
    small = get_backend(HighsBackend.name)
    return LpRouter(small, get_backend("clp")) if _clp_works() else small


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _remaining(deadline: float | None) -> float | None:
    if deadline is None:
        return None
    return max(deadline - time.perf_counter(), 0.01)


def _run(backend: Backend, model: LinearModel, options: SolveOptions) -> SolveResult:
    try:
        return backend.solve(model, options)
    except Exception as exc:  # a backend must never crash the planner; report it instead
        return SolveResult(Status.ERROR, backend.name, message=f"{backend.name} failed: {exc}")


def _with_options(options: SolveOptions, deadline: float | None) -> SolveOptions:
    return dataclasses.replace(options, time_limit=_remaining(deadline))


def _fix_integers(
    model: LinearModel, x: FloatArray, *, at_lower: bool = False, keep_switches: bool = False
) -> LinearModel:
    """Round the integer columns (block rounders first) and fix them; with ``at_lower``, fix
    every decision binary at its lower bound instead. Shadow switches (``shadow_on``) are
    fixed on, the shadows being kept off by gaps in their bounds; with ``keep_switches`` they
    keep their rounded values in ``x`` (a solution of a round whose time-to-live rows bind:
    switching them all on would break those rows)."""
    lower, upper = model.lower.copy(), model.upper.copy()
    rounders: dict[str, Callable[[LinearModel, FloatArray], FloatArray]] = model.meta.get(
        "rounders", {}
    )
    for name, blk in model.blocks.items():
        if not blk.integer:
            continue
        sl = slice(blk.offset, blk.offset + blk.size)
        if name == "shadow_on":
            vals = np.round(x[sl]) if keep_switches else np.ones(blk.size)
        elif at_lower:
            vals = model.lower[sl]
        elif name in rounders:
            vals = np.asarray(rounders[name](model, x), dtype=np.float64).ravel()
        else:
            vals = np.round(x[sl])
        vals = np.clip(vals, model.lower[sl], model.upper[sl])
        lower[sl] = vals
        upper[sl] = vals
    return model.relaxed().with_bounds(lower, upper)


def _has_decisions(model: LinearModel) -> bool:
    """Whether the model has integer columns other than the shadow switches."""
    return any(b.integer and name != "shadow_on" for name, b in model.blocks.items())


def _shadow_gap_bounds(model: LinearModel, gaps: npt.NDArray[np.bool_]) -> LinearModel:
    upper = model.upper.copy()
    blk = model.blocks["shadow"]
    sl = upper[blk.offset : blk.offset + blk.size].reshape(blk.shape)
    sl[gaps] = 0.0
    return model.with_bounds(model.lower, upper)


def _gap_shadows(
    data: ProblemData,
    fixed: LinearModel,
    result: SolveResult,
    lp_backend: Backend,
    options: SolveOptions,
    deadline: float | None,
) -> SolveResult:
    """Cut the shadow runs of ``result`` that outlive the time-to-live (:func:`ttl_gaps`) and
    solve ``fixed`` (integer columns fixed) again, until no run is too long.

    When such a solve gives no answer (its time ran out), or runs are still too long after
    as many solves as periods, the runs are cut from the last answer without solving
    (:func:`_cut_to_ttl`: the demand the cut shadows covered counts as unmet) rather than
    losing the plan; ``result`` stays without values only if that cut solution breaks the
    model or the rule."""
    ttl = data.org.rules.shadow_ttl_periods
    gaps = np.zeros(data.demand.shape, dtype=bool)
    last = result
    for _ in range(len(data.periods)):
        if result.x is None:
            break
        last = result
        new = ttl_gaps(fixed.values("shadow", result.x), data.carry, ttl)
        if not new.any():
            return result
        gaps |= new
        result = _run(lp_backend, _shadow_gap_bounds(fixed, gaps), _with_options(options, deadline))
    if result.x is not None:
        if not ttl_breaks(fixed.values("shadow", result.x), data.carry, ttl).any():
            return result
        last, why = result, f"runs were still too long after {len(data.periods)} solves"
    else:
        why = f"the LP after cutting the shadow runs gave no answer ({result.message})"
    if last.x is None or "min_coverage" in fixed.families:
        # hard thresholds: counting more demand unmet may break them (pricefix.applies)
        return result
    x = _cut_to_ttl(data, fixed, last.x, gaps)
    if ttl_breaks(fixed.values("shadow", x), data.carry, ttl).any():
        return result
    cut = finish(fixed, last.solver, Status.FEASIBLE, x, None, None, last.solve_seconds)
    if cut.x is None:
        return result
    note = f"{why}; they were cut without solving again (the demand they covered counted unmet)"
    return dataclasses.replace(cut, message=f"{last.message}; {note}".strip("; "))


def _cut_to_ttl(
    data: ProblemData, model: LinearModel, x: FloatArray, gaps: npt.NDArray[np.bool_]
) -> FloatArray:
    """``x`` with its shadows cut at ``gaps`` and wherever a run still outlives the
    time-to-live (:func:`ttl_gaps`), without solving (:func:`pricefix.cut_runs`)."""
    ttl = data.org.rules.shadow_ttl_periods
    for _ in range(len(data.periods) + 1):
        more = ttl_gaps(model.values("shadow", x), data.carry, ttl)
        if not more.any():
            break
        gaps = gaps | more
        x = pricefix.cut_runs(model, x, gaps)
    return x


def _graded(result: SolveResult, bound: float | None) -> SolveResult:
    """``result`` with ``bound``; optimal when its objective reaches the bound."""
    if result.x is None or bound is None:
        return dataclasses.replace(result, bound=bound)
    optimal = result.objective <= bound + 1e-9 * max(1.0, abs(bound))
    return dataclasses.replace(
        result, status=Status.OPTIMAL if optimal else Status.FEASIBLE, bound=bound
    )


def _solve_fast(
    data: ProblemData,
    model: LinearModel,
    lp_backend: Backend,
    options: SolveOptions,
    deadline: float | None,
) -> tuple[SolveResult, LinearModel]:
    """LP relaxation, rounding, shadow gaps, LP again; the relaxation's value is the bound."""
    lp = model.relaxed()
    first = _run(lp_backend, lp, _with_options(options, deadline))
    if first.x is None:
        return first, model
    bound = first.objective
    fixed = _fix_integers(model, first.x) if model.is_mip else lp
    result = _run(lp_backend, fixed, _with_options(options, deadline)) if model.is_mip else first
    if model.is_mip and _has_decisions(model):
        # The other rounding: every decision binary at its lower bound (nothing opened or
        # moved), which the base program can always satisfy. Keep the better of the two: the
        # rounders' set may break a rule the LP kept only fractionally, or cost more.
        low = _fix_integers(model, first.x, at_lower=True)
        other = _run(lp_backend, low, _with_options(options, deadline))
        if other.x is not None and (result.x is None or other.objective < result.objective):
            why = "were infeasible" if result.x is None else "cost more"
            note = (
                f"fast mode: the rounded binaries {why} ({result.message}); they were fixed at "
                "their lower bounds instead (nothing opened or moved)"
            )
            fixed, result = low, dataclasses.replace(other, message=f"{note}; {other.message}")
    result = _gap_shadows(data, fixed, result, lp_backend, options, deadline)
    if result.x is None:
        return result, model
    return _graded(result, bound), model


def _repair(
    data: ProblemData,
    model: LinearModel,
    previous: SolveResult,
    lp_backend: Backend,
    options: SolveOptions,
    deadline: float | None,
) -> SolveResult:
    """Make the previous round's solution keep the time-to-live: fix its integer columns, cut
    the shadow runs that are too long and re-solve the LP. Its bound stays valid (the previous
    round's model is a relaxation of every later one)."""
    assert previous.x is not None
    fixed = _fix_integers(model, previous.x, keep_switches=True) if model.is_mip else model
    result = _gap_shadows(data, fixed, previous, lp_backend, options, deadline)
    return _graded(result, previous.bound)


def solve_priced(
    data: ProblemData,
    model: LinearModel,
    options: SolveOptions,
    deadline: float | None,
) -> tuple[SolveResult | None, str]:
    """Price and fix (:mod:`planner.backends.pricefix`) for the first round's model (an LP
    of one resource, no time-to-live binaries).

    1. PDLP solves the LP roughly: quotas and coupling prices ``y``.
    2. Quotas fixed, the rest solved exactly (HiGHS, kept warm between solves).
    3. Each pair whose shadow outlives the time-to-live: its account, priced at ``y``, is
       solved on its own with its binaries (a small mixed-integer program), which says when
       its shadow can rest; the LP is solved again with those rests and those accounts'
       quotas free, and pairs that break the rule now are added (at most
       :data:`pricefix.TTL_ROUNDS` rounds, while time is left).
    4. Runs still too long are cut (:data:`pricefix.GAP_SOLVES` solves, then
       :func:`pricefix.cut_runs`); a plan that still breaks the rule is not returned.
    5. Bound: the coupling rows priced out at ``y``; the accounts without binaries as one LP,
       each account of step 3 its own program's bound.

    Returns the result (its ``duals`` are PDLP's, of the LP without time-to-live rows), or
    ``None`` and why when a step gives nothing or fails (the caller then solves the model
    whole); never raises. The result's values belong to ``model``.
    """
    try:
        return _solve_priced(data, model, options, deadline)
    except Exception as exc:  # a failing step must never crash the planner
        return None, f"price and fix failed ({type(exc).__name__}: {exc})"


def _solve_priced(
    data: ProblemData,
    model: LinearModel,
    options: SolveOptions,
    deadline: float | None,
) -> tuple[SolveResult | None, str]:
    t0 = time.perf_counter()
    # every step through highspy: the accounts' own programs because it reports the
    # branch-and-bound's dual bound (OR-Tools' wrapper reports the incumbent; they are solved
    # to a zero gap), the accounts' LP of the bound because it was the faster there (0.9 s
    # against 1.0-1.35 s through OR-Tools per resource at 1,000 accounts)
    highs = get_backend("highspy")
    piece_options = dataclasses.replace(options, relative_gap=0.0)
    first_until = deadline
    if deadline is not None:
        first_until = t0 + pricefix.FIRST_ORDER_SHARE * (deadline - t0)
    rough = pricefix.first_order(model, _with_options(options, first_until))
    if rough.x is None or rough.y is None:
        return None, f"price and fix: PDLP gave no solution ({rough.status})"
    warm = pricefix.WarmLP(model, options)
    ttl = data.org.rules.shadow_ttl_periods
    base_q = pricefix.fixed_quotas(model, data, rough.x)
    gaps = np.zeros(data.demand.shape, dtype=bool)
    x = warm.solve(base_q, gaps, _remaining(deadline))
    if x is None:
        return None, f"price and fix: with quotas fixed, no plan ({warm.status})"
    quotas = base_q
    solved: dict[tuple[int, int], pricefix.PieceAnswer] = {}
    done = np.zeros(data.demand.shape[:2], dtype=bool)  # pairs in ``solved``
    breaks = ttl_breaks(model.values("shadow", x), data.carry, ttl)
    rounds = 0
    steps = [
        f"price and fix: PDLP ({rough.status}, {rough.seconds:.1f} s) set the quotas; the rest "
        "was solved exactly with them fixed"
    ]
    while rounds < pricefix.TTL_ROUNDS and (breaks & ~done).any():
        if deadline is not None and time.perf_counter() > deadline:
            steps.append("no time was left for more time-to-live rounds")
            break
        rounds += 1
        new = breaks & ~done
        full = build_model(dataclasses.replace(data, ttl_mask=breaks))
        relaxed, _ = pricefix.relaxation(full, pricefix.carry_prices(model, full, rough.y))
        labels = pricefix.pieces(relaxed)
        for a, r in zip(*np.nonzero(new), strict=True):
            solved[int(a), int(r)] = pricefix.solve_piece(
                full,
                relaxed,
                labels,
                (int(a), int(r)),
                lambda m: _run(highs, m, _with_options(piece_options, deadline)),
            )
        done |= new
        # their shadows rest where their own programs' shadows leave room for it (the fewest
        # rests that keep every run within the time-to-live, none where the program used a
        # shadow); their quotas are left to the LP (the others' stay fixed), which can only
        # do better than the programs' own quotas put together, as those need not fit the
        # reserve
        trial = np.zeros_like(gaps)
        for (a, r), ans in solved.items():
            if ans.shadow is not None:
                trial[a, r] = _rests(ans.shadow, int(data.carry[a, r]), ttl)
        again = warm.solve(base_q, trial, _remaining(deadline), free=done)
        if again is None:
            steps.append(f"time-to-live round {rounds} gave no plan ({warm.status}): stopped")
            break
        x, gaps = again, trial
        quotas = model.values("quota", x).copy()
        breaks |= ttl_breaks(model.values("shadow", x), data.carry, ttl)
    if solved:
        steps.append(
            f"{len(solved)} account/resource pair(s) broke the shadow time-to-live (found in "
            f"{rounds} round(s)): each of their accounts was solved on its own with its "
            "binaries at the coupling prices, which said when its shadow can rest; their "
            "quotas were then left to the LP"
        )
    # runs still too long: cut, solve again (twice at most), then cut without solving
    for _ in range(pricefix.GAP_SOLVES):
        more = ttl_gaps(model.values("shadow", x), data.carry, ttl)
        if not more.any():
            break
        gaps |= more
        again = warm.solve(quotas, gaps, _remaining(deadline))
        if again is None:
            break
        x = again
    if ttl_gaps(model.values("shadow", x), data.carry, ttl).any():
        x = _cut_to_ttl(data, model, x, gaps)
        steps.append("the last shadow runs too long were cut without solving again")
    if ttl_breaks(model.values("shadow", x), data.carry, ttl).any():
        return None, "price and fix: its plan still breaks the shadow time-to-live"
    result = finish(model, highs.name, Status.FEASIBLE, x, None, None, 0.0)
    if result.x is None:
        return None, f"price and fix: its plan breaks the model ({result.message})"
    bound, bound_note = _priced_bound(data, model, rough.y, solved, highs, options, deadline)
    if bound is not None and result.objective < bound - 1e-6 * max(1.0, abs(bound)):
        bound_note = f"{bound:.6g} is above the plan's objective, so it is not reported"
        bound = None
    steps.append(
        "bound: capacity, reserve and pool rows priced out at PDLP's duals, each account "
        "solved on its own" + (f" ({bound_note})" if bound_note else "")
    )
    result = dataclasses.replace(
        _graded(result, bound),
        duals=rough.y,
        solve_seconds=time.perf_counter() - t0,
        message="; ".join(steps),
    )
    return result, ""


def _rests(shadow: FloatArray, carry: int, ttl: int) -> npt.NDArray[np.bool_]:
    """The fewest periods a shadow must rest so that no run outlives ``ttl``, chosen where
    ``shadow`` (one pair's, per period, keeping the rule) has none: :func:`ttl_gaps` on a
    shadow present in every period, larger where ``shadow`` is."""
    every = np.where(shadow > SHADOW_EPS, 2.0, 1.0)[None, None, :]
    return ttl_gaps(every, np.array([[carry]]), ttl)[0, 0]


def _priced_bound(
    data: ProblemData,
    model: LinearModel,
    y: FloatArray,
    solved: dict[tuple[int, int], pricefix.PieceAnswer],
    backend: Backend,
    options: SolveOptions,
    deadline: float | None,
) -> tuple[float | None, str]:
    """The Lagrangian bound at the coupling prices ``y`` of the model with the time-to-live
    binaries of the pairs in ``solved``: their accounts' own programs' bounds (one pair per
    account: a part is one resource), plus one LP for every other account. ``None`` when a
    part has no bound (the note says why)."""
    solved = {pair: ans for pair, ans in solved.items() if ans.bound is not None}
    mask = pricefix.pair_mask(solved, data.demand.shape[:2])
    full = build_model(dataclasses.replace(data, ttl_mask=mask)) if solved else model
    relaxed, zeroed = pricefix.relaxation(full, pricefix.carry_prices(model, full, y))
    col_of, row_of = pricefix.pieces(relaxed)
    hard = np.zeros(int(max(col_of.max(initial=0), row_of.max(initial=0))) + 1, dtype=bool)
    hard[col_of[relaxed.integer]] = True
    rest = pricefix.restrict(relaxed, np.flatnonzero(~hard[col_of]), np.flatnonzero(~hard[row_of]))
    res = _run(backend, rest, _with_options(options, deadline))
    notes = [zeroed] if zeroed else []
    if res.status is not Status.OPTIMAL or res.bound is None:
        return None, "; ".join([*notes, f"the accounts' LP: {res.message}"])
    own = sum(ans.bound for ans in solved.values() if ans.bound is not None)
    return relaxed.offset + res.bound + own, "; ".join(notes)


def solve_part(
    data: ProblemData,
    backend: Backend,
    options: SolveOptions,
    *,
    fast: bool,
    extensions: Sequence[Extension],
    deadline: float | None,
    lp_backend: Backend,
    price_fix: bool = False,
) -> tuple[SolveResult, LinearModel, float, list[str]]:
    """Solve one part (all resources or one) with lazy time-to-live rounds; with ``price_fix``
    (the default solver), a large LP by price and fix (:func:`solve_priced`) first, in both
    modes (it is already an LP, rounding and LP again, with a sound bound)."""
    ttl = data.org.rules.shadow_ttl_periods
    messages: list[str] = []
    build = 0.0
    data = dataclasses.replace(data, ttl_mask=np.zeros(data.carry.shape, dtype=bool))
    if price_fix and not extensions:
        first = build_model(data, extensions)
        build += first.build_seconds
        if pricefix.applies(first):
            priced, why = solve_priced(data, first, options, deadline)
            if priced is not None:
                return priced, first, build, messages
            messages.append(f"{why}; the model was solved whole")
    result: SolveResult | None = None
    model: LinearModel | None = None
    previous: tuple[SolveResult, LinearModel, ProblemData] | None = None
    mip_deadline = None
    if deadline is not None:
        mip_deadline = time.perf_counter() + REPAIR_SHARE * (deadline - time.perf_counter())
    for round_no in range(MAX_ROUNDS + 1):
        model = build_model(data, extensions)
        build += model.build_seconds
        if fast:
            return (*_solve_fast(data, model, lp_backend, options, deadline), build, messages)
        # the rounds share the first four fifths of the time; the last fifth is kept to repair
        # a round's solution, or for fast mode when the first round finds none
        until = deadline
        if deadline is not None and mip_deadline is not None:
            if previous is not None:
                # a later round keeps its share of what is left, even past the first cut-off
                now = time.perf_counter()
                until = max(mip_deadline, now + REPAIR_SHARE * (deadline - now))
            elif model.is_mip:
                until = mip_deadline
        result = _run(backend, model, _with_options(options, until))
        if result.x is None and previous is None and model.is_mip and result.status is Status.ERROR:
            fast_result, _ = _solve_fast(data, model, lp_backend, options, deadline)
            answer = (
                "fast mode (LP relaxation, rounding, LP again) answered instead"
                if fast_result.x is not None
                else f"fast mode found none either ({fast_result.message})"
            )
            messages.append(f"the program returned no solution ({result.message}); {answer}")
            return fast_result, model, build, messages
        if result.x is None and previous is not None:
            last, last_model, last_data = previous
            messages.append(
                f"round {round_no + 1} found no solution in time ({result.message}); the "
                "previous round's solution was repaired instead: its shadow quotas were cut "
                "where they outlived the time-to-live and the rest solved again as an LP"
            )
            result = _repair(last_data, last_model, last, lp_backend, options, deadline)
            return result, last_model, build, messages
        if result.x is None:
            return result, model, build, messages
        shadow = model.values("shadow", result.x)
        breaks = ttl_breaks(shadow, data.carry, ttl)
        if not breaks.any():
            return result, model, build, messages
        previous = (result, model, data)
        # Pairs active in more periods than the time-to-live could break it in an equally good
        # solution of the next round: add them now rather than chase them round after round.
        breaks |= (shadow > SHADOW_EPS).sum(axis=2) > ttl
        assert data.ttl_mask is not None
        if round_no == MAX_ROUNDS - 1:
            breaks = data.demand.max(axis=2) > 0  # last round: every pair that could have one
        messages.append(
            f"round {round_no + 1}: {int(breaks.sum())} account/resource pairs broke the shadow "
            "time-to-live; their binaries were added and the model solved again"
        )
        data = dataclasses.replace(data, ttl_mask=data.ttl_mask | breaks)
    assert result is not None
    assert model is not None
    if previous is not None and result.x is not None:
        # the last round still broke the time-to-live: repair its solution
        messages.append("the last round still broke the time-to-live: its solution was repaired")
        result = _repair(data, model, result, lp_backend, options, deadline)
    return result, model, build, messages


def solve_negotiation(
    data: ProblemData,
    *,
    solver: str | None,
    options: SolveOptions,
    fast: bool = False,
    extensions: Sequence[Extension] = (),
) -> Solution:
    """Solve the negotiation of ``data`` and put the parts back together.

    Raises
    ------
    ValueError
        For an unknown solver name (the message lists the valid ones).
    planner.backends.SolverUnavailableError
        When the solver's library is missing.
    """
    backend = get_backend(solver) if solver is not None else default_backend()
    messages: list[str] = []
    lp_backend = backend
    if "lp" not in backend.features:
        # fast mode and the time-to-live repair solve LPs
        lp_backend = default_backend()
        if fast:
            messages.append(
                f"{backend.name} cannot solve LPs; fast mode used the default solver for them"
            )
    if not fast and "mip" not in backend.features:
        fast = True
        messages.append(f"{backend.name} solves LPs only: fast mode (LP, round, re-solve) used")
    deadline = None if options.time_limit is None else time.perf_counter() + options.time_limit
    n_a, n_r, n_t = data.shape
    parts = [list(range(n_r))] if extensions else [[j] for j in range(n_r)]
    values = {
        name: np.zeros((n_a, n_r) if dims == 2 else (n_a, n_r, n_t))
        for name, dims in BASE_BLOCKS.items()
    }
    duals: dict[str, FloatArray] | None = {
        "coverage": np.zeros((n_a, n_r, n_t)),
        "capacity": np.zeros((n_r, n_t)),
    }
    sol = Solution(Status.OPTIMAL, backend.name, objective=0.0, bound=0.0, values=values)
    t0 = time.perf_counter()
    cores = int(options.threads or available_cores())
    workers = max(1, min(cores, len(parts)))
    waves = math.ceil(len(parts) / workers)
    part_options = options
    if workers > 1:
        part_options = dataclasses.replace(options, threads=max(1, cores // workers))

    def run_part(k: int) -> tuple[SolveResult, LinearModel, float, list[str], float]:
        # parts of one wave run side by side and share the wave's slice of the time limit
        share = None
        if deadline is not None:
            share = t0 + (deadline - t0) * (k // workers + 1) / waves
        started = time.perf_counter()
        pdata = subset(data, parts[k]) if len(parts) > 1 else data
        out = solve_part(
            pdata,
            backend,
            part_options,
            fast=fast,
            extensions=extensions,
            deadline=share,
            lp_backend=lp_backend,
            price_fix=solver is None,
        )
        return (*out, time.perf_counter() - started)

    if workers > 1:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            outcomes = list(pool.map(run_part, range(len(parts))))
    else:
        outcomes = [run_part(k) for k in range(len(parts))]
    for part, (res, model, build, msgs, wall) in zip(parts, outcomes, strict=True):
        sol.build_seconds += build
        sol.solve_seconds += max(0.0, wall - build)
        sol.messages.extend(msgs)
        sol.models.append(model)
        sol.xs.append(res.x)
        if res.message:
            sol.messages.append(res.message)
        sol.status = max(sol.status, res.status, key=_WORST.index)
        if res.x is None:
            sol.objective = math.inf
            sol.bound = None
            continue
        sol.objective += res.objective
        sol.bound = None if sol.bound is None or res.bound is None else sol.bound + res.bound
        for name in BASE_BLOCKS:
            values[name][:, part] = model.values(name, res.x)
        values["unmet"][:, part] = unmet_values(model, res.x)
        if duals is not None and res.duals is not None:
            duals["coverage"][:, part] = model.row_values("coverage", res.duals)
            duals["capacity"][part] = model.row_values("capacity", res.duals)
        else:
            duals = None
    routed = max(
        (b.used_large for b in (backend, lp_backend) if isinstance(b, LpRouter)), default=0
    )
    if routed:
        messages.append(
            f"{routed} LP(s) of {LARGE_LP_COLUMNS:,} columns or more were solved by CLP "
            "through OR-Tools (faster than HiGHS on this model's large LPs)"
        )
    if workers > 1:
        messages.append(f"{len(parts)} parts (one per resource) solved {workers} at a time")
    sol.duals = duals
    sol.messages = messages + sol.messages
    if sol.status is Status.OPTIMAL and sol.gap is not None and sol.gap > options.relative_gap:
        sol.status = Status.FEASIBLE
    return sol
