"""The negotiation engine: one mixed-integer program for quotas, loans and shadow quotas.

``plan_mip`` builds the model from arrays (:mod:`planner.formulation`), solves it with a
backend from the registry (:mod:`planner.backends`), and reads back a full :class:`models.Plan`.
It never raises on a solver problem: a time limit returns the best incumbent with its gap; no
incumbent, a missing or unknown solver or a solver error return the greedy plan with
``report.fallback`` saying why (status ``error``); infeasible rules return the greedy plan with
status ``infeasible`` and the diagnosis in ``report.messages``.

Semantics chosen where the rules leave room (documented here and in the formulation):

- base quotas are stable over the horizon; ``reserve`` is held back from them (floors included),
  shadow quotas come from whatever capacity base quotas leave free;
- a shadow quota is at most ``shadow_max_fraction`` of the account's new base quota; it lives at
  most ``shadow_ttl_periods`` consecutive periods, counting the periods it was already active
  before ``start`` (from ``org.state``), then reverts for at least one period;
- loans go through the parent's pool: an account lends only from its base quota, within its
  lend limit, and may be asked to lend even when that leaves part of its own demand uncovered
  (the parent arbitrates by priority x criticality); every new loan goes back as soon as the
  lender's need exceeds what it kept (``reclaim="lender_need"``), unless
  ``rules.guaranteed_loans``: then a loan whose lender's high-quantile need stays below what
  it kept comes back only at expiry;
- loans in force with ``reclaim="expiry"`` are honoured until they end; those with
  ``reclaim="lender_need"`` are re-decided (kept, extended or returned);
- a loan record lasts at most ``loan_max_periods`` periods from its original start; a longer
  lending need becomes successive records;
- unmet demand costs ``unmet_cost x (1 + priority) / (1 + mean priority) x (1 + criticality)``
  per unit-period; the part of a target above the forecast's median costs that times the
  chance that real demand reaches it (about 0.2 for a P99 target), so one account's unlikely
  peak does not outbid another's median demand; under ``hard_thresholds`` at most
  ``1 - min_coverage`` of each period's demand may go unmet.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from models import (
    Bid,
    Loan,
    NeedProfile,
    Organisation,
    Plan,
    QuotaAssignment,
    ShadowQuota,
    SolverReport,
    StateChange,
    Status,
)
from planner.backends import SolveOptions, SolverUnavailableError
from planner.backends.strategy import SHADOW_EPS, Solution, solve_negotiation
from planner.formulation import Extension, ProblemData, build_model, problem_data
from planner.formulation.core import FloatArray
from planner.loans import high_quantile_need, loan_records

TOL = 1e-6


def plan_mip(
    org: Organisation,
    profiles: Mapping[str, NeedProfile],
    *,
    start: datetime,
    solver: str | None = None,
    fast: bool = False,
    time_limit: float | None = None,
    relative_gap: float = 1e-4,
    threads: int | None = None,
    seed: int = 0,
    export_model: Path | None = None,
    passthrough: Mapping[str, object] | None = None,
    extensions: Sequence[Extension] = (),
) -> Plan:
    """Negotiate quotas, loans and shadow quotas with one optimisation model.

    Parameters
    ----------
    org
        The organisation (rules, accounts, current state).
    profiles
        Need profile per account id; an account without one has zero demand.
    start
        Start of the first period.
    solver
        Backend name (default ``highs``); see :func:`planner.backends.available_backends`.
    fast
        LP relaxation, round the binaries, re-solve (bound: the relaxation).
    time_limit, relative_gap, threads, seed
        Common solve options.
    export_model
        Write the model there: ``.mps`` or ``.lp`` by suffix, otherwise both.
    passthrough
        Backend-specific options (see each backend's module).
    extensions
        Model extensions ``f(builder, data)`` (issue 5's provisioning); an extension with a
        ``finish(model, x, plan) -> Plan`` method completes the plan after the solve.

    Returns
    -------
    Plan
        Never raises for solver problems; see the module docstring.
    """
    t0 = time.perf_counter()
    method = "mip-fast" if fast else "mip"
    data = problem_data(org, profiles, start=start)
    if export_model is not None:
        export(data, Path(export_model), extensions)
    options = SolveOptions(
        time_limit=time_limit,
        relative_gap=relative_gap,
        threads=threads,
        seed=seed,
        passthrough=dict(passthrough or {}),
    )
    try:
        sol = solve_negotiation(
            data, solver=solver, options=options, fast=fast, extensions=extensions
        )
    except (ValueError, SolverUnavailableError) as exc:
        return fallback(org, profiles, start, method, solver, str(exc), Status.ERROR, t0)
    if sol.status is Status.INFEASIBLE:
        from planner.diagnose import diagnose

        messages = diagnose(data, extensions=extensions)
        return fallback(
            org,
            profiles,
            start,
            method,
            sol.solver,
            "the rules cannot all hold (see the diagnosis in messages)",
            Status.INFEASIBLE,
            t0,
            messages,
        )
    if sol.status not in (Status.OPTIMAL, Status.FEASIBLE):
        why = "; ".join(sol.messages[-3:]) or sol.status.value
        reason = f"{sol.solver} returned no plan ({sol.status.value}): {why}"
        if time_limit is not None:
            reason = f"no feasible solution within the {time_limit:g} s time limit; {reason}"
        return fallback(org, profiles, start, method, sol.solver, reason, Status.ERROR, t0)
    plan = build_plan(data, profiles, sol, method=method, started=t0)
    if len(sol.models) == 1:
        for ext in extensions:
            finish = getattr(ext, "finish", None)
            if finish is not None:
                plan = finish(sol.models[0], sol.xs[0], plan)
    wall = time.perf_counter() - t0
    return plan.model_copy(update={"report": plan.report.model_copy(update={"wall_seconds": wall})})


def fallback(
    org: Organisation,
    profiles: Mapping[str, NeedProfile],
    start: datetime,
    method: str,
    solver: str | None,
    reason: str,
    status: Status,
    t0: float,
    messages: Sequence[str] = (),
) -> Plan:
    """The greedy plan, its report saying why it replaces the optimiser's."""
    try:
        from planner.greedy import negotiate_resources

        plan = negotiate_resources(org, profiles, start=start)
    except Exception as exc:  # the fallback of the fallback: keep every quota as it is
        plan = _unchanged_plan(org, start)
        reason = f"{reason}; the greedy fallback failed too ({exc}): quotas unchanged"
    report = plan.report.model_copy(
        update={
            "method": f"{method} (fallback: {plan.report.method})",
            "solver": solver,
            "status": status,
            "fallback": reason,
            "messages": [*plan.report.messages, *messages],
            "wall_seconds": time.perf_counter() - t0,
        }
    )
    return plan.model_copy(update={"report": report})


def _unchanged_plan(org: Organisation, start: datetime) -> Plan:
    return Plan(
        organisation=org.name,
        created_at=datetime.now().replace(microsecond=0),
        start=start,
        period_minutes=org.rules.period_minutes,
        periods=org.rules.horizon_periods,
        quotas=[
            QuotaAssignment(
                account=a.id, resource=r, before=a.quota.get(r, 0.0), after=a.quota.get(r, 0.0)
            )
            for a in org.accounts
            for r in org.resource_names
        ],
        report=SolverReport(method="unchanged", status=Status.HEURISTIC),
    )


def export(data: ProblemData, path: Path, extensions: Sequence[Extension] = ()) -> list[Path]:
    """Write the whole model (all resources, no lazy rows left out) as MPS and/or LP.

    ``path`` ending in ``.mps`` or ``.lp`` writes that format; any other suffix writes both
    (``path.with_suffix(".mps")`` and ``.lp``). Names are the model's structured names.
    """
    from planner.backends.ortools_mb import to_ortools
    from planner.io import write_atomic

    full = data
    if full.org.rules.allow_shadow:
        full = _with_all_ttl(data)
    model = build_model(full, extensions)
    m = to_ortools(model, names=True)
    suffix = path.suffix.lower()
    targets = (
        [path] if suffix in (".mps", ".lp") else [path.with_suffix(".mps"), path.with_suffix(".lp")]
    )
    for target in targets:
        text = (
            m.export_to_mps_string() if target.suffix.lower() == ".mps" else m.export_to_lp_string()
        )
        write_atomic(target, text)
    return targets


def _with_all_ttl(data: ProblemData) -> ProblemData:
    import dataclasses

    return dataclasses.replace(data, ttl_mask=data.demand.max(axis=2) > 0)


def _runs(values: FloatArray) -> list[tuple[int, int, float]]:
    """Maximal intervals ``[t0, t1)`` of equal positive values."""
    out: list[tuple[int, int, float]] = []
    t, n = 0, values.size
    while t < n:
        v = values[t]
        if v <= SHADOW_EPS:
            t += 1
            continue
        u = t + 1
        while u < n and abs(values[u] - v) <= TOL * max(1.0, v):
            u += 1
        out.append((t, u, float(v)))
        t = u
    return out


def build_plan(
    data: ProblemData,
    profiles: Mapping[str, NeedProfile],
    sol: Solution,
    *,
    method: str,
    started: float,
) -> Plan:
    """Read a :class:`models.Plan` out of the solved arrays."""
    from planner.explain import analyse, bid_reason, explanations

    org = data.org
    v = {k: np.where(np.abs(x) < TOL, 0.0, x) for k, x in sol.values.items()}
    quota, shadow, lend, borrow, unmet = v["quota"], v["shadow"], v["lend"], v["borrow"], v["unmet"]
    shadow = np.where(shadow > SHADOW_EPS, shadow, 0.0)
    accounts, resources, periods = data.accounts, data.resources, data.periods
    end = periods[-1] + data.period
    n_t = len(data.periods)
    quotas = [
        QuotaAssignment(
            account=a, resource=r, before=float(data.quota0[i, j]), after=float(quota[i, j])
        )
        for i, a in enumerate(accounts)
        for j, r in enumerate(resources)
    ]
    shadows: list[ShadowQuota] = []
    for i, j in zip(*np.nonzero(shadow.max(axis=2) > 0), strict=True):
        for t0, t1, amount in _runs(shadow[i, j]):
            shadows.append(
                ShadowQuota(
                    account=accounts[i],
                    resource=resources[j],
                    amount=amount,
                    start=periods[t0],
                    until=periods[t1] if t1 < n_t else end,
                    reason=f"demand above base quota from {periods[t0]:%Y-%m-%d %H:%M}",
                )
            )
    kept = quota[:, :, None] + shadow - lend
    need = high_quantile_need(profiles, accounts, resources, n_t)
    loans = loan_records(org, accounts, resources, periods, lend, borrow, kept, need)
    info = analyse(data, sol, v)
    bids: list[Bid] = []
    served = data.demand - unmet
    for i, a in enumerate(accounts):
        if a not in profiles:
            continue
        for j, r in enumerate(resources):
            if r not in profiles[a].demand:
                continue
            peak = float(data.demand[i, j].max())
            ask = peak - float(data.quota0[i, j])
            if ask <= TOL:
                bids.append(
                    Bid(
                        account=a,
                        resource=r,
                        demand=peak,
                        current_quota=float(data.quota0[i, j]),
                        amount=ask,
                        outcome="none",
                        reason="its quota covers its peak demand",
                    )
                )
                continue
            got = float(np.clip(served[i, j].max() - data.quota0[i, j], 0.0, ask))
            if got >= ask - max(TOL, 1e-6 * ask):
                outcome, reason = (
                    "granted",
                    _how_granted(quota[i, j] - data.quota0[i, j], shadow[i, j], borrow[i, j]),
                )
            elif got <= TOL:
                outcome, reason = "denied", bid_reason(info, i, j)
            else:
                outcome, reason = "partial", bid_reason(info, i, j)
            bids.append(
                Bid(
                    account=a,
                    resource=r,
                    demand=peak,
                    current_quota=float(data.quota0[i, j]),
                    amount=ask,
                    granted=got if outcome != "granted" else ask,
                    outcome=outcome,
                    reason=reason,
                )
            )
    unmet_map: dict[str, dict[str, float]] = {}
    for i, j in zip(*np.nonzero(unmet.sum(axis=2) > TOL), strict=True):
        unmet_map.setdefault(accounts[i], {})[resources[j]] = float(unmet[i, j].sum())
    report = SolverReport(
        method=method,
        solver=sol.solver,
        status=sol.status,
        objective=sol.objective,
        bound=sol.bound,
        gap=sol.gap,
        build_seconds=sol.build_seconds,
        solve_seconds=sol.solve_seconds,
        wall_seconds=time.perf_counter() - started,
        messages=[*data.notes, *sol.messages],
    )
    return Plan(
        organisation=org.name,
        created_at=datetime.now().replace(microsecond=0),
        start=data.start,
        period_minutes=org.rules.period_minutes,
        periods=n_t,
        quotas=quotas,
        loans=loans,
        shadow_quotas=shadows,
        bids=bids,
        state_changes=state_changes(data, shadow, loans),
        unmet=unmet_map,
        report=report,
        explanations=explanations(data, v, info, loans),
    )


def _how_granted(quota_change: float, shadow: FloatArray, borrow: FloatArray) -> str:
    parts = []
    if quota_change > TOL:
        parts.append(f"base quota +{quota_change:.4g}")
    if shadow.max() > TOL:
        parts.append(f"shadow quota up to {shadow.max():.4g} at its peaks")
    if borrow.max() > TOL:
        parts.append(f"loans up to {borrow.max():.4g}")
    return "covered by " + (", ".join(parts) if parts else "its existing quota")


def state_changes(
    data: ProblemData, shadow: FloatArray, loans: Sequence[Loan]
) -> list[StateChange]:
    """What happens to each loan and shadow quota in force at ``start``."""
    org, start = data.org, data.start
    out: list[StateChange] = []
    a_idx = {a: i for i, a in enumerate(data.accounts)}
    r_idx = {r: j for j, r in enumerate(data.resources)}
    ttl = org.rules.shadow_ttl_periods
    for sq in org.state.shadow_quotas:
        ref = f"{sq.account}/{sq.resource}"
        i, j = a_idx[sq.account], r_idx[sq.resource]
        now = shadow[i, j, 0] if shadow.shape[2] else 0.0
        if sq.until < start:
            action, reason = "reverted", f"it ended at {sq.until:%Y-%m-%d %H:%M}"
        elif now <= SHADOW_EPS:
            elapsed = int(data.carry[i, j])
            reason = (
                f"its time-to-live of {ttl} periods is used up"
                if elapsed >= ttl
                else "the need above base quota has subsided"
            )
            action = "reverted"
        else:
            run = 0
            while run < shadow.shape[2] and shadow[i, j, run] > SHADOW_EPS:
                run += 1
            new_end = (
                data.periods[run] if run < len(data.periods) else data.periods[-1] + data.period
            )
            action = "extended" if new_end > sq.until else "kept"
            reason = f"demand still above base quota; active until {new_end:%Y-%m-%d %H:%M}"
        out.append(
            StateChange(
                kind="shadow",
                account=sq.account,
                resource=sq.resource,
                ref=ref,
                action=action,
                reason=reason,
            )
        )
    by_id = {getattr(x, "id", ""): x for x in loans}
    for loan in org.state.loans:
        ref = loan.id or f"{loan.lender}->{loan.borrower}"
        new = by_id.get(loan.id) if loan.id else None
        if loan.until <= start:
            action, reason = "returned", f"it expired at {loan.until:%Y-%m-%d %H:%M}"
        elif loan.reclaim == "expiry":
            action, reason = "kept", "committed until its expiry"
        elif new is not None:
            until = new.until
            action = "extended" if until > loan.until else "kept"
            reason = f"the borrower still needs it; now until {until:%Y-%m-%d %H:%M}"
        else:
            i = a_idx[loan.lender]
            j = r_idx[loan.resource]
            lender_need = data.demand[i, j, 0] > data.quota0[i, j] - loan.amount + TOL
            action = "reclaimed" if lender_need else "returned"
            reason = (
                "the lender needs it back"
                if lender_need
                else "the borrower no longer needs it (or gets it more cheaply elsewhere)"
            )
        out.append(
            StateChange(
                kind="loan",
                account=loan.borrower,
                resource=loan.resource,
                ref=ref,
                action=action,
                reason=reason,
            )
        )
    return out


def evaluate_plan(org: Organisation, profiles: Mapping[str, NeedProfile], plan: Plan) -> float:
    """The model's objective for any plan (greedy's too), recomputed from its records.

    Unmet demand is what the plan's supply (quota + shadow + borrowed - lent) leaves of each
    period's target, priced in the model's two bands (:func:`unmet_cost`); held quota, churn,
    shadow and loan premiums are priced as in the model.
    """
    from planner.formulation.data import EPSILON_COST

    data = problem_data(org, profiles, start=plan.start)
    rules = org.rules
    n_t = len(data.periods)
    a_idx = {a: i for i, a in enumerate(data.accounts)}
    r_idx = {r: j for j, r in enumerate(data.resources)}
    quota = data.quota0.copy()
    for q in plan.quotas:
        if q.account in a_idx:
            quota[a_idx[q.account], r_idx[q.resource]] = q.after
    supply = np.repeat(quota[:, :, None], n_t, axis=2)
    cost = float((data.unit_cost[None, :] * n_t * quota).sum())
    cost += rules.churn_cost * float(np.abs(quota - data.quota0).sum())
    grid = data.periods

    def mask(s: datetime, u: datetime) -> np.ndarray:
        return np.array([s <= p < u for p in grid])

    for sq in plan.shadow_quotas:
        m = mask(sq.start, sq.until)
        j = r_idx[sq.resource]
        supply[a_idx[sq.account], j, m] += sq.amount
        cost += (data.unit_cost[j] + rules.shadow_premium + EPSILON_COST) * sq.amount * m.sum()
    for loan in plan.loans:
        m = mask(loan.start, loan.until)
        j = r_idx[loan.resource]
        supply[a_idx[loan.lender], j, m] -= loan.amount
        supply[a_idx[loan.borrower], j, m] += loan.amount
        cost += (rules.loan_premium + 2 * EPSILON_COST) * loan.amount * m.sum()
    cost += unmet_cost(data, supply)
    return cost if math.isfinite(cost) else math.inf


def unmet_cost(data: ProblemData, supply: FloatArray) -> float:
    """The model's price of the demand that ``supply`` (accounts x resources x periods) leaves.

    Shortfall is uncovered from the top: the part above the forecast's median (at most
    ``tail.width``) costs ``unmet_weight x tail.price``, the rest ``unmet_weight``.
    """
    unmet = np.maximum(data.demand - supply, 0.0)
    w = data.unmet_weight[:, None, None]
    if data.tail is None:
        return float((w * unmet).sum())
    tail = np.minimum(unmet, data.tail.width)
    return float((w * data.tail.price * tail).sum() + (w * (unmet - tail)).sum())
