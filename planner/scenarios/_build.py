"""Turn per-workload usage and a grouping into an :class:`~models.Organisation`, by stated rules.

Every number of the organisation follows from the usage, the grouping, ``tightness`` and ``seed``
by the rules below (the same for every trace), so two calls with the same arguments give the same
organisation.

Rules
-----
Let ``U[a, r, t]`` be the hourly usage of account ``a`` (the sum of its workloads), ``peak[a, r]``
its maximum over the window and ``first[a, r]`` its values over the warm-up: the first week (168
hours), or the first half of the window when it is shorter than two weeks. That is the history
a replay of the window plans from before its first cycle
(:func:`planner.simulate.engine.default_start`), so the current quotas, floors and limits never
see the replayed hours: quotas set from the whole of a short window would hand the static and
Kueue-like baselines a P95 of the very usage they are replayed against.

- **Parent capacity** ``capacity[r] = tightness x sum_a peak[a, r]``; **reserve** (what shadow
  quotas come from) ``= 5 %`` of it.
- **Current quota** ``quota[a, r] = P95(first[a, r])``; when these add up to more than
  ``capacity - reserve``, all are scaled down by the same factor.
- **Ceiling** (the provider's per-account limit) ``ceiling[a, r] = peak[a, r] / tightness``.
- **Floor** ``floor[a, r] = min(0.5 x median(first[a, r]), quota[a, r])``.
- **Borrowing and lending limits** ``= 0.5 x quota[a, r]`` each.
- **Application profile**, by rank so that every profile occurs: the quarter of accounts with the
  highest memory-to-CPU ratio of their peaks are ``datastore``; of the rest, the third with the
  burstiest CPU (peak / median) are ``batch``; the others are ``web``.
- **Priority and performance threshold** from the profile: ``datastore`` 30 (service level 0.99,
  min coverage 0.99), ``web`` 20 (0.95, 0.95), ``batch`` 10 (0.90, 0.80), plus a seeded integer
  0..9 so that accounts of one profile are not all tied.
- **Templates**, one per profile present: seed = median current quota of its accounts, limits =
  the largest ceiling of its accounts (one provider limit for all; the seed clipped to it),
  opening cost 200, ``datastore`` not splittable.
- **Workloads**: one per trace series, migratable, migration cost ``1 + mean memory`` (moving
  state costs in proportion to its size).
- **Account ids** ``<profile>-<index>`` with the index of the group (``web-003``).
- **Prices**: cost per unit-hour 1.0 for CPU and 0.125 for memory (the usual cloud ratio of a
  vCPU-hour to a GiB-hour).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import Organisation

FIRST_WEEK_HOURS = 168


def warmup_hours(n_hours: int) -> int:
    """Hours of the warm-up whose usage sets the current quotas: one week, or the first half of
    a window shorter than two weeks (never past the replay's default start)."""
    return max(1, min(FIRST_WEEK_HOURS, n_hours // 2))


RESERVE_FRACTION = 0.05
PROFILE_RULES: dict[str, tuple[int, float, float]] = {
    # profile: (base priority, service level, min coverage)
    "datastore": (30, 0.99, 0.99),
    "web": (20, 0.95, 0.95),
    "batch": (10, 0.90, 0.80),
}
OPENING_COST = 200.0
COST_PER_UNIT = {"cpu": 1.0, "memory": 0.125}
DECIMALS = 4


@dataclass(frozen=True)
class ResourceSpec:
    """A resource as the scenario declares it: name, unit and where its numbers come from."""

    name: str
    unit: str
    description: str


def check_tightness(tightness: float) -> None:
    """Raise a ``ValueError`` unless ``0 < tightness <= 2``."""
    if not (isinstance(tightness, int | float) and 0 < tightness <= 2):
        raise ValueError(
            f"The 'tightness' parameter must be a number in (0, 2] (capacity = tightness x sum of "
            f"per-account peaks). Got {tightness!r} instead."
        )


def block_sizes(n_items: int, n_groups: int, seed: int) -> np.ndarray:
    """Sizes of ``n_groups`` contiguous blocks covering ``n_items`` items, drawn from ``seed``.

    Each group gets one item, the rest are spread by a multinomial draw with Dirichlet(2)
    weights, so sizes vary (as teams do) but no group is empty.
    """
    if n_groups < 1 or n_groups > n_items:
        raise ValueError(
            f"The number of accounts must be between 1 and the number of workloads ({n_items}). "
            f"Got {n_groups} instead."
        )
    rng = np.random.default_rng([seed, 1])
    weights = rng.dirichlet(np.full(n_groups, 2.0))
    extra = rng.multinomial(n_items - n_groups, weights)
    return np.asarray(extra + 1, dtype=int)


def contiguous_assignment(workloads: Sequence[str], n_groups: int, seed: int) -> np.ndarray:
    """Group index of each workload: contiguous blocks in the given order, sizes from ``seed``."""
    sizes = block_sizes(len(workloads), n_groups, seed)
    return np.repeat(np.arange(n_groups), sizes)


def _profiles(peaks: pd.DataFrame, burst: pd.Series) -> pd.Series:
    """Application profile of each account by the rank rule of the module docstring."""
    n = len(peaks)
    cpu = peaks["cpu"].clip(lower=1e-9)
    ratio = peaks["memory"] / cpu
    profile = pd.Series("web", index=peaks.index, dtype=object)
    n_store = max(1, round(n / 4)) if n >= 3 else 0
    # ties broken by the account order, so the rule is deterministic
    store = ratio.sort_values(ascending=False, kind="stable").index[:n_store]
    profile[store] = "datastore"
    rest = burst.drop(store)
    n_batch = max(1, round(len(rest) / 3)) if n >= 3 else 0
    batch = rest.sort_values(ascending=False, kind="stable").index[:n_batch]
    profile[batch] = "batch"
    return profile


def build_organisation(
    usage: Mapping[str, pd.DataFrame],
    groups: np.ndarray,
    *,
    name: str,
    resources: Sequence[ResourceSpec],
    tightness: float,
    seed: int,
    mean_memory: pd.Series,
) -> tuple[Organisation, pd.DataFrame]:
    """Build the organisation and its long usage table from wide per-workload usage.

    Parameters
    ----------
    usage
        Per resource name (``cpu``, ``memory``), a frame indexed by hourly ``ts`` with one column
        per workload id, no gaps and no NaN.
    groups
        Group index (0..n-1) of each workload column, in column order.
    name, resources
        Organisation name and its declared resources.
    tightness
        Capacity = tightness x sum of per-account peaks; ceilings = peak / tightness.
    seed
        Seeds the priority offsets.
    mean_memory
        Mean memory per workload (in the memory unit), for the migration cost.

    Returns
    -------
    tuple
        The organisation and the usage in long format (account, resource, ts, value, workload).
    """
    check_tightness(tightness)
    names = [r.name for r in resources]
    workloads = list(usage[names[0]].columns)
    n_groups = int(groups.max()) + 1
    group_of = pd.Series(groups, index=workloads)
    per_account = {r: usage[r].T.groupby(group_of).sum().T for r in names}
    warm = warmup_hours(len(per_account[names[0]]))
    first = {r: per_account[r].iloc[:warm] for r in names}
    peaks = pd.DataFrame({r: per_account[r].max() for r in names})
    burst = per_account["cpu"].max() / per_account["cpu"].median().clip(lower=1e-9)
    profile = _profiles(peaks, burst)
    ids = [f"{profile[g]}-{g:03d}" for g in range(n_groups)]

    capacity = {r: float(tightness * peaks[r].sum()) for r in names}
    reserve = {r: RESERVE_FRACTION * capacity[r] for r in names}
    quota = pd.DataFrame({r: first[r].quantile(0.95) for r in names})
    for r in names:
        room = capacity[r] - reserve[r]
        total = quota[r].sum()
        if total > room:
            quota[r] *= room / total
    floor = pd.DataFrame({r: np.minimum(0.5 * first[r].median(), quota[r]) for r in names})
    ceiling = peaks / tightness

    rng = np.random.default_rng([seed, 2])
    jitter = rng.integers(0, 10, size=n_groups)

    def amounts(frame: pd.DataFrame, g: int, factor: float = 1.0) -> dict[str, float]:
        row = frame.loc[g].to_dict()
        return {r: round(float(row[r]) * factor, DECIMALS) for r in names}

    accounts = []
    for g in range(n_groups):
        base, level, coverage = PROFILE_RULES[str(profile[g])]
        accounts.append(
            {
                "id": ids[g],
                "name": f"{profile[g]} account {g}",
                "quota": amounts(quota, g),
                "floor": amounts(floor, g),
                "ceiling": amounts(ceiling, g),
                "borrow_limit": amounts(quota, g, 0.5),
                "lend_limit": amounts(quota, g, 0.5),
                "priority": base + int(jitter[g]),
                "performance_threshold": {"service_level": level, "min_coverage": coverage},
                "application_profile": str(profile[g]),
            }
        )
    templates = []
    for prof in PROFILE_RULES:
        members = [g for g in range(n_groups) if profile[g] == prof]
        if not members:
            continue
        limits = {r: round(float(ceiling.loc[members, r].max()), DECIMALS) for r in names}
        seed_q = {
            r: min(round(float(quota.loc[members, r].median()), DECIMALS), limits[r]) for r in names
        }
        templates.append(
            {
                "id": f"{prof}-template",
                "application_profile": prof,
                "seed": seed_q,
                "limits": limits,
                "opening_cost": OPENING_COST,
                "splittable": prof != "datastore",
                "priority": PROFILE_RULES[prof][0],
            }
        )
    wl = [
        {
            "id": w,
            "account": ids[int(group_of[w])],
            "migratable": True,
            "migration_cost": round(1.0 + float(mean_memory[w]), 3),
        }
        for w in workloads
    ]
    data = {
        "name": name,
        "resources": [
            {"name": r.name, "unit": r.unit, "description": r.description} for r in resources
        ],
        "parent": {
            "id": "parent",
            "name": f"{name} parent",
            "capacity": {r: round(v, DECIMALS) for r, v in capacity.items()},
            "reserve": {r: round(v, DECIMALS) for r, v in reserve.items()},
            "cost_per_unit": {r: COST_PER_UNIT.get(r, 1.0) for r in names},
        },
        "accounts": accounts,
        "workloads": wl,
        "templates": templates,
    }
    org = Organisation.model_validate(data)
    long = long_usage(usage, {w: ids[int(group_of[w])] for w in workloads})
    return org, long


def long_usage(usage: Mapping[str, pd.DataFrame], account_of: Mapping[str, str]) -> pd.DataFrame:
    """Long table ``account, resource, ts, value, workload`` from wide per-workload frames.

    Rows are sorted by account, workload, resource and time; values rounded to 4 decimals.
    """
    parts = []
    for r, frame in usage.items():
        part = frame.rename_axis(index="ts", columns="workload").melt(
            ignore_index=False, value_name="value"
        )
        part = part.reset_index()
        part["resource"] = r
        parts.append(part)
    out = pd.concat(parts, ignore_index=True)
    out["account"] = out["workload"].map(account_of)
    out["value"] = out["value"].round(DECIMALS)
    out = out[["account", "resource", "ts", "value", "workload"]]
    out = out.sort_values(["account", "workload", "resource", "ts"], kind="stable")
    return out.reset_index(drop=True)
