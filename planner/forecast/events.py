"""Known future events applied to a forecast: projected growth and scheduled jobs."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime

import numpy as np
import pandas as pd

from models.events import Events, GrowthEvent, ScheduledJob
from planner.estimate import quantile_column

__all__ = ["apply_events", "growth_factor"]


def _as_naive_like(when: datetime, like: pd.Series) -> pd.Timestamp:
    """``when`` as a Timestamp comparable with the time column ``like`` (UTC if tz differs)."""
    ts = pd.Timestamp(when)
    tz = getattr(like.dt, "tz", None)
    if tz is None and ts.tzinfo is not None:
        return ts.tz_convert("UTC").tz_localize(None)
    if tz is not None and ts.tzinfo is None:
        return ts.tz_localize("UTC").tz_convert(tz)
    return ts


def growth_factor(event: GrowthEvent, times: pd.Series) -> np.ndarray:
    """Multiplier of ``event`` at each time: 1 before ``start``, ramping linearly to ``multiplier``.

    ``factor(t) = 1 + (multiplier - 1) * clip((t - start) / ramp, 0, 1)`` for ``t >= start``
    (a step to ``multiplier`` at ``start`` when ``ramp_hours`` is 0).
    """
    start = _as_naive_like(event.start, times)
    elapsed = ((times - start) / pd.Timedelta(hours=1)).to_numpy(dtype=np.float64)
    if event.ramp_hours > 0:
        frac = np.clip(elapsed / event.ramp_hours, 0.0, 1.0)
    else:
        frac = (elapsed >= 0).astype(np.float64)
    frac = np.where(elapsed >= 0, frac, 0.0)
    return 1.0 + (event.multiplier - 1.0) * frac


def apply_events(
    forecast: pd.DataFrame,
    events: Events | Iterable[GrowthEvent | ScheduledJob] | None,
    *,
    id_cols: Sequence[str] = ("account", "resource"),
    time_col: str = "ts",
    step: pd.Timedelta | None = None,
) -> pd.DataFrame:
    """Return a copy of ``forecast`` with growth multipliers and scheduled jobs applied.

    Every quantile column (``q0.5``, ``q0.9``, ...) is changed alike. Growth is applied first
    (``value * factor(t)``, see :func:`growth_factor`), for the account's matching resource or all
    its resources when the event names none; then each scheduled job adds its ``amount`` to every
    period ``[ts, ts + step)`` of its account and resource that overlaps ``[start, end)`` (a job
    running for part of a period still needs its full amount during it). Jobs are not scaled by
    growth: they are known absolute amounts.

    Parameters
    ----------
    forecast : DataFrame
        Output of a forecaster's ``predict``.
    events : Events or iterable of GrowthEvent / ScheduledJob or None
        What is known about the future; None or empty returns an unchanged copy.
    id_cols : sequence of str
        Id columns; the first names the account, the second (if any) the resource.
    time_col : str
        Time column (start of each period).
    step : Timedelta, optional
        Period length; inferred from the time column (median step, 1 hour if there is one period).

    Returns
    -------
    DataFrame
    """
    out = forecast.copy()
    if events is None:
        return out
    items: list[GrowthEvent | ScheduledJob]
    items = [*events.growth, *events.jobs] if isinstance(events, Events) else list(events)
    bad = [e for e in items if not isinstance(e, GrowthEvent | ScheduledJob)]
    if bad:
        raise TypeError(
            f"apply_events: expected GrowthEvent or ScheduledJob, got {type(bad[0]).__name__}."
        )
    if not items or out.empty:
        return out
    ids = list(id_cols)
    account_col = ids[0]
    resource_col = ids[1] if len(ids) > 1 else None
    qcols = [c for c in out.columns if c.startswith("q") and c not in ids and c != time_col]
    if not qcols:
        raise ValueError(
            f"apply_events: forecast has no quantile columns like {quantile_column(0.5)!r}."
        )
    times = pd.to_datetime(out[time_col])
    if step is None:
        diffs = np.diff(np.unique(times.to_numpy()))
        step = pd.Timedelta(np.median(diffs)) if len(diffs) else pd.Timedelta(hours=1)
    values = out[qcols].to_numpy(dtype=np.float64, copy=True)
    accounts = out[account_col].astype(str).to_numpy()
    resources = out[resource_col].astype(str).to_numpy() if resource_col else None
    for event in (e for e in items if isinstance(e, GrowthEvent)):
        mask = accounts == event.account
        if event.resource is not None and resources is not None:
            mask &= resources == event.resource
        if mask.any():
            values[mask] *= growth_factor(event, times[mask])[:, None]
    for job in (e for e in items if isinstance(e, ScheduledJob)):
        mask = accounts == job.account
        if resources is not None:
            mask &= resources == job.resource
        start = _as_naive_like(job.start, times)
        end = _as_naive_like(job.end, times)
        mask &= ((times < end) & (times + step > start)).to_numpy()
        values[mask] += job.amount
    out[qcols] = values
    return out
