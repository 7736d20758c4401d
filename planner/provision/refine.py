"""Refinement: un-coarsen the clusters at the cut and re-solve with the rest fixed.

Coarsening bounds the binaries but moves whole clusters, so a coarse plan may move more than it
must (migration cost) or cut where a finer split would not. One refinement pass, as in
multilevel graph partitioning, fixes that where it matters:

1. From the coarse solution, a cluster is on the *boundary* when one of its edges joins it to a
   cluster placed elsewhere, or when it moved and has traffic to pinned workloads.
2. Per account, clusters are expanded back into their must-stay-together groups in this order
   until the free units (members of expanded clusters) reach ``budget``: moved boundary clusters, kept boundary clusters,
   other moved clusters (each group by decreasing cut traffic, then id).
3. The model is rebuilt on the finer partition; every cluster that was *not* expanded keeps its
   coarse placement (its ``place`` variables are fixed), so only expanded units and the opening
   decisions are free: at most ``budget x candidates`` free placement binaries per account.
4. The coarse placement is feasible in the refined model, so the refined objective is never
   worse (up to the solver's gap); the better solution is kept.
"""

from __future__ import annotations

from collections import defaultdict

from planner.backends import SolveOptions, SolveResult, get_backend
from planner.formulation import build_model
from planner.formulation.core import FloatArray, LinearModel
from planner.formulation.data import ProblemData
from planner.formulation.provisioning import ProvisioningLayout, provisioning_extension
from planner.provision.coarsen import Coarsening, refine


def expansion(lay: ProvisioningLayout, place: FloatArray, budget: int) -> list[int]:
    """Clusters to expand (rules 1-2 of the module docstring)."""
    coarse = lay.coarse
    where: dict[int, int] = {}
    for p, (c, k) in enumerate(lay.pairs):
        if place[p] > 0.5:
            where[c] = k
    cut: dict[int, float] = defaultdict(float)
    for i, j, w in coarse.edges:
        if where.get(i) != where.get(j):
            cut[i] += w
            cut[j] += w
    for c in where:
        if coarse.fixed_traffic[c] > 0:
            cut[c] += float(coarse.fixed_traffic[c])
    sources = {cand.source for cand in lay.candidates}
    chosen: list[int] = []
    for acc in sorted(sources):
        idx = coarse.of_account(acc)

        def rank(c: int) -> tuple[int, float, str]:
            moved, boundary = c in where, cut.get(c, 0.0) > 0
            tier = 0 if moved and boundary else 1 if boundary else 2 if moved else 3
            return tier, -cut.get(c, 0.0), coarse.clusters[c].id

        free = 0
        for c in sorted(idx, key=rank):
            if rank(c)[0] == 3:
                break
            units = _units(coarse, c)
            if units > 1 and free + units <= budget:
                chosen.append(c)
                free += units
    return chosen


def _units(coarse: Coarsening, c: int) -> int:
    """Free units cluster ``c`` adds once expanded: its members (its groups are no more)."""
    return len(coarse.clusters[c].members)


def refine_solution(
    data: ProblemData,
    model: LinearModel,
    x: FloatArray,
    *,
    solver: str | None,
    options: SolveOptions,
    budget: int,
) -> tuple[LinearModel, SolveResult] | None:
    """One refinement pass (module docstring); ``None`` when nothing is worth expanding.

    Parameters
    ----------
    data
        The problem data both models share.
    model, x
        The coarse model and its solution.
    solver, options
        How to solve the refined model.
    budget
        Most free units per source account.
    """
    lay: ProvisioningLayout | None = model.meta.get("provisioning")
    if lay is None or not lay.pairs:
        return None
    place = model.values("place", x)
    expand = expansion(lay, place, budget)
    if not expand:
        return None
    fine, origin = refine(data.org, lay.coarse, expand)
    ext = provisioning_extension(fine, candidates=lay.candidates)
    refined = build_model(data, extensions=[ext])
    lay2: ProvisioningLayout = refined.meta["provisioning"]
    coarse_value = {pair: float(place[p] > 0.5) for p, pair in enumerate(lay.pairs)}
    lower, upper = refined.lower.copy(), refined.upper.copy()
    off = refined.blocks["place"].offset
    for p, (c, k) in enumerate(lay2.pairs):
        old = origin[c]
        if old is not None:
            v = coarse_value.get((old, k), 0.0)
            lower[off + p] = upper[off + p] = v
    fixed = refined.with_bounds(lower, upper)
    res = get_backend(solver).solve(fixed, options)
    if res.x is None:
        return None
    return fixed, res
