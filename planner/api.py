"""The library entry point: ``plan(organisation, usage, method=...) -> Plan``.

A scheduler calls this on every cycle with the current state (quotas, open loans, active shadow
quotas in ``organisation.state``) and applies the returned plan. Every plan returned here has been
checked by the independent verifier; what it found is in ``plan.violations`` (empty: all rules hold).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd

from models import NeedProfile, Organisation, Plan
from planner.greedy import negotiate_resources
from planner.io import validate_usage
from planner.profiles import build_need_profiles, plan_start

METHODS: tuple[str, ...] = ("greedy", "greedy-strict", "mip", "mip-fast")


def plan(
    organisation: Organisation,
    usage: pd.DataFrame,
    *,
    method: str = "greedy",
    solver: str | None = None,
    start: datetime | None = None,
    profiles: Sequence[NeedProfile] | None = None,
    forecaster: Any = None,
    time_limit: float | None = None,
    relative_gap: float = 1e-4,
    threads: int | None = None,
    seed: int = 0,
    export_model: Path | None = None,
    passthrough: Mapping[str, object] | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> Plan:
    """Forecast each sub-account's needs and arbitrate them into a plan.

    Parameters
    ----------
    organisation
        The parent, its sub-accounts, rules and current state.
    usage
        Long usage table: ``account, resource, ts, value`` (and optionally ``workload``).
    method
        ``"greedy"`` (the seed's negotiator with its plain faults fixed), ``"greedy-strict"``
        (the seed's pseudocode exactly), ``"mip"`` (the joint optimisation program) or
        ``"mip-fast"`` (its LP relaxation, rounded and re-solved).
    solver
        Backend for the MIP methods (default: OR-Tools with HiGHS); see
        ``planner.backends.available_solvers()``.
    start
        Start of the first period (default: ``organisation.state.now``, else the period after
        the last usage timestamp).
    profiles
        Need profiles to use instead of forecasting them from ``usage``.
    forecaster
        Estimator for the prediction stage (default: ``planner.forecast.default_forecaster()``).
    time_limit, relative_gap, threads, seed, passthrough
        Solver options for the MIP methods.
    export_model
        Write the MIP as MPS/LP files under this path stem.
    on_stage
        Called with a short label as each stage starts (the CLI shows it as progress).

    Returns
    -------
    Plan
        Verified: ``plan.violations`` lists any rule the plan breaks (empty when it holds).

    Raises
    ------
    ValueError
        For an unknown ``method`` (the message lists the valid ones).
    planner.errors.InputError
        When ``usage`` does not fit the organisation.

    Examples
    --------
    >>> from planner import plan
    >>> from planner.demo import load_demo
    >>> org, usage = load_demo()
    >>> result = plan(org, usage, method="greedy")
    >>> result.report.status.value
    'heuristic'
    >>> result.violations
    []
    """
    if method not in METHODS:
        raise ValueError(
            f"The 'method' parameter of plan must be one of {', '.join(METHODS)}. "
            f"Got {method!r} instead."
        )
    stage = on_stage or (lambda _label: None)
    clean = validate_usage(usage, organisation)
    when = start or plan_start(organisation, clean)
    if profiles is None:
        stage("forecasting demand")
        profiles = build_need_profiles(organisation, clean, start=when, forecaster=forecaster)
    by_account = {p.account: p for p in profiles}
    stage(f"negotiating ({method})")
    if method.startswith("greedy"):
        result = negotiate_resources(
            organisation, by_account, start=when, strict=method == "greedy-strict"
        )
        result = result.model_copy(update={"need_profiles": list(profiles)})
    else:
        from planner.formulation import problem_data
        from planner.mip import plan_mip
        from planner.provision import provisioning_for

        # Provisioning joins the same program: new accounts from templates, workloads moved
        # along cheap cuts, when quotas and loans cannot cover the predicted demand.
        ext = provisioning_for(organisation, clean, start=when)
        if ext is not None and not ext.has_candidates(
            problem_data(organisation, by_account, start=when)
        ):
            ext = None  # nobody outgrows what quotas and loans can give: no binaries needed
        result = plan_mip(
            organisation,
            by_account,
            start=when,
            solver=solver,
            fast=method == "mip-fast",
            time_limit=time_limit,
            relative_gap=relative_gap,
            threads=threads,
            seed=seed,
            export_model=export_model,
            passthrough=passthrough,
            extensions=[ext] if ext is not None else (),
        )
        result = result.model_copy(update={"need_profiles": list(profiles)})
    stage("verifying the plan")
    from planner.verify import verify_plan

    return result.model_copy(update={"violations": verify_plan(organisation, result, by_account)})
