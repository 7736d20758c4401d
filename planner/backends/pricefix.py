"""Price and fix: a large allocation LP solved through the few rows that couple its accounts.

Of one resource's allocation model only ``2T + 1`` rows tie the accounts together: capacity
per period, the reserve, and the loan pool per period (:data:`COUPLING`). Every other row is
one account's own. The simplex method cannot use that: at 1,000 accounts x 24 periods one
resource's LP (98,000 columns, 80,000 rows) took HiGHS's simplex 50 s and its interior point
method 37 s, so four resources on two cores gave no plan in a minute. The steps here
(:func:`planner.backends.strategy.solve_priced` runs them, for the default solver on large
parts) took 3-6 s per resource:

1. **Prices** (:func:`first_order`): the LP solved roughly by a first-order method (PDLP:
   HiGHS's HiPDLP, :data:`FIRST_ORDER`): quotas and row duals (1.5-3.4 s).
2. **Plan** (:func:`fixed_quotas`, :class:`WarmLP`): the quotas fixed at those values (made to
   fit their bounds and the reserve); what is left splits by period and is solved exactly
   (0.7 s, then 0.07 s for each later solve from the last basis).
3. **Time-to-live** (:func:`solve_piece`): an account whose shadow outlives the time-to-live
   is solved on its own, priced at the duals, with its binaries: a program of 122 columns,
   which sets its quota and when its shadow rests; step 2 again with those fixed.
4. **Bound** (:meth:`LinearModel.priced_out`, :func:`pieces`): the coupling rows priced out
   at the duals; what is left is one small program per account, the accounts without
   binaries solved as one LP (0.8 s). Its optimum is a lower bound of the model's whatever
   the duals' accuracy, so the reported gap is sound however rough step 1 was.

Looser tolerances were tried and dropped: cuPDLP-C at 0.1 (and 0.05) stopped after 0.3 s on
one resource with quotas summing to 7 % of what they should, and the fixed LP then took
longer than the whole time limit; OR-Tools' own PDLP needed 9.6 s for a bound as tight.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from planner.backends.base import SolveOptions, SolveResult
from planner.backends.highspy_direct import load_highs
from planner.formulation import LinearModel, ProblemData
from planner.formulation.core import FloatArray

BoolArray = npt.NDArray[np.bool_]

#: The rows that tie accounts together in a per-resource allocation model.
COUPLING = ("capacity", "reserve", "pool")
#: Parts with at least this many columns are solved by price and fix under the default
#: solver (at 500 accounts a resource's LP has 49,000 columns; see benchmarks/solvers.py).
PRICE_FIX_COLUMNS = 40_000
#: The first-order methods to try, with their KKT tolerances: HiGHS's newer HiPDLP first, then
#: its cuPDLP-C port (highspy without HiPDLP). At 1,000 accounts, per resource, the gap before
#: the time-to-live step and the seconds: HiPDLP at 3e-4 1e-5 to 1.4e-3, 1.5-3.4 s; at 1e-3 up
#: to 6.7e-3, 1.0-3.0 s; cuPDLP-C at 3e-2 up to 5e-4, 2.4-6.8 s, at 1e-2 2e-4, up to 16 s.
FIRST_ORDER = (("hipdlp", 3e-4), ("pdlp", 3e-2))
#: Rounds of the time-to-live step (pairs found breaking it get binaries, again).
TTL_ROUNDS = 6
#: Solves of the last cut of shadow runs; runs still too long after them are cut without
#: solving again (:func:`cut_runs`).
GAP_SOLVES = 2
#: Share of the part's time the first step may use; the rest is for the two exact LPs.
FIRST_ORDER_SHARE = 0.7


@dataclass
class FirstOrder:
    """The first-order method's answer: primal and row duals (``None`` when it gave none)."""

    x: FloatArray | None
    y: FloatArray | None
    status: str
    seconds: float


def applies(model: LinearModel) -> bool:
    """Whether price and fix applies: a large LP whose accounts meet only in :data:`COUPLING`
    rows (the allocation model without extensions or time-to-live binaries), without hard
    thresholds (:func:`cut_runs` may count more demand unmet than they allow)."""
    return (
        not model.is_mip
        and model.num_vars >= PRICE_FIX_COLUMNS
        and "quota" in model.blocks
        and all(f in model.families for f in COUPLING)
        and "min_coverage" not in model.families
    )


