"""Fast-mode rounding of the provisioning binaries (``mip-fast``: LP, round, fix, re-solve).

The LP relaxation of opening and placement is weak in a known way: with
``place[c,k] <= open[k]`` an LP may open a candidate by a fraction ``x`` and move the fraction
``x`` of *every* cluster, so no ``place`` value reaches 0.5, and thresholding moves nothing.
What the LP does get right is *how much* must move. So, per source account:

1. the *target* is the peak demand the LP moves out of it:
   ``T[r] = sum_{k of a} sum_c place[c,k] x peak D[c,r]``;
2. its candidates are filled in order of their LP ``open`` value (largest first) until the
   target is met; each takes a *connected* set grown from a start cluster by adding, next, the
   free cluster with the most traffic to the set (ties: larger LP value, then index) that keeps
   the moved peak within the candidate's quota bound, until the set holds what is still to move;
3. every free cluster (the ``STARTS`` with the largest LP values) is tried as the start; the set
   kept is the one that falls least short of the target, then costs least
   (``cut_cost x traffic it cuts + migration cost``);
4. ``open[k] = 1`` exactly when something was placed in ``k``; only the
   ``rules.max_new_accounts`` candidates with the largest LP ``open`` values may be filled.

The result is deterministic, so ``round_place`` and ``round_open`` agree when called apart.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from planner.formulation.core import FloatArray, LinearModel
from planner.provision.coarsen import Coarsening

if TYPE_CHECKING:
    from planner.formulation.provisioning import ProvisioningLayout

EPS = 1e-6
STARTS = 20


def rounded_placement(model: LinearModel, x: FloatArray) -> FloatArray:
    """0/1 ``place`` values by the rule of the module docstring."""
    lay: ProvisioningLayout = model.meta["provisioning"]
    data = model.meta.get("data")
    cut_cost = float(data.org.rules.cut_cost) if data is not None else 1.0
    place = model.values("place", x)
    opened = model.values("open", x)
    q_hi = model.blocks["new_quota"].upper.reshape(model.blocks["new_quota"].shape)
    peak = lay.cluster_demand.max(axis=2)
    coarse = lay.coarse
    nbrs: dict[int, dict[int, float]] = defaultdict(dict)
    for i, j, w in coarse.edges:
        nbrs[i][j] = w
        nbrs[j][i] = w
    pair_of = {pair: p for p, pair in enumerate(lay.pairs)}
    lp: dict[int, float] = defaultdict(float)
    by_source: dict[str, list[int]] = defaultdict(list)
    for k, cand in enumerate(lay.candidates):
        by_source[cand.source].append(k)
    for p, (c, _) in enumerate(lay.pairs):
        lp[c] += float(place[p])
    out = np.zeros_like(place)
    # at most rules.max_new_accounts open: those the LP opens most
    budget = int(data.org.rules.max_new_accounts) if data is not None else len(lay.candidates)
    ranked = sorted(range(len(lay.candidates)), key=lambda k: (-opened[k], k))
    allowed = {k for k in ranked[:budget] if opened[k] > EPS}
    for source, ks in by_source.items():
        clusters = [c for c in coarse.of_account(source) if (c, ks[0]) in pair_of]
        target = sum((lp[c] * peak[c] for c in clusters), np.zeros(peak.shape[1]))
        taken: set[int] = set()
        for k in sorted(ks, key=lambda k: (-opened[k], k)):
            left = target - sum((peak[c] for c in taken), np.zeros(peak.shape[1]))
            if k not in allowed or not (left > EPS).any():
                continue
            free = [c for c in clusters if c not in taken]
            starts = sorted(free, key=lambda c: (-lp[c], c))[:STARTS]
            best: tuple[float, float, set[int]] | None = None
            for s in starts:
                got = _grow(s, free, left, q_hi[k], peak, nbrs, lp)
                short = float(np.maximum(left - sum(peak[c] for c in got), 0).max())
                cost = _cost(got, nbrs, coarse.fixed_traffic, cut_cost, coarse)
                key = (round(short / EPS) * EPS, cost)
                if best is None or key < best[:2]:
                    best = (*key, got)
            if best is None or not best[2]:
                continue
            for c in best[2]:
                out[pair_of[(c, k)]] = 1.0
            taken |= best[2]
    return out


def _grow(
    start: int,
    free: list[int],
    left: FloatArray,
    cap: FloatArray,
    peak: FloatArray,
    nbrs: dict[int, dict[int, float]],
    lp: dict[int, float],
) -> set[int]:
    if (peak[start] > cap + EPS).any():
        return set()
    inside = {start}
    moved = peak[start].copy()
    pool = set(free) - inside
    while (moved < left - EPS).any():
        fits = [c for c in pool if (moved + peak[c] <= cap + EPS).all()]
        if not fits:
            break
        nxt = max(fits, key=lambda c: (sum(nbrs[c].get(v, 0.0) for v in inside), lp[c], -c))
        inside.add(nxt)
        pool.discard(nxt)
        moved = moved + peak[nxt]
    return inside


def _cost(
    group: set[int],
    nbrs: dict[int, dict[int, float]],
    fixed: FloatArray,
    cut_cost: float,
    coarse: Coarsening,
) -> float:
    cut = sum(w for c in group for v, w in nbrs[c].items() if v not in group)
    cut += float(sum(fixed[c] for c in group))
    migration = sum(coarse.clusters[c].migration_cost for c in group)
    return cut_cost * cut + migration


def round_place(model: LinearModel, x: FloatArray) -> FloatArray:
    """Rounder for the ``place`` block (``meta["rounders"]["place"]``)."""
    return rounded_placement(model, x)


def round_open(model: LinearModel, x: FloatArray) -> FloatArray:
    """Rounder for the ``open`` block: open exactly the candidates something moves into."""
    lay: ProvisioningLayout = model.meta["provisioning"]
    placed = rounded_placement(model, x)
    out = np.zeros(len(lay.candidates))
    for p, (_, k) in enumerate(lay.pairs):
        out[k] = max(out[k], placed[p])
    return out
