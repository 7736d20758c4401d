"""Why the rules cannot all hold, and the smallest relaxation that would make them hold.

An elastic LP: every row of a *relaxable* family (parent capacity, reserve, ceilings, hard
coverage thresholds, and any family an extension marks relaxable) gets a slack column, and
every positive lower bound (floors, loans committed until expiry) becomes a row with a slack.
Minimising the total slack (integrality dropped) gives the smallest relaxation, in units of each
resource; the rows whose slack is positive name the conflicting accounts, resources and
periods.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from models import Status
from planner.backends import SolveOptions, get_backend
from planner.formulation import Extension, LinearModel, ProblemData, build_model

TOL = 1e-6


def elastic(model: LinearModel) -> tuple[LinearModel, list[tuple[str, int, int]]]:
    """The elastic phase-one LP of ``model`` and what each slack column relaxes.

    Returns the LP and, per slack column, ``(kind, index, sign)``: ``("row", i, +1/-1)`` for a
    row's upper/lower side, ``("lb", j, 1)`` for column ``j``'s lower bound.
    """
    relax_rows = np.zeros(model.num_rows, dtype=bool)
    for fam in model.families.values():
        if fam.relaxable:
            relax_rows[fam.offset : fam.offset + fam.size] = True
    up = np.flatnonzero(relax_rows & np.isfinite(model.row_upper))
    lo = np.flatnonzero(relax_rows & np.isfinite(model.row_lower))
    lb_cols = np.flatnonzero(model.lower > TOL)
    n, m = model.num_vars, model.num_rows
    k_up, k_lo, k_lb = up.size, lo.size, lb_cols.size
    cols_up = sp.csr_matrix((-np.ones(k_up), (up, np.arange(k_up))), shape=(m, k_up))
    cols_lo = sp.csr_matrix((np.ones(k_lo), (lo, np.arange(k_lo))), shape=(m, k_lo))
    top = sp.hstack([model.matrix, cols_up, cols_lo, sp.csr_matrix((m, k_lb))])
    # x_j + s_j >= lb_j  for every column with a positive lower bound
    pick = sp.csr_matrix((np.ones(k_lb), (np.arange(k_lb), lb_cols)), shape=(k_lb, n))
    bottom = sp.hstack([pick, sp.csr_matrix((k_lb, k_up + k_lo)), sp.identity(k_lb)])
    matrix = sp.vstack([top, bottom]).tocsr()
    k = k_up + k_lo + k_lb
    lower = np.concatenate([np.where(model.lower > TOL, 0.0, model.lower), np.zeros(k)])
    out = LinearModel(
        name=f"{model.name}-elastic",
        cost=np.concatenate([np.zeros(n), np.ones(k)]),
        lower=lower,
        upper=np.concatenate([model.upper, np.full(k, np.inf)]),
        integer=np.zeros(n + k, dtype=bool),
        matrix=matrix,
        row_lower=np.concatenate([model.row_lower, model.lower[lb_cols]]),
        row_upper=np.concatenate([model.row_upper, np.full(k_lb, np.inf)]),
        blocks=model.blocks,
        families=model.families,
    )
    what = (
        [("row", int(i), 1) for i in up]
        + [("row", int(i), -1) for i in lo]
        + [("lb", int(j), 1) for j in lb_cols]
    )
    return out, what


def diagnose(data: ProblemData, extensions: Sequence[Extension] = ()) -> list[str]:
    """Sentences naming the conflicting rules and the smallest relaxation that fixes them."""
    model = build_model(data, extensions)
    lp, what = elastic(model)
    result = None
    for name in ("highspy", "highs", "glop"):
        try:
            result = get_backend(name).solve(lp, SolveOptions(time_limit=60.0))
        except Exception:  # try the next LP solver
            continue
        if result.x is not None:
            break
    if result is None or result.x is None or result.status is not Status.OPTIMAL:
        return [
            "infeasible: the diagnosis LP could not be solved; check floors, reserve, "
            "ceilings and hard thresholds against capacity"
        ]
    slack = result.x[model.num_vars :]
    grouped: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for (kind, idx, sign), s in zip(what, slack, strict=True):
        if s <= TOL:
            continue
        if kind == "row":
            name = model.row_name(idx)
            fam = name.split("[", 1)[0]
            side = "above its upper limit" if sign > 0 else "below its lower limit"
            grouped[fam].append((f"{name} by {s:.4g} ({side})", s))
        else:
            name = model.var_name(idx)
            grouped[name.split("[", 1)[0] + "-lower-bound"].append((f"{name} by {s:.4g}", s))
    if not grouped:
        return [
            "infeasible only with the integer rules (time-to-live or provisioning binaries); "
            "the continuous rules can all hold"
        ]
    total = float(slack.sum())
    out = [f"infeasible: the smallest relaxation moves {total:.4g} units in total"]
    for fam, items in grouped.items():
        items.sort(key=lambda x: -x[1])
        shown = "; ".join(t for t, _ in items[:8])
        more = f" and {len(items) - 8} more" if len(items) > 8 else ""
        out.append(f"{_HINTS.get(fam, fam)}: relax {shown}{more}")
    return out


_HINTS = {
    "reserve": "base quotas (floors) do not fit in capacity - reserve: lower floors or the reserve",
    "capacity": "parent capacity is too small: raise it or lower floors/thresholds",
    "min_coverage": "hard performance thresholds cannot all be met: lower min_coverage or add "
    "capacity for these accounts",
    "ceiling": "ceilings are too low for the required coverage: raise them",
    "quota-lower-bound": "floors cannot all be kept: lower these floors",
    "lend-lower-bound": "loans committed until expiry cannot be kept: return them early",
    "borrow-lower-bound": "loans committed until expiry cannot be kept: return them early",
}

__all__ = ["diagnose", "elastic"]