def first_order(model: LinearModel, options: SolveOptions) -> FirstOrder:
    """Solve the LP ``model`` roughly with the first method of :data:`FIRST_ORDER` that this
    HiGHS has, to its KKT tolerance."""
    import highspy

    t0 = time.perf_counter()
    common = dataclasses.replace(options, passthrough={})
    h: Any = load_highs(model, common)
    method = ""
    ok = highspy.HighsStatus.kOk
    for name, tolerance in FIRST_ORDER:
        if (
            h.setOptionValue("solver", name) == ok
            and h.setOptionValue("kkt_tolerance", float(tolerance)) == ok
        ):
            method = f"{name} to KKT tolerance {tolerance:g}"
            break
    if not method:
        return FirstOrder(None, None, "this HiGHS has no first-order method", 0.0)
    h.run()
    sol = h.getSolution()
    x = np.asarray(sol.col_value, dtype=np.float64) if sol.value_valid else None
    y = np.asarray(sol.row_dual, dtype=np.float64) if sol.dual_valid else None
    if x is not None and not np.isfinite(x).all():
        x = None
    if y is not None and not np.isfinite(y).all():
        y = None
    status = f"{method}: {h.modelStatusToString(h.getModelStatus())}"
    return FirstOrder(x, y, status, time.perf_counter() - t0)


def implied_bounds(model: LinearModel, cols: slice) -> tuple[FloatArray, FloatArray]:
    """Bounds of the columns ``cols`` implied by each row alone, given every other column's
    bounds (one pass of bound propagation), intersected with their own bounds.

    For a row ``lo <= a x_j + sum_k a_k x_k <= hi`` the other terms' least and greatest
    activity bound ``a x_j``; e.g. ``lend - quota <= 0`` with ``lend >= committed`` gives
    ``quota >= committed``, and a ceiling row with a committed borrow caps the quota.
    """
    a = model.matrix.tocoo()
    i, j, v = a.row, a.col, a.data
    lo_j, hi_j = model.lower[j], model.upper[j]
    with np.errstate(invalid="ignore"):
        least = np.where(v > 0, v * lo_j, v * hi_j)
        most = np.where(v > 0, v * hi_j, v * lo_j)
    n = model.num_rows

    def total(c: npt.NDArray[np.float64]) -> tuple[FloatArray, FloatArray]:
        finite = np.isfinite(c)
        return (
            np.bincount(i, np.where(finite, c, 0.0), minlength=n).astype(np.float64),
            np.bincount(i, (~finite).astype(np.float64), minlength=n).astype(np.float64),
        )

    least_sum, least_inf = total(least)
    most_sum, most_inf = total(most)
    k = np.flatnonzero((j >= cols.start) & (j < cols.stop))
    row, col, coef = i[k], j[k] - cols.start, v[k]
    own_least, own_most = least[k], most[k]
    # the other terms' least / greatest activity, finite only when none of them is unbounded
    others_least = np.where(
        least_inf[row] - ~np.isfinite(own_least) == 0,
        least_sum[row] - np.where(np.isfinite(own_least), own_least, 0.0),
        -np.inf,
    )
    others_most = np.where(
        most_inf[row] - ~np.isfinite(own_most) == 0,
        most_sum[row] - np.where(np.isfinite(own_most), own_most, 0.0),
        np.inf,
    )
    with np.errstate(invalid="ignore"):
        from_hi = (model.row_upper[row] - others_least) / coef  # coef x <= hi - others' least
        from_lo = (model.row_lower[row] - others_most) / coef  # coef x >= lo - others' most
    up = np.where(coef > 0, from_hi, from_lo)
    down = np.where(coef > 0, from_lo, from_hi)
    lower = model.lower[cols].copy()
    upper = model.upper[cols].copy()
    np.minimum.at(upper, col, np.where(np.isnan(up), np.inf, up))
    np.maximum.at(lower, col, np.where(np.isnan(down), -np.inf, down))
    return lower, upper


def fixed_quotas(model: LinearModel, data: ProblemData, x: FloatArray) -> FloatArray:
    """The quotas of the rough solution ``x`` made to fit the rows that hold quotas alone:
    clipped into their bounds and those the rows imply (:func:`implied_bounds`: a committed
    loan, a ceiling), then, per resource, the part above the lower bounds scaled down where
    their sum overshoots ``capacity - reserve`` (the reserve row; capacity's rows then hold
    with every shadow at zero). Returns the quota block's values (accounts x resources)."""
    blk = model.blocks["quota"]
    sl = slice(blk.offset, blk.offset + blk.size)
    lo_flat, hi_flat = implied_bounds(model, sl)
    lo = lo_flat.reshape(blk.shape)
    hi = np.maximum(hi_flat, lo_flat).reshape(blk.shape)
    q = np.clip(x[sl].reshape(blk.shape), lo, hi)
    room = q - lo
    limit = np.maximum(data.capacity - data.reserve, 0.0)
    excess = q.sum(axis=0) - limit
    total = room.sum(axis=0)
    # a hair below the limit, so the fixed model is feasible after rounding by the solver
    share = np.where(
        (excess > 0) & (total > 0),
        np.minimum(1.0, (excess + 1e-9 * np.maximum(1.0, limit)) / np.where(total > 0, total, 1)),
        0.0,
    )
    return q - room * share[None, :]


