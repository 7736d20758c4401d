"""Fast-mode rounding of the provisioning binaries (``mip-fast``: LP, round, fix, re-solve).

The LP relaxation of opening and placement is weak in a known way: with
``place[c,k] <= open[k]`` an LP may open a candidate by a fraction ``x`` and move the fraction
``x`` of *every* cluster, so no single ``place`` value reaches 0.5. Thresholding would then move
nothing. Instead, per candidate ``k`` (in order) with ``open[k] > 0`` in the LP:

1. the *target* is the peak demand the LP moves to ``k``: ``T[r] = sum_c place[c,k] x
   peak D[c,r]``;
2. a connected set grows from the cluster with the largest LP value, adding next the cluster
   with the most traffic to the set (ties: larger LP value, then index) that is not yet placed
   and keeps the moved peak within the candidate's quota bound, until the moved peak reaches
   ``T`` on every resource;
3. ``open[k] = 1`` exactly when something was placed in ``k``.

The result is deterministic, so ``round_place`` and ``round_open`` agree when called apart.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from planner.formulation.core import FloatArray, LinearModel

if TYPE_CHECKING:
    from planner.formulation.provisioning import ProvisioningLayout

EPS = 1e-6


def rounded_placement(model: LinearModel, x: FloatArray) -> FloatArray:
    """0/1 ``place`` values by the rule of the module docstring."""
    lay: ProvisioningLayout = model.meta["provisioning"]
    place = model.values("place", x)
    opened = model.values("open", x)
    q_hi = model.blocks["new_quota"].upper.reshape(model.blocks["new_quota"].shape)
    peak = lay.cluster_demand.max(axis=2) if lay.cluster_demand.size else np.zeros((0, 0))
    nbrs: dict[int, dict[int, float]] = defaultdict(dict)
    for i, j, w in lay.coarse.edges:
        nbrs[i][j] = w
        nbrs[j][i] = w
    by_k: dict[int, list[int]] = defaultdict(list)
    for p, (_, k) in enumerate(lay.pairs):
        by_k[k].append(p)
    out = np.zeros_like(place)
    taken: set[int] = set()
    for k in range(len(lay.candidates)):
        if opened[k] <= EPS or not by_k[k]:
            continue
        ps = by_k[k]
        lp = {lay.pairs[p][0]: float(place[p]) for p in ps}
        pair = {lay.pairs[p][0]: p for p in ps}
        target = sum(lp[c] * peak[c] for c in lp)
        moved = np.zeros(peak.shape[1])
        inside: set[int] = set()
        while (moved < target - EPS).any():
            free = [c for c in lp if c not in taken and c not in inside]
            fits = [c for c in free if (moved + peak[c] <= q_hi[k] + EPS).all()]
            if not fits:
                break
            best = max(
                fits,
                key=lambda c: (sum(nbrs[c].get(v, 0.0) for v in inside), lp[c], -c),
            )
            inside.add(best)
            moved = moved + peak[best]
        for c in inside:
            out[pair[c]] = 1.0
        taken |= inside
    return out


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
