"""Overloaded organisations around a workload graph, for tests and benchmarks (deterministic).

:func:`overloaded_case` takes workloads and edges (say from
:func:`planner.scenarios.alibaba_workload_graph`) and builds the rest:

- resources ``cpu`` (cores) and ``memory`` (GiB);
- per workload a demand level drawn from ``seed`` (lognormal cpu, memory 4 GiB per core x a
  lognormal factor) times a daily curve of ``horizon`` hourly periods
  (:func:`planner.formulation.synthetic.synthetic_shapes`); an account's target is the sum of
  its workloads' curves, and each workload's share is its share of the account's peak;
- each account has ``application_profile = "svc"`` and a ceiling of ``peak / overload`` on
  both resources (``overload > 1`` forces a move), quota = its ceiling, a parent whose
  capacity exceeds the summed peaks twice over (no account is short of *parent* capacity);
- the template ``svc``: seed 1 core / 1 GiB, limits equal to the largest ceiling, opening cost
  ``opening_cost``;
- rules: no loans, no shadows, no churn or holding cost (so a case's objective is unmet demand,
  opening, migration and cut traffic only, which :mod:`planner.provision.brute` evaluates
  exactly), ``cut_cost`` per unit of traffic, ``unmet_cost`` per unit-period.

:func:`cut_first_cut_cost` gives the price of traffic at which such a case's objective puts the
cut before migration and opening (a fixed price does not: the real graphs' lightest edges,
rescaled, carry 1e-4 of the mean traffic).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

import numpy as np

from models import (
    AccountTemplate,
    DependencyEdge,
    NeedProfile,
    NegotiationRules,
    Organisation,
    ParentAccount,
    Resource,
    ResourceDemand,
    SubAccount,
    Workload,
)
from planner.formulation.core import FloatArray
from planner.formulation.synthetic import START, synthetic_shapes
from planner.provision.demand import WorkloadDemand

RESOURCES = ("cpu", "memory")


@dataclass
class Case:
    """An organisation, its need profiles, per-workload demand and the plan start."""

    org: Organisation
    profiles: dict[str, NeedProfile]
    demand: WorkloadDemand
    start: datetime
    workload_curves: FloatArray  # (workloads, resources, periods)


def overloaded_case(
    workloads: Sequence[Workload],
    edges: Sequence[DependencyEdge],
    *,
    seed: int = 0,
    overload: float = 1.3,
    horizon: int = 12,
    opening_cost: float = 50.0,
    cut_cost: float = 1.0,
    unmet_cost: float = 100.0,
    max_new_accounts: int = 4,
    must_stay_together: Sequence[tuple[str, str]] = (),
    max_cut_traffic: float | None = None,
    template_limit_scale: float = 1.0,
    mean_traffic: float | None = 10.0,
    name: str = "overloaded",
) -> Case:
    """Build an organisation in which some accounts exceed their ceiling (module docstring).

    Parameters
    ----------
    workloads, edges
        The workload graph; each workload's ``account`` names its account.
    seed
        Demand levels and curves.
    overload
        Peak demand / ceiling of every account (> 1: something must move or go unmet).
    horizon
        Hourly periods.
    opening_cost, cut_cost, unmet_cost, max_new_accounts, must_stay_together, max_cut_traffic
        Prices and rules.
    template_limit_scale
        Template limits = this x the largest account ceiling.
    mean_traffic
        Rescale the edge weights to this mean (``None``: keep them). Raw call counts run to
        the thousands; rescaled, cut traffic weighs against migration and opening costs.
    name
        Organisation name.
    """
    if not overload > 0:
        raise ValueError(f"The 'overload' parameter must be > 0. Got {overload!r} instead.")
    if mean_traffic is not None and edges:
        mean = float(np.mean([e.weight for e in edges]))
        if mean > 0:
            edges = [e.model_copy(update={"weight": e.weight * mean_traffic / mean}) for e in edges]
    rng = np.random.default_rng([seed, 7])
    n = len(workloads)
    cpu = rng.lognormal(0.0, 0.6, size=n)
    mem = 4.0 * cpu * rng.lognormal(0.0, 0.3, size=n)
    shapes = synthetic_shapes(n, horizon, seed=seed)
    curves = np.stack([cpu[:, None] * shapes, mem[:, None] * shapes], axis=1)
    accounts = sorted({w.account for w in workloads})
    pos = {a: i for i, a in enumerate(accounts)}
    acc_curve = np.zeros((len(accounts), len(RESOURCES), horizon))
    rows = np.array([pos[w.account] for w in workloads], dtype=np.int64)
    np.add.at(acc_curve, rows, curves)
    peaks = acc_curve.max(axis=2)
    ceilings = peaks / overload
    periods = [START.replace(tzinfo=None) + timedelta(hours=h) for h in range(horizon)]
    profiles = {
        a: NeedProfile(
            account=a,
            demand={
                r: ResourceDemand(resource=r, periods=periods, target=acc_curve[i, j].tolist())
                for j, r in enumerate(RESOURCES)
            },
        )
        for a, i in pos.items()
    }
    subs = [
        SubAccount(
            id=a,
            quota={r: float(ceilings[i, j]) for j, r in enumerate(RESOURCES)},
            ceiling={r: float(ceilings[i, j]) for j, r in enumerate(RESOURCES)},
            application_profile="svc",
        )
        for a, i in pos.items()
    ]
    limit = ceilings.max(axis=0) * template_limit_scale
    org = Organisation(
        name=name,
        resources=[Resource(name="cpu", unit="cores"), Resource(name="memory", unit="GiB")],
        parent=ParentAccount(
            capacity={r: float(2.0 * peaks[:, j].sum()) for j, r in enumerate(RESOURCES)}
        ),
        accounts=subs,
        workloads=list(workloads),
        edges=list(edges),
        templates=[
            AccountTemplate(
                id="svc",
                application_profile="svc",
                seed={"cpu": min(1.0, float(limit[0])), "memory": min(1.0, float(limit[1]))},
                limits={r: float(limit[j]) for j, r in enumerate(RESOURCES)},
                opening_cost=opening_cost,
            )
        ],
        rules=NegotiationRules(
            period_minutes=60,
            horizon_periods=horizon,
            allow_loans=False,
            allow_shadow=False,
            churn_cost=0.0,
            unmet_cost=unmet_cost,
            cut_cost=cut_cost,
            max_new_accounts=max_new_accounts,
            max_cut_traffic_per_account=max_cut_traffic,
            must_stay_together=list(must_stay_together),
        ),
    )
    peak_w = curves.max(axis=2)
    share_peaks = {
        (w.id, r): float(peak_w[i, j])
        for i, w in enumerate(workloads)
        for j, r in enumerate(RESOURCES)
    }
    demand = WorkloadDemand.from_peaks(org, share_peaks, note="generated case: shares of peaks")
    return Case(org, profiles, demand, periods[0], curves)


def cut_first_cut_cost(org: Organisation) -> float:
    """A ``cut_cost`` at which cutting any traffic outweighs every migration and opening.

    ``S`` is the most a plan can spend on anything but cut and unmet demand in a generated
    case (module docstring: no quota, churn or holding cost): every migratable workload's
    migration cost plus ``rules.max_new_accounts`` openings of the dearest template. ``w`` is
    the lightest positive edge weight. The price is ten times the least power of ten at or
    above ``S / w``, so ``price x w >= 10 S``: among plans that leave the same demand unmet,
    any plan that cuts an edge costs more than any plan that cuts none, and a plan whose cut
    exceeds another's by ``w`` or more costs more whatever either moves or opens (cuts that
    differ by less than ``w`` are not ordered). Among plans with no unmet demand, a cutting
    plan costs at least ten times a zero-cut one, so no MIP relative gap below 0.9 accepts it
    in the zero-cut plan's place. 1.0 when no edge carries traffic or nothing can be spent.

    Raises
    ------
    ValueError
        When the parent charges for quota (``cost_per_unit``) or the rules price churn, loans
        or shadow quotas: ``S`` would not bound those costs.
    """
    rules = org.rules
    priced = (
        any(v > 0 for v in org.parent.cost_per_unit.values())
        or rules.churn_cost > 0
        or (rules.allow_loans and rules.loan_premium > 0)
        or (rules.allow_shadow and rules.shadow_premium > 0)
    )
    if priced:
        raise ValueError(
            "cut_first_cut_cost bounds migration and opening only; this organisation also "
            "prices quota, churn, loans or shadow quotas"
        )
    weights = [e.weight for e in org.edges if e.weight > 0]
    if not weights:
        return 1.0
    migration = sum(w.migration_cost for w in org.workloads if w.migratable)
    opening = max((t.opening_cost for t in org.templates), default=0.0)
    spend = migration + org.rules.max_new_accounts * opening
    if spend <= 0:
        return 1.0
    return float(10.0 ** (math.ceil(math.log10(spend / min(weights)) - 1e-12) + 1))