def with_quotas(model: LinearModel, quotas: FloatArray) -> LinearModel:
    """``model`` with the quota block fixed at ``quotas`` (what :class:`WarmLP` solves, built
    cold: the tests' reference)."""
    blk = model.blocks["quota"]
    sl = slice(blk.offset, blk.offset + blk.size)
    lower, upper = model.lower.copy(), model.upper.copy()
    lower[sl] = quotas.ravel()
    upper[sl] = quotas.ravel()
    return model.with_bounds(lower, upper)


def relaxation(model: LinearModel, y: FloatArray) -> tuple[LinearModel, str]:
    """The coupling rows of ``model`` priced out at the duals ``y`` (a lower-bounding LP).

    Column bounds that the coupling rows imply are kept first (two passes of
    :func:`implied_bounds`: a borrow is at most what the pool can lend, which is at most the
    lenders' quotas): every point of the model keeps them, so the relaxation stays one, and it
    stays bounded whatever the prices."""
    lower, upper = model.lower, model.upper
    for _ in range(2):
        lower, upper = implied_bounds(model.with_bounds(lower, upper), slice(0, model.num_vars))
    tight = model.with_bounds(lower, np.maximum(upper, lower))
    return tight.priced_out([f for f in COUPLING if f in model.families], y)


def carry_prices(src: LinearModel, dst: LinearModel, y: FloatArray) -> FloatArray:
    """The coupling rows' prices ``y`` of ``src`` put on the same rows of ``dst`` (the same
    organisation with more rows, e.g. time-to-live binaries); other rows get 0."""
    out = np.zeros(dst.num_rows)
    for name in COUPLING:
        if name in src.families and name in dst.families:
            a, b = src.families[name], dst.families[name]
            out[b.offset : b.offset + b.size] = y[a.offset : a.offset + a.size]
    return out


def pieces(model: LinearModel) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]]:
    """Connected pieces of ``model``: a label per column and per row (columns meet when they
    share a row). Once the coupling rows are priced out, each account is one piece."""
    n_c, n_r = model.num_vars, model.num_rows
    a = model.matrix.tocoo()
    graph = sp.coo_matrix(
        (np.ones(a.nnz), (a.row, n_r + a.col)), shape=(n_r + n_c, n_r + n_c)
    ).tocsr()
    _, labels = connected_components(graph, directed=False)
    return labels[n_r:], labels[:n_r]


def restrict(
    model: LinearModel, cols: npt.NDArray[np.intp], rows: npt.NDArray[np.intp]
) -> LinearModel:
    """The sub-model of the columns ``cols`` and rows ``rows`` (a union of whole pieces, so no
    row refers to a column left out); no offset, no named blocks."""
    return LinearModel(
        name=f"{model.name}[piece]",
        cost=model.cost[cols],
        lower=model.lower[cols],
        upper=model.upper[cols],
        integer=model.integer[cols],
        matrix=model.matrix[rows][:, cols].tocsr(),
        row_lower=model.row_lower[rows],
        row_upper=model.row_upper[rows],
        blocks={},
        families={},
    )


def cut_runs(model: LinearModel, x: FloatArray, gaps: npt.NDArray[np.bool_]) -> FloatArray:
    """``x`` with the shadow quotas at ``gaps`` (accounts x resources x periods) set to 0 and
    the demand they covered counted as unmet, the cheaper band first (``unmet_tail``, then
    ``unmet``), without solving again.

    Every row of the allocation model without hard thresholds still holds (:func:`applies`
    excludes them): a smaller shadow only loosens capacity, ceiling, fraction and link rows,
    and the unmet added is what coverage needs, at most ``demand - (quota + borrow - lend)``
    so within its bound (``lend <= quota``)."""
    out = x.copy()

    def view(name: str) -> FloatArray:
        b = model.blocks[name]
        return out[b.offset : b.offset + b.size].reshape(b.shape)

    shadow = view("shadow")
    cut = np.where(gaps, shadow, 0.0)
    shadow -= cut
    cov = model.families["coverage"]
    rows = slice(cov.offset, cov.offset + cov.size)
    slack = (model.matrix[rows] @ out - model.row_lower[rows]).reshape(cov.shape)
    need = np.maximum(-slack, 0.0)
    for name in ("unmet_tail", "unmet"):
        if name not in model.blocks or not need.any():
            continue
        b = model.blocks[name]
        u = view(name)
        room = np.maximum(model.upper[b.offset : b.offset + b.size].reshape(b.shape) - u, 0.0)
        add = np.minimum(need, room)
        u += add
        need -= add
    return out


