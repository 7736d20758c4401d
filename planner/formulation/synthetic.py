"""Generated organisations for tests and benchmarks (deterministic by seed).

Demand shapes come from ``shapes`` (rows of per-period multipliers, e.g. cut from a real trace)
or, without them, from a synthetic daily curve with noise.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import numpy.typing as npt

from models import NeedProfile, Organisation, ResourceDemand

START = datetime(2026, 1, 5, tzinfo=UTC)


def synthetic_shapes(n: int, periods: int, seed: int = 0) -> npt.NDArray[np.float64]:
    """``n`` daily-looking demand curves of mean about 1 (a peak of random phase and width)."""
    rng = np.random.default_rng(seed)
    t = np.arange(periods)
    phase = rng.uniform(0, 24, size=(n, 1))
    width = rng.uniform(2, 6, size=(n, 1))
    amp = rng.uniform(0.2, 1.2, size=(n, 1))
    dist = np.minimum(np.abs(t - phase), 24 - np.abs(t - phase) % 24)
    curve = 1.0 + amp * np.exp(-0.5 * (dist / width) ** 2)
    curve *= rng.lognormal(0.0, 0.08, size=(n, periods))
    return curve / curve.mean(axis=1, keepdims=True)


def make_organisation(
    n_accounts: int,
    n_resources: int = 4,
    n_periods: int = 24,
    *,
    seed: int = 0,
    shapes: npt.NDArray[np.float64] | None = None,
    tightness: float = 1.05,
    integral: bool = False,
    hard_thresholds: bool = False,
) -> tuple[Organisation, dict[str, NeedProfile]]:
    """An organisation and its need profiles.

    Parameters
    ----------
    n_accounts, n_resources, n_periods
        Size.
    seed
        Everything is drawn from ``numpy.random.default_rng(seed)``.
    shapes
        Demand shapes (rows of at least ``n_periods`` multipliers); synthetic when ``None``.
    tightness
        Total peak demand / capacity per resource (above 1: not everyone can be served).
    integral
        Round every amount to whole units (for the integer-only backends).
    hard_thresholds
        Set ``rules.hard_thresholds``.
    """
    rng = np.random.default_rng(seed)
    if shapes is None:
        shapes = synthetic_shapes(max(8, n_accounts), n_periods, seed + 1)
    resources = [f"r{j}" for j in range(n_resources)]
    level = rng.lognormal(3.0, 0.7, size=(n_accounts, n_resources))
    pick = rng.integers(0, shapes.shape[0], size=(n_accounts, n_resources))
    demand = level[:, :, None] * shapes[pick][:, :, :n_periods]
    quota = level * rng.uniform(0.7, 1.3, size=level.shape)
    if integral:
        demand, quota, level = np.round(demand), np.round(quota), np.round(level)
    capacity = demand.sum(axis=0).max(axis=1) / tightness
    if integral:
        capacity = np.floor(capacity)
    reserve = np.floor(0.08 * capacity) if integral else 0.08 * capacity
    scale = min(1.0, float(((capacity - reserve) / quota.sum(axis=0)).min()))
    quota = np.floor(quota * scale) if integral else quota * scale
    accounts = []
    for i in range(n_accounts):
        acc: dict[str, object] = {
            "id": f"acct-{i:05d}",
            "priority": int(rng.integers(0, 6)),
            "quota": {r: float(quota[i, j]) for j, r in enumerate(resources)},
            "performance_threshold": {"service_level": 0.9, "min_coverage": 0.8},
        }
        if rng.random() < 0.3:
            acc["floor"] = {r: float(np.floor(0.3 * quota[i, j])) for j, r in enumerate(resources)}
        if rng.random() < 0.2:
            acc["ceiling"] = {r: float(np.ceil(1.6 * level[i, j])) for j, r in enumerate(resources)}
        if rng.random() < 0.3:
            acc["borrow_limit"] = {
                r: float(np.ceil(0.3 * level[i, j])) for j, r in enumerate(resources)
            }
        if rng.random() < 0.3:
            acc["lend_limit"] = {
                r: float(np.ceil(0.2 * level[i, j])) for j, r in enumerate(resources)
            }
        accounts.append(acc)
    for i in range(1, n_accounts, 7):
        accounts[i]["dependencies"] = [f"acct-{i - 1:05d}"]
    org = Organisation.model_validate(
        {
            "name": f"synthetic-{n_accounts}x{n_resources}x{n_periods}-s{seed}",
            "resources": [{"name": r} for r in resources],
            "parent": {
                "capacity": {r: float(capacity[j]) for j, r in enumerate(resources)},
                "reserve": {r: float(reserve[j]) for j, r in enumerate(resources)},
                "cost_per_unit": {r: 0.01 for r in resources},
            },
            "accounts": accounts,
            "rules": {"horizon_periods": n_periods, "hard_thresholds": hard_thresholds},
        }
    )
    step = timedelta(minutes=org.rules.period_minutes)
    periods = [START + k * step for k in range(n_periods)]
    crit = rng.exponential(0.3, size=n_accounts)
    profiles = {
        a.id: NeedProfile(
            account=a.id,
            demand={
                r: ResourceDemand(resource=r, periods=periods, target=demand[i, j].tolist())
                for j, r in enumerate(resources)
            },
            criticality=float(crit[i]),
        )
        for i, a in enumerate(org.accounts)
    }
    return org, profiles
