"""The first, deliberately simple demand estimate: the recent same-hour peak.

It keeps the pipeline running end to end and is the yardstick the forecasters of
:mod:`planner.forecast` must beat. It follows the forecaster contract every estimator here obeys:

``fit(usage)`` on a long table (``account, resource, ts, value``; column names are parameters),
then ``predict(horizon, quantiles)`` returns one row per series and future period with columns
``account, resource, ts`` and one column per quantile named by :func:`quantile_column`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

DEFAULT_QUANTILES: tuple[float, ...] = (0.5, 0.9, 0.99)


def quantile_column(q: float) -> str:
    """Name of the column that holds quantile ``q`` (``0.9`` -> ``"q0.9"``)."""
    return f"q{q:g}"


class NotFittedError(ValueError, AttributeError):
    """Raised when ``predict`` is called before ``fit``."""


class RecentPeakEstimator:
    """Predict each hour of the day by the peak of that hour over the last ``days`` days.

    Every quantile gets the same value (the estimate has no spread), so the planner provisions
    for recent peaks. Series shorter than a day repeat their overall peak.

    Parameters
    ----------
    days : int
        How many recent days to take the same-hour peak over.
    id_cols, time_col, value_col
        Column names of the long usage table.
    """

    def __init__(
        self,
        days: int = 7,
        id_cols: Sequence[str] = ("account", "resource"),
        time_col: str = "ts",
        value_col: str = "value",
    ) -> None:
        self.days = days
        self.id_cols = id_cols
        self.time_col = time_col
        self.value_col = value_col

    def fit(self, usage: pd.DataFrame) -> RecentPeakEstimator:
        """Learn the per-series same-hour peaks and the step between observations."""
        if not isinstance(self.days, int) or self.days < 1:
            raise ValueError(
                f"The 'days' parameter of RecentPeakEstimator must be an int >= 1. Got {self.days!r} instead."
            )
        ids = list(self.id_cols)
        df = usage[[*ids, self.time_col, self.value_col]].sort_values([*ids, self.time_col])
        last = df[self.time_col].max()
        step = df.groupby(ids)[self.time_col].diff().dropna()
        self.step_ = pd.Timedelta(step.median()) if len(step) else pd.Timedelta(hours=1)
        self.last_ts_ = pd.Timestamp(last)
        recent = df[df[self.time_col] > last - pd.Timedelta(days=self.days)]
        recent = recent.assign(_hour=recent[self.time_col].dt.hour)
        self.hour_peak_ = recent.groupby([*ids, "_hour"])[self.value_col].max()
        self.series_peak_ = recent.groupby(ids)[self.value_col].max()
        return self

    def predict(self, horizon: int, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
        """Forecast ``horizon`` steps after the last observation of the fitted table."""
        if not hasattr(self, "hour_peak_"):
            raise NotFittedError("This RecentPeakEstimator is not fitted yet; call fit first.")
        future = pd.date_range(self.last_ts_ + self.step_, periods=horizon, freq=self.step_)
        ids = list(self.id_cols)
        rows = []
        for key, peak in self.series_peak_.items():
            key_t = key if isinstance(key, tuple) else (key,)
            for ts in future:
                value = self.hour_peak_.get((*key_t, ts.hour), peak)
                rows.append((*key_t, ts, float(value)))
        out = pd.DataFrame(rows, columns=[*ids, self.time_col, "_v"])
        for q in quantiles:
            out[quantile_column(q)] = out["_v"].to_numpy(dtype=np.float64)
        return out.drop(columns="_v")
