"""Features of the global model: lags, rolling windows, seasonal lags and calendar, scaled per series.

A row is one (series, origin, step ahead h) triple: it describes what was known at the origin
(history length ``o``, last known index ``o - 1``) and the calendar of the target ``o - 1 + h``.
Every value feature is divided by the series' scale at the origin (its mean over the last
``scale_window`` steps), so one model serves series of any size.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from planner.forecast.base import Panel


def _rolling(values: np.ndarray, window: int, how: str) -> np.ndarray:
    frame = pd.DataFrame(values.T)
    roll = frame.rolling(window, min_periods=1)
    out = getattr(roll, how)()
    return np.asarray(out.to_numpy().T, dtype=np.float64)


@dataclass
class FeatureMaker:
    """Precomputed per-period arrays of one panel, gathered into feature rows on demand."""

    panel: Panel
    lags: int
    seasons: Sequence[int]
    scale_window: int

    def __post_init__(self) -> None:
        v = self.panel.values
        day = self.seasons[0] if self.seasons else 1
        self.scale = _rolling(v, self.scale_window, "mean")
        overall = _rolling(np.abs(v), max(v.shape[1], 1), "mean")
        self.scale = np.where(self.scale > 1e-9, self.scale, overall)
        self.scale = np.where(np.isfinite(self.scale) & (self.scale > 1e-9), self.scale, 1.0)
        self.windows = {
            "mean_day": _rolling(v, day, "mean"),
            "std_day": _rolling(v, day, "std"),
            "max_day": _rolling(v, day, "max"),
            "min_day": _rolling(v, day, "min"),
            "mean_long": _rolling(v, self.scale_window, "mean"),
        }
        # Same phase of the day over the last 7 days: mean and max (a robust daily profile).
        shifted = [self._shift(v, k * day) for k in range(7)] if day > 1 else [v]
        stack = np.stack(shifted)
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            self.profile_mean = np.nanmean(stack, axis=0)
            self.profile_max = np.nanmax(stack, axis=0)
        self.start = self.panel.start

    @staticmethod
    def _shift(v: np.ndarray, k: int) -> np.ndarray:
        out = np.full_like(v, np.nan)
        if k < v.shape[1]:
            out[:, k:] = v[:, : v.shape[1] - k]
        return out

    def names(self) -> list[str]:
        """Column names of the feature matrix."""
        lag_names = [f"lag{k}" for k in range(self.lags)]
        seas = [f"season{m}" for m in self.seasons] + [f"season{m}_prev" for m in self.seasons[:1]]
        return [
            "h",
            *lag_names,
            *self.windows,
            *seas,
            "profile_mean",
            "profile_max",
            "hour",
            "dayofweek",
        ]

    def rows(
        self, series: np.ndarray, origins: np.ndarray, steps: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Feature matrix and per-row scale for the given (series, origin, h) triples."""
        v = self.panel.values
        last = origins - 1
        s = self.scale[series, last]
        cols: list[np.ndarray] = [steps.astype(np.float64)]
        for k in range(self.lags):
            idx = last - k
            cols.append(np.where(idx >= 0, v[series, np.clip(idx, 0, None)], np.nan) / s)
        for arr in self.windows.values():
            cols.append(arr[series, last] / s)
        target = last + steps
        for m in self.seasons:
            src = target - m * np.ceil(steps / m).astype(np.int64)
            cols.append(np.where(src >= 0, v[series, np.clip(src, 0, None)], np.nan) / s)
        day = self.seasons[0] if self.seasons else 1
        src_day = target - day * np.ceil(steps / day).astype(np.int64)
        prev = src_day - day
        cols.append(np.where(prev >= 0, v[series, np.clip(prev, 0, None)], np.nan) / s)
        ok = src_day >= 0
        safe = np.clip(src_day, 0, None)
        cols.append(np.where(ok, self.profile_mean[series, safe], np.nan) / s)
        cols.append(np.where(ok, self.profile_max[series, safe], np.nan) / s)
        # Values enter as log1p(value / scale): scale-free, and spikes do not dominate the trees.
        cols[1:] = [to_model_space(c, 1.0) for c in cols[1:]]
        when = pd.DatetimeIndex(
            self.start + pd.to_timedelta(target * self.panel.step.value, unit="ns")
        )
        cols.append(when.hour.to_numpy().astype(np.float64))
        cols.append(when.day_of_week.to_numpy().astype(np.float64))
        return np.column_stack(cols), s


def to_model_space(values: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """``log1p(max(values, 0) / scale)``: the space the global model learns and predicts in."""
    return np.log1p(np.maximum(values, 0.0) / scale)


def from_model_space(z: np.ndarray, scale: np.ndarray | float) -> np.ndarray:
    """Inverse of :func:`to_model_space` (quantiles map through it exactly: it is monotone)."""
    return np.expm1(np.clip(z, 0.0, 50.0)) * scale
