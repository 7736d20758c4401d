"""Baseline forecasters: seasonal naive and exponentially weighted mean, with conformal bands.

Both give every quantile: the point forecast plus the empirical quantile of the errors the same
method made out of sample on the tail of the training data (rolling origins every few steps,
horizons 1..``calibration_horizon``), per series. This is split-conformal calibration: the band is
as wide as the method's own recent errors, so P90 covers about 90 % when the future behaves like the
recent past. A series with too few errors borrows the pooled errors of all series, rescaled by its
own level.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from planner.forecast.base import BaseForecaster, Panel, check_param, is_int, is_real

MIN_ERRORS = 24


def series_scale(values: np.ndarray) -> np.ndarray:
    """Level of each series: mean absolute value (ignoring NaN), 1 where that is 0 or missing."""
    with np.errstate(all="ignore"):
        level = np.nanmean(np.abs(values), axis=1) if values.shape[1] else np.full(len(values), 0.0)
    return np.where(np.isfinite(level) & (level > 0), level, 1.0)


def calibration_origins(
    n_times: int, horizon: int, window: int, stride: int | None = None
) -> np.ndarray:
    """Origins (history lengths) whose next ``horizon`` periods lie in the last ``window``.

    They run back from ``n_times - horizon`` every ``stride`` steps (default ``horizon // 8``).
    """
    last = n_times - horizon
    first = max(1, n_times - window)
    if last < first:
        return np.zeros(0, dtype=np.int64)
    stride = max(1, horizon // 8) if stride is None else max(1, stride)
    return np.arange(last, first - 1, -stride)[::-1].astype(np.int64)


def gather_actuals(values: np.ndarray, origins: np.ndarray, horizon: int) -> np.ndarray:
    """Actual values after each origin: shape ``(n_series, n_origins, horizon)``."""
    idx = origins[:, None] + np.arange(horizon)[None, :]
    return values[:, idx]


class ResidualBands:
    """Per-series out-of-sample errors and the quantile bands taken from them."""

    def __init__(self, errors: np.ndarray, scale: np.ndarray) -> None:
        count = np.sum(~np.isnan(errors), axis=1)
        self.errors = errors
        self.enough = count >= MIN_ERRORS
        self.scale = scale
        pooled = (errors / scale[:, None])[self.enough].ravel()
        self.pooled = pooled[~np.isnan(pooled)]

    def offsets(self, quantiles: Sequence[float], scale: np.ndarray) -> np.ndarray:
        """Band offsets ``(n_series, n_quantiles)`` to add to the point forecast."""
        n = self.errors.shape[0]
        out = np.zeros((n, len(quantiles)))
        if self.enough.any():
            out[self.enough] = np.nanquantile(self.errors[self.enough], quantiles, axis=1).T
        if self.pooled.size and (~self.enough).any():
            pooled_q = np.quantile(self.pooled, quantiles)
            out[~self.enough] = pooled_q[None, :] * scale[~self.enough, None]
        return out


class _ConformalBaseline(BaseForecaster):
    """A point method plus :class:`ResidualBands` from its own rolling-origin errors."""

    calibration_window: int
    calibration_horizon: int

    def _validate_bands(self) -> None:
        name = type(self).__name__
        w, h = self.calibration_window, self.calibration_horizon
        check_param(name, "calibration_window", w, is_int(w) and w >= 1, "an int >= 1")
        check_param(name, "calibration_horizon", h, is_int(h) and h >= 1, "an int >= 1")

    def _point_paths(
        self, values: np.ndarray, first: np.ndarray, origins: np.ndarray, horizon: int
    ) -> np.ndarray:
        raise NotImplementedError

    def _fit_panel(self, panel: Panel) -> None:
        h = self.calibration_horizon
        origins = calibration_origins(panel.n_times, h, self.calibration_window)
        if origins.size:
            paths = self._point_paths(panel.values, panel.first, origins, h)
            errors = gather_actuals(panel.values, origins, h) - paths
        else:
            errors = np.full((panel.n_series, 0, h), np.nan)
        self.oos_origins_ = origins
        self.oos_errors_ = errors
        scale = series_scale(panel.values[:, -self.calibration_window :])
        self.bands_ = ResidualBands(errors.reshape(panel.n_series, -1), scale)

    def median_offset(self, panel: Panel) -> np.ndarray:
        """Per series: what the bands add to the point forecast for the median (the
        ``oos_errors_`` are of the point forecast)."""
        scale = series_scale(panel.values[:, -self.calibration_window :])
        return self.bands_.offsets((0.5,), scale)[:, 0]

    def _forecast(self, panel: Panel, horizon: int, quantiles: tuple[float, ...]) -> np.ndarray:
        origin = np.array([panel.n_times], dtype=np.int64)
        point = self._point_paths(panel.values, panel.first, origin, horizon)[:, 0, :]
        scale = series_scale(panel.values[:, -self.calibration_window :])
        offsets = self.bands_.offsets(quantiles, scale)
        return point[:, :, None] + offsets[:, None, :]


class SeasonalNaive(_ConformalBaseline):
    """Repeat the value one season earlier: ``y[t+h] = y[t+h-k*season]`` (smallest k that is known).

    Parameters
    ----------
    season : int
        Season length in steps of the data (24 = daily and 168 = weekly for hourly data; 1 is the
        last-value forecast).
    fallback_season : int or None
        Season used for a series with less than one full ``season`` of history (e.g. 24 when the
        weekly season does not fit); a series shorter than that repeats its last value.
    calibration_window : int
        Steps at the end of the training data whose out-of-sample errors give the bands.
    calibration_horizon : int
        Horizons 1..this of those errors are pooled.
    id_cols, time_col, value_col
        Column names of the long usage table.
    """

    def __init__(
        self,
        season: int = 24,
        fallback_season: int | None = None,
        calibration_window: int = 336,
        calibration_horizon: int = 24,
        id_cols: Sequence[str] = ("account", "resource"),
        time_col: str = "ts",
        value_col: str = "value",
    ) -> None:
        self.season = season
        self.fallback_season = fallback_season
        self.calibration_window = calibration_window
        self.calibration_horizon = calibration_horizon
        self.id_cols = id_cols
        self.time_col = time_col
        self.value_col = value_col

    def _validate_params(self) -> None:
        name = type(self).__name__
        s, f = self.season, self.fallback_season
        check_param(name, "season", s, is_int(s) and s >= 1, "an int >= 1")
        ok = f is None or (is_int(f) and 1 <= f <= s)
        check_param(name, "fallback_season", f, ok, "None or an int in [1, season]")
        self._validate_bands()

    def _point_paths(
        self, values: np.ndarray, first: np.ndarray, origins: np.ndarray, horizon: int
    ) -> np.ndarray:
        steps = np.arange(1, horizon + 1)
        last = (
            values[:, origins - 1][:, :, None]
            if values.shape[1]
            else np.full((len(values), len(origins), 1), np.nan)
        )
        out = np.broadcast_to(last, (len(values), len(origins), horizon)).copy()
        seasons = (
            [self.season] if self.fallback_season is None else [self.fallback_season, self.season]
        )
        for m in seasons:  # longer season last: it wins wherever its history exists
            if m == 1:
                continue
            src = (
                origins[:, None]
                - 1
                + steps[None, :]
                - m * np.ceil(steps / m).astype(np.int64)[None, :]
            )
            ok = (src[None, :, :] >= first[:, None, None]) & (src[None, :, :] >= 0)
            seasonal = values[:, np.clip(src, 0, None)]
            out = np.where(ok, seasonal, out)
        return out


class EWM(_ConformalBaseline):
    """Exponentially weighted mean level, flat over the horizon.

    ``level[t] = alpha * y[t] + (1 - alpha) * level[t-1]``, started at the first observation.

    Parameters
    ----------
    alpha : float
        Smoothing factor in (0, 1]; higher follows the latest values more closely.
    calibration_window, calibration_horizon
        As in :class:`SeasonalNaive`.
    id_cols, time_col, value_col
        Column names of the long usage table.
    """

    def __init__(
        self,
        alpha: float = 0.1,
        calibration_window: int = 336,
        calibration_horizon: int = 24,
        id_cols: Sequence[str] = ("account", "resource"),
        time_col: str = "ts",
        value_col: str = "value",
    ) -> None:
        self.alpha = alpha
        self.calibration_window = calibration_window
        self.calibration_horizon = calibration_horizon
        self.id_cols = id_cols
        self.time_col = time_col
        self.value_col = value_col

    def _validate_params(self) -> None:
        a = self.alpha
        check_param(
            type(self).__name__,
            "alpha",
            a,
            is_real(a) and 0.0 < float(a) <= 1.0,
            "a float in (0, 1]",
        )
        self._validate_bands()

    def _prepare(self, values: np.ndarray) -> None:
        frame = pd.DataFrame(values.T)
        self._levels = (
            frame.ewm(alpha=float(self.alpha), adjust=False, ignore_na=True).mean().to_numpy().T
        )

    def _point_paths(
        self, values: np.ndarray, first: np.ndarray, origins: np.ndarray, horizon: int
    ) -> np.ndarray:
        if values.shape[1] == 0:
            return np.full((len(values), len(origins), horizon), np.nan)
        stop = int(origins.max())
        frame = pd.DataFrame(values[:, :stop].T)
        levels = (
            frame.ewm(alpha=float(self.alpha), adjust=False, ignore_na=True).mean().to_numpy().T
        )
        level = levels[:, origins - 1]
        return np.broadcast_to(level[:, :, None], (len(values), len(origins), horizon)).copy()
