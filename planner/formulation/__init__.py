"""One solver-neutral formulation of the negotiation, built from arrays.

``build_model(data)`` is a flat list of ``define_<family>`` calls (see
:mod:`planner.formulation.allocation`); every backend takes the returned
:class:`~planner.formulation.core.LinearModel` unchanged.

Extending the model (issue 5, ``planner/formulation/provisioning.py``)
-------------------------------------------------------------------
Write ``extend(builder: ModelBuilder, data: ProblemData) -> None`` and pass it in
``build_model(data, extensions=[extend])``. It runs after the base blocks and families exist and
may:

- add blocks: ``builder.add_block("open", ("template",), (ids,), upper=1, integer=True,
  cost=opening_cost)``, ``place[w,k]``, ``cut[e]``, new accounts' ``new_quota[k,r]``;
- add families: ``builder.add_family("open_link", ...)`` then ``builder.add_terms(...)``;
- add terms to base families by name: new quotas into ``capacity[r,t]`` (and ``reserve[r]``),
  moved demand into ``coverage[a,r,t]`` (``+ place[w,k] x d_w[r,t]`` on the source account's
  row releases the demand it no longer carries);
- register a rounding rule for its binaries in fast mode:
  ``builder.meta.setdefault("rounders", {})["open"] = fn(model, x_lp) -> values``.

Plans read their blocks back with ``model.values("open", x)``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable

from planner.formulation.allocation import FAMILIES, define_variables, ttl_pairs
from planner.formulation.core import Block, Family, LinearModel, ModelBuilder
from planner.formulation.data import ProblemData, problem_data

Extension = Callable[[ModelBuilder, ProblemData], None]

__all__ = [
    "Block",
    "Extension",
    "Family",
    "LinearModel",
    "ModelBuilder",
    "ProblemData",
    "build_model",
    "problem_data",
    "ttl_pairs",
]


def build_model(data: ProblemData, extensions: Iterable[Extension] = ()) -> LinearModel:
    """Build the negotiation model of ``data``, with optional extensions.

    Parameters
    ----------
    data
        Arrays from :func:`problem_data`.
    extensions
        Callables ``f(builder, data)`` run after the base families (see the module docstring).

    Returns
    -------
    LinearModel
        The assembled model; ``build_seconds`` says how long building took.
    """
    t0 = time.perf_counter()
    b = ModelBuilder(name=f"negotiation-{data.org.name}")
    b.meta["data"] = data
    define_variables(b, data)
    for define in FAMILIES:
        define(b, data)
    for ext in extensions:
        ext(b, data)
    model = b.build()
    model.build_seconds = time.perf_counter() - t0
    return model
