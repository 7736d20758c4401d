"""Per-account explanations in plain words: asked, got, what bound it, what one more unit is worth.

``analyse`` finds, for every account and resource, the limits that were tight in the periods
where demand went unmet (parent capacity, the account's ceiling, its borrow limit, the shadow
fraction) and the marginal value of one more unit from the LP duals of its coverage rows
(available when the final solve was an LP, as in fast mode or when no time-to-live binary was
needed; otherwise the explanation says so).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from models import Explanation, Loan
from planner.backends.strategy import Solution
from planner.formulation import ProblemData
from planner.formulation.core import FloatArray

TOL = 1e-6


@dataclass
class Analysis:
    """Binding limits per (account, resource) and marginal values per account."""

    binding: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    marginal: FloatArray | None = None  # (account, resource): value of one more unit


def periods_text(periods: Sequence[datetime], mask: np.ndarray) -> str:
    """Contiguous runs of ``mask`` as ``HH:MM-HH:MM`` ranges (with the date when it changes)."""
    out: list[str] = []
    t, n = 0, len(mask)
    step = periods[1] - periods[0] if n > 1 else None
    while t < n:
        if not mask[t]:
            t += 1
            continue
        u = t
        while u + 1 < n and mask[u + 1]:
            u += 1
        end = periods[u] + step if step is not None else periods[u]
        out.append(f"{periods[t]:%m-%d %H:%M}-{end:%H:%M}")
        t = u + 1
    if len(out) > 4:
        out = [*out[:4], f"and {len(out) - 4} more"]
    return ", ".join(out)


def analyse(data: ProblemData, sol: Solution, v: dict[str, FloatArray]) -> Analysis:
    """Which limits bound each account where its demand went unmet."""
    rules = data.org.rules
    quota, shadow, borrow, unmet = v["quota"], v["shadow"], v["borrow"], v["unmet"]
    used = quota.sum(axis=0)[:, None] + shadow.sum(axis=0)  # (r, t)
    cap_tight = used >= data.capacity[:, None] - 1e-6 * np.maximum(1.0, data.capacity[:, None])
    out = Analysis()
    for i, j in zip(*np.nonzero(unmet.sum(axis=2) > TOL), strict=True):
        short = unmet[i, j] > TOL
        reasons: list[str] = []
        res = data.resources[j]
        m = short & cap_tight[j]
        if m.any():
            reasons.append(
                f"parent capacity of {res} fully used in {periods_text(data.periods, m)}"
            )
        total = quota[i, j] + shadow[i, j] + borrow[i, j]
        m = short & (total >= data.ceiling[i, j] - TOL)
        if m.any():
            reasons.append(
                f"its ceiling of {data.ceiling[i, j]:.4g} {res} in {periods_text(data.periods, m)}"
            )
        m = short & (borrow[i, j] >= data.borrow_limit[i, j] - TOL)
        if rules.allow_loans and np.isfinite(data.borrow_limit[i, j]) and m.any():
            reasons.append(f"its borrow limit of {data.borrow_limit[i, j]:.4g} {res}")
        m = short & (shadow[i, j] >= rules.shadow_max_fraction * quota[i, j] - TOL)
        if rules.allow_shadow and m.any() and quota[i, j] > 0:
            reasons.append(
                f"the shadow limit ({rules.shadow_max_fraction:g} x its base quota) in "
                f"{periods_text(data.periods, m)}"
            )
        if data.tail is not None:
            m = short & (unmet[i, j] <= data.tail.width[i, j] + TOL)
            if m.any():
                price = float(data.tail.price[i, j][m].mean())
                reasons.append(
                    f"the uncovered part lies above its median forecast in "
                    f"{periods_text(data.periods, m)}, where a unit costs {price:.2g} of its "
                    "unmet price (the chance that its demand reaches it)"
                )
        if not reasons:
            reasons.append(
                f"priority: its unmet demand is priced at {data.unmet_weight[i]:.4g} per "
                "unit-period, less than covering it would cost other accounts or the parent"
            )
        out.binding[(int(i), int(j))] = reasons
    if sol.duals is not None:
        out.marginal = np.abs(sol.duals["coverage"]).sum(axis=2)
    return out


def bid_reason(info: Analysis, i: int, j: int) -> str:
    """Why a bid was not fully granted."""
    reasons = info.binding.get((i, j))
    if not reasons:
        return "covered at its peak only in part; the rest of its demand is met"
    return "bound by " + "; ".join(reasons)


def explanations(
    data: ProblemData, v: dict[str, FloatArray], info: Analysis, loans: Sequence[Loan]
) -> list[Explanation]:
    """One plain-words explanation per account."""
    quota, shadow, unmet = v["quota"], v["shadow"], v["unmet"]
    lent: dict[tuple[str, str], list[Loan]] = {}
    got: dict[tuple[str, str], list[Loan]] = {}
    for loan in loans:
        lent.setdefault((loan.lender, loan.resource), []).append(loan)
        got.setdefault((loan.borrower, loan.resource), []).append(loan)
    out: list[Explanation] = []
    for i, a in enumerate(data.accounts):
        parts: list[str] = []
        binding: list[str] = []
        marginal: dict[str, float] = {}
        for j, r in enumerate(data.resources):
            peak = float(data.demand[i, j].max())
            q0, q1 = float(data.quota0[i, j]), float(quota[i, j])
            text = f"{r}: asked for {peak:.4g} at peak with a quota of {q0:.4g}; "
            text += f"base quota now {q1:.4g}" if abs(q1 - q0) > TOL else "base quota unchanged"
            if shadow[i, j].max() > TOL:
                text += (
                    f", shadow quota up to {shadow[i, j].max():.4g} in "
                    f"{periods_text(data.periods, shadow[i, j] > TOL)}"
                )
            if (a, r) in got:
                names = sorted({x.lender for x in got[(a, r)]})
                text += f", borrowed up to {max(x.amount for x in got[(a, r)]):.4g} from "
                text += ", ".join(names[:5]) + (" and others" if len(names) > 5 else "")
            if (a, r) in lent:
                names = sorted({x.borrower for x in lent[(a, r)]})
                text += f", lent up to {max(x.amount for x in lent[(a, r)]):.4g} to "
                text += ", ".join(names[:5]) + (" and others" if len(names) > 5 else "")
            left = float(unmet[i, j].sum())
            if left > TOL:
                reasons = info.binding.get((i, j), [])
                text += (
                    f"; {left:.4g} unit-periods uncovered in "
                    f"{periods_text(data.periods, unmet[i, j] > TOL)}, bound by "
                    + "; ".join(reasons)
                )
                binding.extend(reasons)
            if info.marginal is not None:
                marginal[r] = float(info.marginal[i, j])
                if marginal[r] > TOL:
                    text += (
                        f"; one more unit of {r} over the horizon would lower the cost by "
                        f"{marginal[r]:.4g}"
                    )
            parts.append(text + ".")
        if info.marginal is None:
            parts.append(
                "(Marginal values come from an LP solve; this run's final solve was a MIP.)"
            )
        out.append(
            Explanation(account=a, text=" ".join(parts), binding=binding, marginal_value=marginal)
        )
    return out
