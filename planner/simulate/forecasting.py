"""Forecasters for the replay: one forecast per cycle shared by the policies, and the oracle.

Forecasts depend only on the history (never on a policy's quotas), so every policy that sees the
same history (same accounts, same placement) gets the same forecast: it is computed once per cycle.
The oracle "forecasts" the actual future usage: plans built on it are the bound no policy beats.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from planner.estimate import DEFAULT_QUANTILES, quantile_column
from planner.simulate.trace import Trace


class SharedForecast:
    """Wrap a forecaster factory so equal histories are fitted once.

    The cache key is given per call (the cycle, placement and accounts); it holds one cycle.
    """

    def __init__(self, factory: Callable[[], Any]) -> None:
        self.factory = factory
        self._key: object = None
        self._pred: dict[tuple[int, tuple[float, ...]], pd.DataFrame] = {}
        self._fitted: Any = None
        self.seconds = 0.0

    def for_key(self, key: object) -> _Keyed:
        """A forecaster object (fit/predict) bound to ``key``."""
        if key != self._key:
            self._key, self._pred, self._fitted, self.seconds = key, {}, None, 0.0
        return _Keyed(self)


class _Keyed:
    def __init__(self, shared: SharedForecast) -> None:
        self.shared = shared

    def fit(self, history: pd.DataFrame) -> _Keyed:
        s = self.shared
        if s._fitted is None:
            t0 = time.perf_counter()
            s._fitted = s.factory().fit(history)
            s.seconds += time.perf_counter() - t0
        return self

    def predict(self, horizon: int, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
        s = self.shared
        key = (int(horizon), tuple(float(q) for q in quantiles))
        if key not in s._pred:
            t0 = time.perf_counter()
            s._pred[key] = s._fitted.predict(horizon, quantiles)
            s.seconds += time.perf_counter() - t0
        return s._pred[key].copy()


class OracleForecaster:
    """Predicts the actual future usage (every quantile equal to it): perfect foresight.

    Parameters
    ----------
    trace
        The replayed usage.
    placement
        Workload -> account now (the future is summed under it).
    accounts
        Accounts to forecast.
    """

    def __init__(self, trace: Trace, placement: Mapping[str, str], accounts: Sequence[str]) -> None:
        self.trace = trace
        self.placement = dict(placement)
        self.accounts = list(accounts)

    def fit(self, history: pd.DataFrame) -> OracleForecaster:
        """Remember where the history ends (the future starts one step later)."""
        self.last_ts_ = pd.Timestamp(history["ts"].max())
        return self

    def predict(self, horizon: int, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> pd.DataFrame:
        """The actual usage of the ``horizon`` steps after the history (last step repeated past
        the end of the trace)."""
        tr = self.trace
        lo = tr.index_of(self.last_ts_) + 1
        hi = min(tr.n_hours, lo + horizon)
        arr = tr.by_account(self.placement, self.accounts, lo, hi)
        if hi - lo < horizon:
            pad = arr[:, :, -1:] if arr.shape[2] else np.zeros((*arr.shape[:2], 1))
            arr = np.concatenate([arr, np.repeat(pad, horizon - (hi - lo), axis=2)], axis=2)
        times = pd.date_range(self.last_ts_ + tr.step, periods=horizon, freq=tr.step)
        n_a, n_r, n_t = arr.shape
        out = pd.DataFrame(
            {
                "account": np.repeat(np.asarray(self.accounts, dtype=object), n_r * n_t),
                "resource": np.tile(np.repeat(np.asarray(tr.resources, dtype=object), n_t), n_a),
                "ts": np.tile(times.to_numpy(), n_a * n_r),
            }
        )
        for q in quantiles:
            out[quantile_column(q)] = arr.reshape(-1)
        return out
