"""The policies compared on one replay, behind a small name registry.

=========  ==============================================================================
static     quotas never change; no loans, no shadow quotas
greedy     the seed's greedy every cycle (``plan(method="greedy")``) on forecasts
kueue      reactive cohort borrowing every step, modelled on Kubernetes Kueue (nominal
           quota, borrowingLimit, lendingLimit, reclaimWithinCohort); quotas never change
kueue-shadow
           ``kueue`` plus shadow quotas on demand from the capacity nobody holds (an
           ablation: the program's runtime mechanisms without its plans)
mip        the optimisation program every cycle (``plan(method="mip")``) on forecasts, run
           as a scheduler runs it: the plan's quotas, shadow quotas and loans are the
           cohort's nominal quotas; within the cycle idle quota is lent on demand as
           ``kueue`` does, and what the parent still has free is granted as shadow quotas
           on demand within the rules (fraction of quota, time-to-live)
mip-plan   the same program's plan held as it is through the cycle (no borrowing or
           shadow on demand): what the forecasts alone achieve
oracle     ``mip`` on the actual future usage (perfect foresight: the bound)
=========  ==============================================================================

When :mod:`planner.mip` (or :mod:`planner.verify`) is not installed, ``mip`` and ``oracle`` run the
greedy negotiator instead and every cycle says so in its ``fallback`` column.
"""

from __future__ import annotations

import importlib.util
import time
from dataclasses import dataclass
from typing import Any, Literal

import pandas as pd

from models import CurrentState, Organisation, Plan, SubAccount, Workload
from planner.profiles import build_need_profiles
from planner.simulate.forecasting import OracleForecaster, SharedForecast
from planner.simulate.state import PolicyState
from planner.simulate.trace import Trace

EPS = 1e-9


@dataclass(frozen=True)
class CycleContext:
    """What a policy sees at a cycle boundary."""

    now: pd.Timestamp
    trace: Trace
    history: pd.DataFrame
    accounts: tuple[str, ...]
    forecasts: SharedForecast
    solver: str | None = None
    time_limit: float | None = None
    workload_history: pd.DataFrame | None = None


@dataclass(frozen=True)
class Policy:
    """A named policy: ``play`` is how its quotas meet usage; ``method`` what plans its cycles."""

    name: str
    play: Literal["planned", "cohort", "cohort+shadow", "planned+cohort"]
    method: str | None  # plan() method, None: never plans
    foresight: bool = False
    description: str = ""


POLICIES: dict[str, Policy] = {
    p.name: p
    for p in (
        Policy("static", "planned", None, description="quotas never change"),
        Policy("greedy", "planned", "greedy", description="the seed's greedy on forecasts"),
        Policy("kueue", "cohort", None, description="Kueue-like reactive cohort borrowing"),
        Policy(
            "kueue-shadow",
            "cohort+shadow",
            None,
            description="kueue plus shadow quotas on demand (ablation: no plans)",
        ),
        Policy(
            "mip",
            "planned+cohort",
            "mip",
            description="the program on forecasts; idle quota lent and shadows granted on demand",
        ),
        Policy("mip-plan", "planned", "mip", description="the program's plan alone, held fixed"),
        Policy("oracle", "planned+cohort", "mip", True, "mip on the actual future (bound)"),
    )
}


def get_policy(name: str) -> Policy:
    """The policy called ``name`` (``ValueError`` listing the valid names otherwise)."""
    if name not in POLICIES:
        raise ValueError(
            f"unknown policy {name!r}; choose among {', '.join(POLICIES)} (comma-separated)"
        )
    return POLICIES[name]


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def decide(
    policy: Policy, state: PolicyState, ctx: CycleContext
) -> tuple[Plan | None, dict[str, Any]]:
    """Run one planning cycle of ``policy``; returns the plan (None: nothing to plan) and a log row."""
    if policy.method is None:
        return None, {"method": policy.name, "status": "", "fallback": "", "seconds": 0.0}
    t0 = time.perf_counter()
    org = state.org.model_copy(
        update={
            "state": CurrentState(
                now=ctx.now.to_pydatetime(),
                loans=list(state.loans),
                shadow_quotas=list(state.shadows),
            )
        }
    )
    paid_before = 0.0
    if policy.foresight:
        forecaster: Any = OracleForecaster(ctx.trace, state.placement, ctx.accounts)
    else:
        key = (ctx.now, ctx.accounts, tuple(sorted(state.placement.items())))
        forecaster = ctx.forecasts.for_key(key)
        paid_before = ctx.forecasts.seconds
    start = ctx.now.to_pydatetime()
    profiles = build_need_profiles(org, ctx.history, start=start, forecaster=forecaster)
    # the shared forecast is fitted once per cycle: charge its full cost to every policy using it
    forecast_charge = 0.0 if policy.foresight else paid_before
    method = policy.method
    fallback = ""
    if method.startswith("mip") and not _available("planner.mip"):
        method, fallback = "greedy", "planner.mip is not available: greedy used"
    plan = _plan(org, ctx, method, profiles, start)
    seconds = time.perf_counter() - t0 + forecast_charge
    row = {
        "method": plan.report.method,
        "status": plan.report.status.value,
        "fallback": fallback or (plan.report.fallback or ""),
        "seconds": seconds,
        "violations": len(plan.violations),
    }
    return plan, row


