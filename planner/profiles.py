"""Need profiles: what each sub-account will need, at the level it must be served, and how urgently.

:func:`build_need_profiles` turns usage history, known events and the dependency graph into the
prioritised list the negotiators take. Per sub-account and resource:

1. **History per period.** Usage is summed over an account's workloads at each instant, then cut
   into periods of ``rules.period_minutes`` aligned on the plan start; a period's demand is the
   *peak* of the finer samples in it (a quota must hold at every instant, so the mean would
   under-provision). Data sampled more coarsely than the period is refused.
2. **Forecast.** The forecaster (default ``planner.forecast.default_forecaster()``) is fitted on
   that history and predicts the quantiles 0.5, 0.9 and 0.99 for ``rules.horizon_periods``
   periods from the start. Only history before the start is used, so a past start replays the
   planner as it would have run then.
3. **Events.** Growth multiplies and scheduled jobs add demand (``org.events``, through
   :func:`planner.forecast.apply_events`: growth at each period's start, jobs in every period
   they overlap).
4. **Target.** The demand at the account's ``performance_threshold.service_level``, linearly
   interpolated between the quantile columns (clamped to the outer ones).
5. **Priority.** ``priority_score = priority x criticality x relative shortfall`` where
   criticality comes from :mod:`planner.dependency` and the relative shortfall is
   ``sum_r max(0, peak_target_r - quota_r) / capacity_r`` (resources have different units, so
   each is taken as a share of the parent's capacity; a resource with no capacity counts in
   its own units). The list is ordered by that score, then criticality, priority and id.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from models import NeedProfile, Organisation, ResourceDemand, SubAccount
from planner.dependency import DependencyAnalysis, analyse
from planner.estimate import DEFAULT_QUANTILES, quantile_column
from planner.forecast import apply_events, default_forecaster

KEYS = ["account", "resource"]


def plan_start(org: Organisation, usage: pd.DataFrame) -> datetime:
    """Start of the first period: ``org.state.now`` when set, else the period after the last usage.

    "The period after" is the last timestamp rounded down to the period length (periods aligned
    on midnight UTC), plus one period.
    """
    if org.state.now is not None:
        return _naive_utc(org.state.now)
    period = pd.Timedelta(minutes=org.rules.period_minutes)
    if usage.empty:
        raise ValueError("usage has no rows: pass start= to say when the plan begins")
    last = pd.Timestamp(_naive_ts(usage["ts"]).max())
    return (last.floor(period) + period).to_pydatetime()


def period_peaks(usage: pd.DataFrame, period_minutes: int, *, origin: datetime) -> pd.DataFrame:
    """Resample a long usage table to periods: the peak of each account's summed usage.

    Parameters
    ----------
    usage
        ``account, resource, ts, value`` (and optionally ``workload``).
    period_minutes
        Period length.
    origin
        A period boundary (the plan start); periods are ``origin + k * period`` for integer k.

    Returns
    -------
    pandas.DataFrame
        ``account, resource, ts, value``: ``ts`` the period start, ``value`` the highest, over the
        period's samples, of the usage summed over the account's workloads at that instant.

    Raises
    ------
    ValueError
        When the data is sampled more coarsely than the period (it cannot be split by peak).
    """
    period_ns = pd.Timedelta(minutes=period_minutes).value
    if usage.empty:
        return pd.DataFrame({c: [] for c in (*KEYS, "ts", "value")})
    # integer codes: grouping on strings is what makes large tables slow
    a_codes, a_names = pd.factorize(usage["account"], sort=True)
    r_codes, r_names = pd.factorize(usage["resource"], sort=True)
    n_r = max(len(r_names), 1)
    series = a_codes.astype(np.int64) * n_r + r_codes
    times = _naive_ts(usage["ts"]).to_numpy(dtype="datetime64[ns]").astype(np.int64)
    values = pd.to_numeric(usage["value"]).to_numpy(dtype=float)
    # sort by (series, time) without grouping on strings: one integer key when it fits
    rel = times - times.min()
    unit = int(np.gcd.reduce(rel)) or 1
    ticks = rel // unit
    span = int(ticks.max()) + 1
    n_series = int(series.max()) + 1
    if n_series * span < 2**62:
        order = np.argsort(series * span + ticks, kind="stable")
    else:
        order = np.lexsort((ticks, series))
    series, times, values = series[order], times[order], values[order]
    # 1. sum over workloads at each instant
    new = np.flatnonzero(np.r_[True, (series[1:] != series[:-1]) | (times[1:] != times[:-1])])
    sums = np.add.reduceat(values, new)
    series, times = series[new], times[new]
    same = series[1:] == series[:-1]
    steps = np.diff(times)[same]
    if len(steps) and np.median(steps) > period_ns:
        raise ValueError(
            f"usage is sampled every {pd.Timedelta(int(np.median(steps)), unit='ns')}, coarser "
            f"than the period of {period_minutes} minutes; give finer usage or raise "
            "rules.period_minutes"
        )
    # 2. peak within each period
    base = pd.Timestamp(_naive_utc(origin)).value
    bins = (times - base) // period_ns
    first = np.flatnonzero(np.r_[True, ~same | (bins[1:] != bins[:-1])])
    peaks = np.maximum.reduceat(sums, first)
    s_out, b_out = series[first], bins[first]
    return pd.DataFrame(
        {
            "account": np.asarray(a_names, dtype=object)[s_out // n_r].astype(str),
            "resource": np.asarray(r_names, dtype=object)[s_out % n_r].astype(str),
            "ts": pd.to_datetime(base + b_out * period_ns, unit="ns"),
            "value": peaks,
        }
    )


def _apply_events(forecast: pd.DataFrame, org: Organisation) -> pd.DataFrame:
    return apply_events(forecast, org.events, step=pd.Timedelta(minutes=org.rules.period_minutes))


def forecast_quantiles(
    org: Organisation,
    history: pd.DataFrame,
    periods: pd.DatetimeIndex,
    forecaster: Any,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> tuple[np.ndarray, set[tuple[str, str]]]:
    """Forecast every account x resource over ``periods``, events applied.

    Returns
    -------
    values : numpy.ndarray
        Shape ``(n_accounts, n_resources, n_periods, n_quantiles)`` in the organisation's
        declaration order; monotone in the quantile, non-negative. Series without history are 0
        before events.
    observed : set of (account, resource)
        The series that had history.
    """
    accounts, resources = org.account_ids, org.resource_names
    a_index = {a: i for i, a in enumerate(accounts)}
    r_index = {r: i for i, r in enumerate(resources)}
    n_t, qs = len(periods), list(quantiles)
    values = np.full((len(accounts), len(resources), n_t, len(qs)), np.nan)
    observed = {
        (str(a), str(r)) for a, r in history[KEYS].drop_duplicates().itertuples(index=False)
    }
    if observed:
        period = pd.Timedelta(minutes=org.rules.period_minutes)
        last = pd.Timestamp(history["ts"].max())
        horizon = int((periods[-1] - last) // period)
        fitted = forecaster.fit(history)
        pred = fitted.predict(horizon, tuple(qs))
        idx = (pd.to_datetime(pred["ts"]) - periods[0]) / period
        t = np.rint(idx.to_numpy(dtype=float)).astype(np.int64)
        a = pred["account"].astype(str).map(a_index).to_numpy(dtype=float, na_value=np.nan)
        r = pred["resource"].astype(str).map(r_index).to_numpy(dtype=float, na_value=np.nan)
        keep = (t >= 0) & (t < n_t) & ~np.isnan(a) & ~np.isnan(r)
        cols = pred[[quantile_column(q) for q in qs]].to_numpy(dtype=float)
        values[a[keep].astype(int), r[keep].astype(int), t[keep]] = cols[keep]
        # periods a forecaster left out: carry its neighbours (series it left out stay 0)
        values = _fill_periods(values)
    values = np.nan_to_num(values, nan=0.0)
    long = pd.DataFrame(
        {
            "account": np.repeat(accounts, len(resources) * n_t),
            "resource": np.tile(np.repeat(resources, n_t), len(accounts)),
            "ts": np.tile(periods.to_numpy(), len(accounts) * len(resources)),
        }
    )
    cols_q = [quantile_column(q) for q in qs]
    long[cols_q] = values.reshape(-1, len(qs))
    long = _apply_events(long, org)
    values = long[cols_q].to_numpy(dtype=float).reshape(values.shape)
    values = np.maximum.accumulate(np.clip(values, 0.0, None), axis=-1)
    return values, observed


def _fill_periods(values: np.ndarray) -> np.ndarray:
    """Fill NaN periods of each series from the previous period, then from the next one."""
    n_a, n_r, n_t, n_q = values.shape
    flat = values.transpose(0, 1, 3, 2).reshape(-1, n_t)
    frame = pd.DataFrame(flat).ffill(axis=1).bfill(axis=1)
    return frame.to_numpy().reshape(n_a, n_r, n_q, n_t).transpose(0, 1, 3, 2)


def interpolate_level(values: np.ndarray, quantiles: Sequence[float], level: float) -> np.ndarray:
    """Values at quantile ``level``, linear between the columns of ``values`` (last axis).

    Levels outside the quantiles given take the nearest column.
    """
    qs = np.asarray(quantiles, dtype=float)
    if level <= qs[0]:
        return np.asarray(values[..., 0])
    if level >= qs[-1]:
        return np.asarray(values[..., -1])
    hi = int(np.searchsorted(qs, level, side="right"))
    lo = hi - 1
    w = (level - qs[lo]) / (qs[hi] - qs[lo])
    return np.asarray((1.0 - w) * values[..., lo] + w * values[..., hi])


def build_need_profiles(
    org: Organisation,
    usage: pd.DataFrame,
    *,
    start: datetime | None = None,
    forecaster: Any = None,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    analysis: DependencyAnalysis | None = None,
) -> list[NeedProfile]:
    """Predict each sub-account's needs and rank them (see the module docstring for the method).

    Parameters
    ----------
    org
        The organisation: accounts (quota, priority, performance threshold), rules (period length
        and horizon), events and the dependency graph.
    usage
        Long usage table ``account, resource, ts, value`` (optionally ``workload``), at any step
        no coarser than the period.
    start
        Start of the first period (default :func:`plan_start`). Only usage before it is used.
    forecaster
        An estimator with ``fit(usage) -> self`` and ``predict(horizon, quantiles) -> DataFrame``
        (default :func:`planner.forecast.default_forecaster`); it is fitted here.
    quantiles
        Quantile columns to forecast (sorted, between 0 and 1); targets interpolate between them.
    analysis
        A precomputed :func:`planner.dependency.analyse` of ``org``.

    Returns
    -------
    list of NeedProfile
        One per sub-account, highest ``priority_score`` first (ties: criticality, priority, id).
        Accounts with a ``need_profile`` in the organisation keep its demand.
    """
    qs = tuple(float(q) for q in quantiles)
    if not qs or any(not 0 < q < 1 for q in qs) or list(qs) != sorted(set(qs)):
        raise ValueError(
            "The 'quantiles' parameter of build_need_profiles must be increasing levels "
            f"strictly between 0 and 1. Got {quantiles!r} instead."
        )
    missing = [c for c in ("account", "resource", "ts", "value") if c not in usage.columns]
    if missing:
        raise ValueError(f"usage lacks the column(s) {', '.join(missing)}")
    unknown = sorted(set(pd.unique(usage["account"]).astype(str)) - set(org.account_ids))
    if unknown:
        raise ValueError(f"usage names accounts that are not in the organisation: {unknown[:8]}")
    when = _naive_utc(start) if start is not None else plan_start(org, usage)
    period = pd.Timedelta(minutes=org.rules.period_minutes)
    periods = pd.date_range(when, periods=org.rules.horizon_periods, freq=period)
    history = period_peaks(usage, org.rules.period_minutes, origin=when)
    history = history[history["ts"] < pd.Timestamp(when)].reset_index(drop=True)
    model = forecaster if forecaster is not None else default_forecaster()
    values, observed = forecast_quantiles(org, history, periods, model, qs)
    method = type(model).__name__
    dep = analysis if analysis is not None else analyse(org, with_chains=False)
    period_list = [ts.to_pydatetime() for ts in periods]
    profiles = []
    for i, acc in enumerate(org.accounts):
        level = acc.performance_threshold.service_level
        if acc.need_profile is not None:
            demand = dict(acc.need_profile.demand)
            given = True
        else:
            given = False
            demand = {
                r: ResourceDemand(
                    resource=r,
                    periods=period_list,
                    target=interpolate_level(values[i, j], qs, level).tolist(),
                    service_level=level,
                    quantiles={q: values[i, j, :, k].tolist() for k, q in enumerate(qs)},
                    method=method if (acc.id, r) in observed else "none (no usage)",
                )
                for j, r in enumerate(org.resource_names)
            }
        profiles.append(_profile(org, acc, demand, dep, observed, level=level, given=given))
    rank = {a.id: a.priority for a in org.accounts}
    return sorted(
        profiles,
        key=lambda p: (-p.priority_score, -p.criticality, -rank[p.account], p.account),
    )


def _profile(
    org: Organisation,
    acc: SubAccount,
    demand: dict[str, ResourceDemand],
    dep: DependencyAnalysis,
    observed: set[tuple[str, str]],
    *,
    level: float,
    given: bool,
) -> NeedProfile:
    shortfall = {r: d.peak - acc.quota.get(r, 0.0) for r, d in demand.items()}
    relative = 0.0
    for r, s in shortfall.items():
        cap = org.parent.capacity.get(r, 0.0)
        relative += max(0.0, s) / cap if cap > 0 else max(0.0, s)
    crit = dep.criticality.get(acc.id, 0.0)
    score = acc.priority * crit * relative
    critical_deps = dep.critical_dependencies.get(acc.id, [])
    return NeedProfile(
        account=acc.id,
        demand=demand,
        critical_dependencies=critical_deps,
        performance_threshold=level,
        criticality=crit,
        priority_score=score,
        shortfall=shortfall,
        reason=_reason(org, acc, demand, shortfall, dep, observed, level, given, critical_deps),
    )


def _reason(
    org: Organisation,
    acc: SubAccount,
    demand: dict[str, ResourceDemand],
    shortfall: dict[str, float],
    dep: DependencyAnalysis,
    observed: set[tuple[str, str]],
    level: float,
    given: bool,
    critical_deps: list[str],
) -> str:
    parts = []
    label = f"P{level * 100:g}"
    if given:
        parts.append("need profile given in the organisation")
    else:
        unseen = [r for r in demand if (acc.id, r) not in observed]
        if len(unseen) == len(demand):
            parts.append("no usage history: zero demand assumed")
        elif unseen:
            parts.append(f"no usage of {', '.join(unseen)}: zero demand assumed for it")
    short = [
        f"{r} {demand[r].peak:,.4g} vs quota {acc.quota.get(r, 0.0):,.4g} (+{s:,.4g})"
        for r, s in shortfall.items()
        if s > 1e-9
    ]
    if short:
        parts.append(f"{label} peak above quota: " + "; ".join(short))
    else:
        parts.append(f"{label} peak within quota")
    period = timedelta(minutes=org.rules.period_minutes)
    begin = min(d.periods[0] for d in demand.values()) if demand else None
    end = max(d.periods[-1] for d in demand.values()) + period if demand else None
    growth = [
        g
        for g in org.events.growth
        if g.account == acc.id and end is not None and _naive_utc(g.start) < end
    ]
    jobs = [
        j
        for j in org.events.jobs
        if j.account == acc.id
        and begin is not None
        and end is not None
        and _naive_utc(j.start) < end
        and _naive_utc(j.end) > begin
    ]
    if growth:
        parts.append(
            "growth "
            + ", ".join(f"x{g.multiplier:g} from {g.start:%Y-%m-%d %H:%M}" for g in growth)
        )
    if jobs:
        parts.append(
            "jobs " + ", ".join(f"{j.name or 'job'} +{j.amount:,.4g} {j.resource}" for j in jobs)
        )
    raw = dep.criticality_raw.get(acc.id, 0.0)
    if raw > acc.priority:
        parts.append(
            f"criticality {dep.criticality.get(acc.id, 0.0):.2f} "
            f"(priority {raw:g} depends on it, own {acc.priority})"
        )
    if critical_deps:
        parts.append("depends critically on " + ", ".join(critical_deps[:5]))
    return "; ".join(parts)


def _naive_utc(when: datetime) -> datetime:
    ts = pd.Timestamp(when)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    return ts.to_pydatetime()


def _naive_ts(ts: pd.Series) -> pd.Series:
    out = pd.to_datetime(ts)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out