@dataclass
class PieceAnswer:
    """One account's own program (one resource, its time-to-live binaries, coupling rows
    priced): its shadow per period, and its bound (``None`` when it gave none)."""

    shadow: FloatArray | None
    bound: float | None


def pair_mask(solved: Mapping[tuple[int, int], PieceAnswer], shape: tuple[int, ...]) -> BoolArray:
    """The (account, resource) pairs of ``solved`` as a boolean array of ``shape``."""
    mask = np.zeros(shape[:2], dtype=bool)
    for a, r in solved:
        mask[a, r] = True
    return mask


def solve_piece(
    full: LinearModel,
    relaxed: LinearModel,
    labels: tuple[npt.NDArray[np.intp], npt.NDArray[np.intp]],
    pair: tuple[int, int],
    solve: Callable[[LinearModel], SolveResult],
) -> PieceAnswer:
    """Solve the account of ``pair`` on its own: its piece of ``relaxed`` (``full`` with
    time-to-live binaries for ``pair``, its coupling rows priced out; ``labels`` from
    :func:`pieces`)."""
    col_of, row_of = labels
    a, r = pair
    qb = full.blocks["quota"]
    label = col_of[qb.offset + int(np.ravel_multi_index((a, r), qb.shape))]
    cols = np.flatnonzero(col_of == label)
    res = solve(restrict(relaxed, cols, np.flatnonzero(row_of == label)))
    if res.x is None:
        return PieceAnswer(None, None)
    x = np.zeros(full.num_vars)
    x[cols] = res.x
    return PieceAnswer(full.values("shadow", x)[a, r].copy(), res.bound)


class WarmLP:
    """One resource's LP kept in HiGHS (highspy) between solves that change only bounds:
    quotas fixed, shadows held at zero where they rest. Each solve starts from the last
    basis: at 1,000 accounts the first takes about 1 s, the next ones a fraction of that."""

    def __init__(self, model: LinearModel, options: SolveOptions) -> None:
        self.model = model
        self.h: Any = load_highs(model, dataclasses.replace(options, passthrough={}))
        self.lower, self.upper = model.lower.copy(), model.upper.copy()
        self.status = "not solved"

    def solve(
        self,
        quotas: FloatArray,
        rests: BoolArray,
        time_limit: float | None,
        free: BoolArray | None = None,
    ) -> FloatArray | None:
        """The LP's optimum with ``quotas`` fixed (except the pairs of ``free``, accounts x
        resources, left within their bounds) and shadows zero at ``rests`` (accounts x
        resources x periods); ``None`` when HiGHS does not reach it (``status`` says why)."""
        import highspy

        m = self.model
        lower, upper = m.lower.copy(), m.upper.copy()
        q, s = m.blocks["quota"], m.blocks["shadow"]
        keep = np.ones(q.size, dtype=bool) if free is None else ~free.ravel()
        cols = q.offset + np.flatnonzero(keep)
        lower[cols] = quotas.ravel()[keep]
        upper[cols] = quotas.ravel()[keep]
        shadow_hi = upper[s.offset : s.offset + s.size]
        shadow_hi[rests.ravel()] = 0.0
        changed = np.flatnonzero((lower != self.lower) | (upper != self.upper))
        if changed.size:
            status = self.h.changeColsBounds(
                int(changed.size), changed.astype(np.int32), lower[changed], upper[changed]
            )
            if status == highspy.HighsStatus.kError:
                self.status = "HiGHS refused the new bounds"
                return None
        self.lower, self.upper = lower, upper
        if time_limit is not None:
            # HiGHS's clock runs across the calls of one instance
            self.h.setOptionValue("time_limit", float(self.h.getRunTime() + max(time_limit, 1e-3)))
        self.h.run()
        ms = self.h.getModelStatus()
        self.status = str(self.h.modelStatusToString(ms))
        if ms != highspy.HighsModelStatus.kOptimal:
            return None
        return np.asarray(self.h.getSolution().col_value, dtype=np.float64)