def _plan(
    org: Organisation, ctx: CycleContext, method: str, profiles: list[Any], start: Any
) -> Plan:
    if _available("planner.verify"):
        from planner.api import plan

        # the program splits accounts by their workloads' usage: give it per-workload rows
        usage = ctx.workload_history if method.startswith("mip") else None
        return plan(
            org,
            usage if usage is not None else ctx.history,
            method=method,
            profiles=profiles,
            start=start,
            solver=ctx.solver,
            time_limit=ctx.time_limit,
            threads=1,
            seed=0,
        )
    from planner.greedy import negotiate_resources

    by_account = {p.account: p for p in profiles}
    if method.startswith("mip"):
        # imported by name: planner.mip is written by another part of the project
        plan_mip = importlib.import_module("planner.mip").plan_mip
        result: Plan = plan_mip(
            org, by_account, start=start, solver=ctx.solver, time_limit=ctx.time_limit
        )
        return result
    return negotiate_resources(org, by_account, start=start, strict=method == "greedy-strict")


def apply_plan(state: PolicyState, plan: Plan, now: pd.Timestamp) -> None:
    """Put ``plan`` in force in ``state``: quotas, new accounts, moves, loans, shadow quotas.

    The plan is authoritative for shadow quotas (one not in it reverts now); loans the plan
    returns or reclaims end, loans it restates take its version, others run to expiry.
    """
    org = state.org
    accounts = {a.id: a for a in org.accounts}
    new_ids: list[str] = []
    for na in plan.new_accounts:
        if na.id in accounts:
            continue
        tpl = next((t for t in org.templates if t.id == na.template), None)
        accounts[na.id] = SubAccount(
            id=na.id,
            name=na.name,
            quota=dict(na.quota),
            priority=tpl.priority if tpl else 1,
            ceiling=dict(tpl.limits) if tpl else {},
            application_profile=tpl.application_profile if tpl else None,
        )
        new_ids.append(na.id)
        state.event("account_opened", now, na.id, template=na.template)
    for q in plan.quotas:
        acc = accounts.get(q.account)
        if acc is None:
            continue
        before = acc.quota.get(q.resource, 0.0)
        if abs(q.after - before) > EPS:
            quota = dict(acc.quota)
            quota[q.resource] = q.after
            accounts[q.account] = acc.model_copy(update={"quota": quota})
            state.event("quota_change", now, q.account, q.resource, amount=q.after - before)
    workloads = {w.id: w for w in org.workloads}
    for m in sorted(plan.migrations, key=lambda m: m.step):
        if m.workload in state.placement:
            state.placement[m.workload] = m.target
        if m.workload in workloads:
            workloads[m.workload] = Workload(
                **(workloads[m.workload].model_dump() | {"account": m.target})
            )
        state.event("workload_moved", now, m.target, source=m.source, workload=m.workload)
    ended = {
        c.ref
        for c in plan.state_changes
        if c.kind == "loan" and c.action in ("returned", "reclaimed")
    }
    planned = {loan.id: loan for loan in plan.loans if loan.id}
    loans = []
    for loan in state.loans:
        ref = loan.id or f"{loan.lender}->{loan.borrower}"
        if ref in ended or (loan.id and loan.id in planned):
            continue
        if pd.Timestamp(loan.until) > now:
            loans.append(loan)
    before_ids = {loan.id for loan in state.loans if loan.id}
    for loan in plan.loans:
        if pd.Timestamp(loan.until) > now:
            loans.append(loan)
            if not loan.id or loan.id not in before_ids:
                state.event(
                    "loan",
                    now,
                    loan.borrower,
                    loan.resource,
                    amount=loan.amount,
                    lender=loan.lender,
                )
    was = {(s.account, s.resource) for s in state.shadows if pd.Timestamp(s.until) > now}
    shadows = [s for s in plan.shadow_quotas if pd.Timestamp(s.until) > now]
    keep = {(s.account, s.resource) for s in shadows}
    for s in shadows:
        if (s.account, s.resource) not in was:
            state.event("shadow", now, s.account, s.resource, amount=s.amount)
    for acc_id, res in sorted(was - keep):
        state.event("shadow_reverted", now, acc_id, res, reason="the plan no longer needs it")
    state.loans, state.shadows = loans, shadows
    state.org = org.model_copy(
        update={
            "accounts": list(accounts.values()),
            "workloads": list(workloads.values()),
            "state": CurrentState(now=now.to_pydatetime(), loans=loans, shadow_quotas=shadows),
        }
    )


def expire(state: PolicyState, now: pd.Timestamp) -> None:
    """Drop loans and shadow quotas whose time is up at ``now`` (shadows: counted as reverted)."""
    for s in state.shadows:
        if pd.Timestamp(s.until) <= now:
            state.event("shadow_reverted", now, s.account, s.resource, reason="time-to-live")
    state.shadows = [s for s in state.shadows if pd.Timestamp(s.until) > now]
    state.loans = [x for x in state.loans if pd.Timestamp(x.until) > now]
