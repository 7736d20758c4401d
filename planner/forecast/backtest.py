"""Rolling-origin evaluation: MASE, sMAPE, pinball loss and interval coverage, per series and overall.

The estimator is fitted once on everything before the first origin (or refitted at every origin
with ``refit=True``); from each origin it forecasts ``horizon`` periods from the history known
then (``predict(..., history=...)``), and the origins move on by ``step`` periods.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from planner.forecast.base import (
    DEFAULT_QUANTILES,
    BaseForecaster,
    build_panel,
    check_param,
    check_quantiles,
    is_int,
    quantile_column,
)

__all__ = [
    "BacktestResult",
    "coverage",
    "mase",
    "pinball",
    "rolling_origin",
    "score_forecasts",
    "smape",
]


def mase(actual: np.ndarray, pred: np.ndarray, history: np.ndarray, season: int = 24) -> float:
    """Mean absolute scaled error: MAE of ``pred`` over the in-sample MAE of the seasonal naive.

    ``history`` is the training series (NaN allowed); NaN when its seasonal-naive MAE is 0 or it
    is shorter than ``season + 1`` (falls back to ``season=1`` first).
    """
    h = history[~np.isnan(history)]
    m = season if len(h) > season else 1
    if len(h) <= m:
        return float("nan")
    scale = float(np.mean(np.abs(h[m:] - h[:-m])))
    if scale <= 0:
        return float("nan")
    return float(np.mean(np.abs(actual - pred)) / scale)


def smape(actual: np.ndarray, pred: np.ndarray) -> float:
    """Symmetric MAPE in percent, ``200 * mean(|y - f| / (|y| + |f|))`` with 0/0 counted as 0."""
    den = np.abs(actual) + np.abs(pred)
    ratio = np.divide(
        np.abs(actual - pred), den, out=np.zeros_like(den, dtype=np.float64), where=den > 0
    )
    return float(200.0 * np.mean(ratio))


def pinball(actual: np.ndarray, pred: np.ndarray, q: float) -> float:
    """Mean pinball (quantile) loss of ``pred`` as the ``q`` quantile of ``actual``."""
    diff = actual - pred
    return float(np.mean(np.maximum(q * diff, (q - 1.0) * diff)))


def coverage(actual: np.ndarray, upper: np.ndarray) -> float:
    """Fraction of ``actual`` at or below ``upper`` (the coverage of a one-sided interval)."""
    return float(np.mean(actual <= upper))


@dataclass
class BacktestResult:
    """Forecasts of every origin joined with the actuals, and their metrics.

    ``per_series`` has one row per series with ``mase``, ``smape``, ``pinball_q*`` (raw units),
    ``spinball_q*`` (pinball divided by the series' mean absolute training value) and
    ``coverage_q*``; ``overall`` has the mean over series of the first four and the coverage
    pooled over all test points (``mase_median`` too).
    """

    forecasts: pd.DataFrame
    per_series: pd.DataFrame
    overall: pd.Series
    fit_seconds: float = 0.0
    predict_seconds: float = 0.0
    origins: list[pd.Timestamp] = field(default_factory=list)


def score_forecasts(
    forecasts: pd.DataFrame,
    train: pd.DataFrame,
    *,
    id_cols: Sequence[str] = ("account", "resource"),
    time_col: str = "ts",
    value_col: str = "value",
    actual_col: str = "actual",
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    season: int = 24,
) -> tuple[pd.DataFrame, pd.Series]:
    """Metrics per series and overall for forecasts that carry their actual values.

    Parameters
    ----------
    forecasts : DataFrame
        ``[*id_cols, time_col, actual_col, q...]``; rows without an actual are ignored.
    train : DataFrame
        Training history (long table) for the MASE and pinball scales.
    season : int
        Season of the naive forecast that scales MASE (24 = daily for hourly data).

    Returns
    -------
    (DataFrame, Series)
        Per-series metrics and overall metrics.
    """
    ids = list(id_cols)
    qs = check_quantiles("score_forecasts", quantiles)
    median = min(qs, key=lambda q: abs(q - 0.5))
    fc = forecasts[forecasts[actual_col].notna()]
    hist = {
        (k if isinstance(k, tuple) else (k,)): g.sort_values(time_col)[value_col].to_numpy(
            np.float64
        )
        for k, g in train.groupby(ids, observed=True)
    }
    rows = []
    for key, g in fc.groupby(ids, observed=True, sort=True):
        key_t = key if isinstance(key, tuple) else (key,)
        y = g[actual_col].to_numpy(np.float64)
        h = hist.get(key_t, np.zeros(0))
        level = float(np.mean(np.abs(h))) if len(h) else float("nan")
        row: dict[str, object] = dict(zip(ids, key_t, strict=True))
        row["n"] = len(y)
        row["mase"] = mase(y, g[quantile_column(median)].to_numpy(np.float64), h, season)
        row["smape"] = smape(y, g[quantile_column(median)].to_numpy(np.float64))
        for q in qs:
            pred = g[quantile_column(q)].to_numpy(np.float64)
            loss = pinball(y, pred, q)
            row[f"pinball_q{q:g}"] = loss
            row[f"spinball_q{q:g}"] = loss / level if level > 0 else float("nan")
            row[f"coverage_q{q:g}"] = coverage(y, pred)
        rows.append(row)
    per_series = pd.DataFrame(rows)
    overall: dict[str, float] = {"series": float(len(per_series)), "points": float(len(fc))}
    if len(per_series):
        overall["mase"] = float(per_series["mase"].mean())
        overall["mase_median"] = float(per_series["mase"].median())
        overall["smape"] = float(per_series["smape"].mean())
        for q in qs:
            overall[f"spinball_q{q:g}"] = float(per_series[f"spinball_q{q:g}"].mean())
            col = fc[quantile_column(q)].to_numpy(np.float64)
            overall[f"coverage_q{q:g}"] = coverage(fc[actual_col].to_numpy(np.float64), col)
    return per_series, pd.Series(overall)


def rolling_origin(
    estimator: BaseForecaster,
    usage: pd.DataFrame,
    *,
    horizon: int = 24,
    step: int | None = None,
    n_windows: int = 3,
    start: pd.Timestamp | str | None = None,
    refit: bool = False,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
    season: int = 24,
) -> BacktestResult:
    """Rolling-origin backtest of ``estimator`` on ``usage``.

    Parameters
    ----------
    estimator : BaseForecaster
        Any forecaster of this package (its column-name parameters are used).
    usage : DataFrame
        Long usage table.
    horizon : int
        Periods forecast from each origin.
    step : int, optional
        Periods between origins (default ``horizon``).
    n_windows : int
        Number of origins, the last ending at the end of ``usage`` (ignored when ``start`` given).
    start : Timestamp or str, optional
        First origin (the first forecast period); origins follow every ``step`` while a whole
        horizon of data remains.
    refit : bool
        Refit at every origin instead of once before the first.
    quantiles, season
        Levels to forecast; season of MASE's naive scale.

    Returns
    -------
    BacktestResult
    """
    name = "rolling_origin"
    check_param(name, "horizon", horizon, is_int(horizon) and horizon >= 1, "an int >= 1")
    step = horizon if step is None else step
    check_param(name, "step", step, is_int(step) and step >= 1, "an int >= 1")
    check_param(name, "n_windows", n_windows, is_int(n_windows) and n_windows >= 1, "an int >= 1")
    ids, tcol, vcol = list(estimator.id_cols), estimator.time_col, estimator.value_col
    panel = build_panel(usage, ids, tcol, vcol, owner=name)
    t = panel.n_times
    if start is None:
        first = t - horizon - (n_windows - 1) * step
    else:
        first = int(np.ceil((pd.Timestamp(start) - panel.start) / panel.step))
    origins = list(range(first, t - horizon + 1, step))
    if not origins or origins[0] < 2:
        raise ValueError(
            f"{name}: not enough data for origins from index {first} with horizon {horizon} "
            f"in {t} periods; use fewer windows or a later start."
        )
    times = panel.times(0, t)
    data = usage.copy()
    data[tcol] = pd.to_datetime(data[tcol])
    fit_s = pred_s = 0.0
    parts = []
    for k, o in enumerate(origins):
        known = data[data[tcol] < times[o]]
        if refit or k == 0:
            began = time.perf_counter()
            estimator.fit(known)
            fit_s += time.perf_counter() - began
        history = None
        if not (refit or k == 0):
            fitted_keys = estimator.panel_.keys
            history = known.merge(fitted_keys, on=ids, how="inner")
        began = time.perf_counter()
        fc = estimator.predict(horizon, quantiles, history=history)
        pred_s += time.perf_counter() - began
        parts.append(fc.assign(origin=times[o]))
    forecasts = pd.concat(parts, ignore_index=True)
    means = data[[*ids, tcol, vcol]].groupby([*ids, tcol], observed=True)[vcol].mean()
    forecasts = forecasts.merge(means.rename("actual").reset_index(), on=[*ids, tcol], how="left")
    train = data[data[tcol] < times[origins[0]]]
    per_series, overall = score_forecasts(
        forecasts,
        train,
        id_cols=ids,
        time_col=tcol,
        value_col=vcol,
        quantiles=quantiles,
        season=season,
    )
    return BacktestResult(
        forecasts, per_series, overall, fit_s, pred_s, [times[o] for o in origins]
    )
