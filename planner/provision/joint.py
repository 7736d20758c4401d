"""The joint program with its provisioning block: build, solve, read back.

:func:`solve_joint` is the library path used by the benchmark and the tests; the negotiation
engine (:mod:`planner.mip`) can take the same extension (:func:`provisioning_extension`) and read
its plan's provisioning part with :func:`extract_provisioning`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from models import (
    NeedProfile,
    NewAccount,
    Organisation,
    Plan,
    QuotaAssignment,
    SolverReport,
    Status,
)
from planner.backends import SolveOptions, SolveResult, get_backend
from planner.formulation import build_model, problem_data
from planner.formulation.allocation import unmet_values
from planner.formulation.core import FloatArray, LinearModel, ModelBuilder
from planner.formulation.data import ProblemData
from planner.formulation.provisioning import (
    Candidate,
    ProvisioningLayout,
    candidate_accounts,
    matching_template,
    provisioning_extension,
)
from planner.provision.coarsen import DEFAULT_MAX_CLUSTERS, Coarsening, coarsen
from planner.provision.demand import WorkloadDemand
from planner.provision.extract import ProvisioningOutcome, attach, outcome
from planner.provision.refine import refine_solution

TOL = 1e-6


@dataclass
class JointResult:
    """What :func:`solve_joint` returns: the model, the solve and the provisioning outcome."""

    model: LinearModel
    data: ProblemData
    solve: SolveResult
    outcome: ProvisioningOutcome
    coarse: Coarsening
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def unmet_total(self) -> float:
        """Unit-periods of demand left uncovered, existing and new accounts together."""
        if self.solve.x is None:
            return math.nan
        total = float(unmet_values(self.model, self.solve.x).sum())
        if "new_unmet" in self.model.blocks:
            total += float(self.model.values("new_unmet", self.solve.x).sum())
        return total


def splittable_accounts(org: Organisation) -> list[str]:
    """Accounts whose workloads may move: they have a matching, splittable template."""
    return [a for a in org.account_ids if matching_template(org, a) is not None]


def solve_joint(
    org: Organisation,
    profiles: Mapping[str, NeedProfile],
    workload_demand: WorkloadDemand,
    *,
    start: datetime,
    solver: str | None = None,
    max_clusters: int = DEFAULT_MAX_CLUSTERS,
    candidates: Sequence[Candidate] | None = None,
    time_limit: float | None = None,
    relative_gap: float = 1e-4,
    threads: int | None = None,
    refine: int = 3,
) -> JointResult:
    """Build the negotiation model with the provisioning block, solve it, read the outcome.

    Parameters
    ----------
    org, profiles, start
        As for the negotiation engine.
    workload_demand
        Each workload's share of its account's demand (:class:`WorkloadDemand`).
    solver
        Backend name (default ``highs``).
    max_clusters
        Coarsening bound per account (:func:`planner.provision.coarsen.coarsen`).
    candidates
        Candidate new accounts (default: derived from the predicted excess).
    time_limit, relative_gap, threads
        Solve options (the time limit covers both passes).
    refine
        Most refinement passes (:mod:`planner.provision.refine`, budget ``2 x max_clusters``
        free units per account each); each is kept when it improves the objective, and the
        passes stop at the first that does not. 0: none.

    Returns
    -------
    JointResult
        With an empty outcome when the solve found no feasible solution (see ``solve.status``).
    """
    t0 = time.perf_counter()
    ext = ProvisioningExtension(
        org, workload_demand, max_clusters=max_clusters, candidates=candidates
    )
    coarse = ext.coarse
    t1 = time.perf_counter()
    data = problem_data(org, profiles, start=start)
    model = build_model(data, extensions=[ext])
    t2 = time.perf_counter()
    opts = SolveOptions(time_limit=time_limit, relative_gap=relative_gap, threads=threads)
    res = get_backend(solver).solve(model, opts)
    t3 = time.perf_counter()
    passes = 1
    while refine and passes <= refine and res.x is not None:
        left = None if time_limit is None else max(time_limit - (time.perf_counter() - t0), 1.0)
        more = refine_solution(
            data,
            model,
            res.x,
            solver=solver,
            options=SolveOptions(time_limit=left, relative_gap=relative_gap, threads=threads),
            budget=2 * max_clusters,
        )
        if more is None or more[1].objective >= res.objective - 1e-7 * max(1.0, abs(res.objective)):
            break
        model, res = more
        coarse = model.meta["provisioning"].coarse
        passes += 1
    t4 = time.perf_counter()
    if res.x is not None:
        out = extract_provisioning(model, res.x)
    else:
        out = ProvisioningOutcome(notes=[f"no feasible solution: {res.status.value}"])
    seconds = {
        "coarsen": t1 - t0,
        "build": t2 - t1,
        "solve": t3 - t2,
        "refine": t4 - t3,
        "total": time.perf_counter() - t0,
        "passes": passes,
    }
    return JointResult(model, data, res, out, coarse, seconds)


def extract_provisioning(model: LinearModel, x: FloatArray) -> ProvisioningOutcome:
    """The provisioning part of a solution of a model built with the provisioning extension.

    Opened candidates become :class:`models.NewAccount` (id = the candidate's id, quota from
    ``new_quota`` rounded to 6 decimals); every workload of a placed cluster moves; moved demand
    is each workload's peak share of its source's target over the horizon.
    """
    lay: ProvisioningLayout | None = model.meta.get("provisioning")
    data: ProblemData | None = model.meta.get("data")
    if lay is None or data is None or not lay.pairs:
        return ProvisioningOutcome(notes=list(lay.notes) if lay else [])
    opened = model.values("open", x) > 0.5
    quota = model.values("new_quota", x)
    place = model.values("place", x) > 0.5
    new_unmet = model.values("new_unmet", x)
    accounts = []
    for k, cand in enumerate(lay.candidates):
        if not opened[k]:
            continue
        accounts.append(
            NewAccount(
                id=cand.id,
                name=f"{cand.source} ({cand.template.application_profile}) #{cand.id.rsplit('new', 1)[-1]}",
                template=cand.template.id,
                seed=dict(cand.template.seed),
                quota={r: round(float(quota[k, j]), 6) for j, r in enumerate(data.resources)},
            )
        )
    moves: dict[str, str] = {}
    moved: dict[str, dict[str, float]] = {}
    acc_pos = {a: i for i, a in enumerate(data.accounts)}
    for p, (c, k) in enumerate(lay.pairs):
        if not place[p]:
            continue
        cl = lay.coarse.clusters[c]
        for w in cl.members:
            moves[w] = lay.candidates[k].id
    if moves:
        wd = _member_shares(lay)
        for w in moves:
            src = lay.coarse.clusters[lay.coarse.cluster_of[w]].account
            peak = data.demand[acc_pos[src]].max(axis=1)
            moved[w] = {r: float(wd[w][j] * peak[j]) for j, r in enumerate(data.resources)}
    unmet = {
        cand.id: {
            r: float(new_unmet[k, j].sum())
            for j, r in enumerate(data.resources)
            if new_unmet[k, j].sum() > TOL
        }
        for k, cand in enumerate(lay.candidates)
        if opened[k]
    }
    notes = [*lay.coarse.notes, *lay.notes]
    return outcome(
        data.org, moves, accounts, moved, unmet={k: v for k, v in unmet.items() if v}, notes=notes
    )


def _member_shares(lay: ProvisioningLayout) -> dict[str, FloatArray]:
    """Share of each movable workload, from the layout (clusters carry summed shares)."""
    shares = lay.coarse.shares
    if shares is not None:
        pos = shares.index()
        return {w: shares.share[pos[w]] for w in lay.coarse.cluster_of}
    # without per-workload shares, split a cluster's share evenly among its members
    out: dict[str, FloatArray] = {}
    for c in lay.coarse.clusters:
        for w in c.members:
            out[w] = np.asarray(c.share) / len(c.members)
    return out


def solved(result: JointResult) -> bool:
    """Whether the joint solve produced a plan."""
    return result.solve.status in (Status.OPTIMAL, Status.FEASIBLE)


def joint_plan(result: JointResult) -> Plan:
    """A :class:`models.Plan` of a joint solve: base quotas, unmet demand and the provisioning.

    A minimal plan for the tests and the benchmark (no loans, shadows or explanations, which
    the negotiation engine's extraction adds); without a feasible solution, the current quotas
    and an empty provisioning.
    """
    d = result.data
    x = result.solve.x
    quotas = []
    unmet: dict[str, dict[str, float]] = {}
    if x is not None:
        q = result.model.values("quota", x)
        um = unmet_values(result.model, x).sum(axis=2)
    for i, a in enumerate(d.accounts):
        for j, r in enumerate(d.resources):
            after = float(q[i, j]) if x is not None else float(d.quota0[i, j])
            quotas.append(
                QuotaAssignment(account=a, resource=r, before=float(d.quota0[i, j]), after=after)
            )
            if x is not None and um[i, j] > TOL:
                unmet.setdefault(a, {})[r] = float(um[i, j])
    s = result.solve
    report = SolverReport(
        method="mip+provisioning",
        solver=s.solver,
        status=s.status,
        objective=s.objective if x is not None else None,
        bound=s.bound,
        gap=s.gap,
        build_seconds=result.seconds.get("build", 0.0),
        solve_seconds=s.solve_seconds,
        wall_seconds=result.seconds.get("total", 0.0),
        messages=[s.message, *result.outcome.notes],
    )
    base = Plan(
        organisation=d.org.name,
        created_at=datetime.now(UTC),
        start=d.start,
        period_minutes=d.org.rules.period_minutes,
        periods=len(d.periods),
        quotas=quotas,
        unmet=unmet,
        report=report,
    )
    return attach(base, result.outcome)


class ProvisioningExtension:
    """The provisioning block as one object for the negotiation engine.

    ``ext(builder, data)`` adds the block (it is an extension for
    :func:`planner.formulation.build_model`); ``ext.finish(model, x, plan)`` returns ``plan``
    with the new accounts, migrations, peers and new accounts' unmet demand of solution ``x``.

    Parameters
    ----------
    org
        The organisation (coarsened once, here).
    shares
        Each workload's share of its account's demand.
    max_clusters
        Coarsening bound per account.
    candidates
        Candidate new accounts (default: derived from the predicted excess when building).
    """

    def __init__(
        self,
        org: Organisation,
        shares: WorkloadDemand,
        *,
        max_clusters: int = DEFAULT_MAX_CLUSTERS,
        candidates: Sequence[Candidate] | None = None,
    ) -> None:
        self.coarse = coarsen(
            org, shares, max_clusters=max_clusters, accounts=splittable_accounts(org)
        )
        self._candidates = None if candidates is None else list(candidates)
        self._extend = provisioning_extension(self.coarse, candidates=candidates)

    def has_candidates(self, data: ProblemData) -> bool:
        """Whether the program for ``data`` would consider opening any account (without
        candidates the extension adds nothing and the program need not carry it)."""
        if self._candidates is not None:
            return bool(self._candidates)
        return bool(candidate_accounts(data, self.coarse))

    def __call__(self, builder: ModelBuilder, data: ProblemData) -> None:
        """Add the provisioning block to ``builder``."""
        self._extend(builder, data)

    def finish(self, model: LinearModel, x: FloatArray | None, plan: Plan) -> Plan:
        """``plan`` with the provisioning part of ``x`` (unchanged without a solution)."""
        if x is None:
            return plan
        return attach(plan, extract_provisioning(model, x))


def provisioning_for(
    org: Organisation,
    usage: pd.DataFrame | None = None,
    *,
    start: datetime | None = None,
    shares: WorkloadDemand | None = None,
    max_clusters: int = DEFAULT_MAX_CLUSTERS,
) -> ProvisioningExtension | None:
    """The provisioning extension for ``org``, or ``None`` when nothing could be provisioned.

    ``None`` when the rules forbid new accounts, or no account has both a splittable template
    and a workload. Shares come from ``shares``, else from ``usage``'s ``workload`` column
    (:meth:`WorkloadDemand.from_usage`), else are equal.
    """
    rules = org.rules
    if not rules.allow_new_accounts or rules.max_new_accounts == 0:
        return None
    movable = set(splittable_accounts(org))
    if not any(w.account in movable for w in org.workloads):
        return None
    if shares is None:
        shares = (
            WorkloadDemand.from_usage(org, usage, start=start)
            if usage is not None
            else WorkloadDemand.equal(org)
        )
    return ProvisioningExtension(org, shares, max_clusters=max_clusters)
