"""Shared machinery of the forecasters: the dense panel, parameter checks and the predict contract.

Every estimator of :mod:`planner.forecast` works on a :class:`Panel`: the long usage table
(``account, resource, ts, value``; column names are parameters) pivoted to one row per series on a
regular time grid. Internally an estimator only has to produce, for a set of forecast *origins*, an
array ``(n_series, horizon, n_quantiles)``; this module turns it into the public long table with
columns ``[*id_cols, time_col, q0.5, q0.9, q0.99]``, monotone in the quantile, non-negative and
without NaN.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from planner.estimate import DEFAULT_QUANTILES, NotFittedError, quantile_column

__all__ = [
    "DEFAULT_QUANTILES",
    "BaseForecaster",
    "NotFittedError",
    "Panel",
    "build_panel",
    "check_param",
    "quantile_column",
]

MAX_PANEL_CELLS = 100_000_000


def check_param(owner: str, name: str, value: Any, ok: bool, must: str) -> None:
    """Raise the project's parameter error unless ``ok``.

    The message follows scikit-learn's template:
    ``The 'x' parameter of F must be ... Got ... instead.``
    """
    if not ok:
        raise ValueError(
            f"The {name!r} parameter of {owner} must be {must}. Got {value!r} instead."
        )


def is_int(value: Any) -> bool:
    """True for an int that is not a bool (numpy integers included)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def is_real(value: Any) -> bool:
    """True for a finite real number that is not a bool."""
    return (
        isinstance(value, int | float | np.integer | np.floating)
        and not isinstance(value, bool)
        and bool(np.isfinite(value))
    )


@dataclass(frozen=True)
class Panel:
    """Usage as a dense array: one row per series, one column per period of a regular grid.

    ``values`` holds NaN before a series' first observation; gaps after it are carried forward
    from the last observation. ``first`` is the index of each series' first observation.
    """

    keys: pd.DataFrame
    values: np.ndarray
    start: pd.Timestamp
    step: pd.Timedelta
    first: np.ndarray

    @property
    def n_series(self) -> int:
        """Number of series."""
        return int(self.values.shape[0])

    @property
    def n_times(self) -> int:
        """Number of periods on the grid."""
        return int(self.values.shape[1])

    def times(self, start_index: int, count: int) -> pd.DatetimeIndex:
        """Timestamps of ``count`` periods from grid index ``start_index``."""
        return pd.date_range(self.start + start_index * self.step, periods=count, freq=self.step)

    def truncate(self, end: int) -> Panel:
        """The panel with only its first ``end`` periods (what was known at that origin)."""
        return Panel(self.keys, self.values[:, :end], self.start, self.step, self.first)

    def lengths(self, end: int | None = None) -> np.ndarray:
        """Observed history length per series up to grid index ``end``."""
        stop = self.n_times if end is None else end
        return np.clip(stop - self.first, 0, None)


def build_panel(
    usage: pd.DataFrame,
    id_cols: Sequence[str],
    time_col: str,
    value_col: str,
    *,
    owner: str = "forecaster",
    keys: pd.DataFrame | None = None,
    step: pd.Timedelta | None = None,
) -> Panel:
    """Pivot a long usage table to a :class:`Panel`.

    Parameters
    ----------
    usage : DataFrame
        Long table with the id columns, the time column and the value column.
    id_cols, time_col, value_col
        Column names.
    owner : str
        Name used in error messages.
    keys : DataFrame, optional
        Fix the series (and their order) to these keys, e.g. those seen in ``fit``; rows of other
        series raise ``ValueError``; a known series absent from ``usage`` is all NaN.
    step : Timedelta, optional
        Grid step; inferred as the median step between observations when omitted.

    Returns
    -------
    Panel
    """
    ids = list(id_cols)
    if not isinstance(usage, pd.DataFrame):
        raise TypeError(f"{owner}: usage must be a pandas DataFrame, got {type(usage).__name__}.")
    missing = [c for c in [*ids, time_col, value_col] if c not in usage.columns]
    if missing:
        raise ValueError(
            f"{owner}: usage has no column(s) {missing}; it has {list(usage.columns)}. "
            "Pass id_cols/time_col/value_col to name them."
        )
    df = usage[[*ids, time_col, value_col]].copy()
    if not pd.api.types.is_datetime64_any_dtype(df[time_col]):
        try:
            df[time_col] = pd.to_datetime(df[time_col])
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"{owner}: column {time_col!r} is not parseable as time: {exc}"
            ) from exc
    try:
        df[value_col] = pd.to_numeric(df[value_col]).astype(np.float64)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"{owner}: column {value_col!r} must be numeric: {exc}") from exc
    vals = df[value_col].to_numpy()
    if np.isinf(vals).any():
        raise ValueError(f"{owner}: column {value_col!r} holds infinite values; remove them.")
    df = df[~np.isnan(vals) & df[time_col].notna().to_numpy()]
    if df.empty:
        raise ValueError(f"{owner}: usage has no rows with a time and a finite value.")
    df = df.groupby([*ids, time_col], sort=True, observed=True)[value_col].mean().reset_index()
    if step is None:
        diffs = df.groupby(ids, observed=True)[time_col].diff().dropna()
        diffs = diffs[diffs > pd.Timedelta(0)]
        step = pd.Timedelta(diffs.median()) if len(diffs) else pd.Timedelta(hours=1)
    start = pd.Timestamp(df[time_col].min())
    pos = np.rint((df[time_col] - start).to_numpy() / step.to_timedelta64()).astype(np.int64)
    n_times = int(pos.max()) + 1
    found = df[ids].drop_duplicates().reset_index(drop=True)
    if keys is None:
        keys = found
    else:
        unknown = found.merge(keys, on=ids, how="left", indicator=True)
        unknown = unknown[unknown["_merge"] == "left_only"]
        if len(unknown):
            raise ValueError(
                f"{owner}: series {unknown[ids].head(5).to_dict('records')} were not seen in fit; "
                "refit with them."
            )
    if len(keys) * n_times > MAX_PANEL_CELLS:
        raise ValueError(
            f"{owner}: {len(keys)} series x {n_times} periods of {step} is too large a grid; "
            "aggregate the usage to a coarser step first."
        )
    index = pd.MultiIndex.from_frame(keys) if len(ids) > 1 else pd.Index(keys[ids[0]])
    df_index = pd.MultiIndex.from_frame(df[ids]) if len(ids) > 1 else pd.Index(df[ids[0]])
    row = index.get_indexer(df_index)
    values = np.full((len(keys), n_times), np.nan)
    values[row, pos] = df[value_col].to_numpy()
    observed = ~np.isnan(values)
    first = np.where(observed.any(axis=1), observed.argmax(axis=1), n_times)
    # Carry the last observation forward through gaps (vectorised forward fill).
    idx = np.where(observed, np.arange(n_times)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    values = np.where(
        np.arange(n_times)[None, :] >= first[:, None],
        values[np.arange(len(keys))[:, None], idx],
        np.nan,
    )
    return Panel(keys.reset_index(drop=True), values, start, pd.Timedelta(step), first)


def check_quantiles(owner: str, quantiles: Any) -> tuple[float, ...]:
    """Validate a sequence of quantile levels in (0, 1); return them sorted and unique."""
    ok = isinstance(quantiles, Sequence | np.ndarray) and not isinstance(quantiles, str)
    ok = ok and len(quantiles) > 0 and all(is_real(q) and 0.0 < float(q) < 1.0 for q in quantiles)
    check_param(owner, "quantiles", quantiles, ok, "a non-empty sequence of floats in (0, 1)")
    return tuple(sorted({float(q) for q in quantiles}))


def finalize(arr: np.ndarray, fallback: np.ndarray) -> np.ndarray:
    """Make forecasts usable: NaN replaced by ``fallback`` per series, non-negative, monotone in q.

    ``arr`` has shape ``(n_series, horizon, n_quantiles)`` with quantiles in increasing order.
    """
    out = np.where(np.isnan(arr), fallback[:, None, None], arr)
    out = np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
    np.maximum(out, 0.0, out=out)
    return np.maximum.accumulate(out, axis=2)


class BaseForecaster:
    """Common ``fit``/``predict`` of the forecasters; subclasses implement the numerical core.

    Subclasses set ``_uses_quantiles_at_fit`` when their quantile set is fixed in ``fit``, and
    implement ``_validate_params``, ``_fit_panel(panel)`` and
    ``_forecast(panel, horizon, quantiles) -> ndarray (n_series, horizon, n_quantiles)`` which
    forecasts from the end of ``panel`` with the fitted parameters.
    """

    id_cols: Sequence[str]
    time_col: str
    value_col: str
    # Set by fit: P50 errors out of sample, (n_series, n_origins, horizon), from these origins.
    oos_errors_: np.ndarray
    oos_origins_: np.ndarray

    def _validate_common(self) -> None:
        name = type(self).__name__
        ids = self.id_cols
        ok = (
            isinstance(ids, Sequence)
            and not isinstance(ids, str)
            and len(ids) > 0
            and all(isinstance(c, str) for c in ids)
        )
        check_param(name, "id_cols", ids, ok, "a non-empty sequence of column names")
        check_param(name, "time_col", self.time_col, isinstance(self.time_col, str), "a str")
        check_param(name, "value_col", self.value_col, isinstance(self.value_col, str), "a str")

    def _validate_params(self) -> None:
        raise NotImplementedError

    def _fit_panel(self, panel: Panel) -> None:
        raise NotImplementedError

    def _forecast(self, panel: Panel, horizon: int, quantiles: tuple[float, ...]) -> np.ndarray:
        raise NotImplementedError

    def get_params(self) -> dict[str, Any]:
        """Constructor parameters by name (as passed)."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def fit(self, usage: pd.DataFrame) -> BaseForecaster:
        """Learn from a long usage table; returns ``self``.

        Parameters
        ----------
        usage : DataFrame
            Columns ``id_cols``, ``time_col`` and ``value_col``; one row per series and period.
        """
        self._validate_common()
        self._validate_params()
        panel = build_panel(
            usage, self.id_cols, self.time_col, self.value_col, owner=type(self).__name__
        )
        self._fit_panel(panel)
        self.panel_ = panel
        self.n_series_ = panel.n_series
        self.step_ = panel.step
        return self

    def _check_fitted(self) -> None:
        if not hasattr(self, "panel_"):
            raise NotFittedError(
                f"This {type(self).__name__} instance is not fitted yet; call 'fit' first."
            )

    def history_panel(self, history: pd.DataFrame | None) -> Panel:
        """The fitted panel, or ``history`` on the fitted series and step (for rolling origins)."""
        self._check_fitted()
        if history is None:
            return self.panel_
        return build_panel(
            history,
            self.id_cols,
            self.time_col,
            self.value_col,
            owner=type(self).__name__,
            keys=self.panel_.keys,
            step=self.panel_.step,
        )

    def predict(
        self,
        horizon: int,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        *,
        history: pd.DataFrame | None = None,
    ) -> pd.DataFrame:
        """Forecast ``horizon`` periods after the end of the fitted table.

        Parameters
        ----------
        horizon : int
            Number of future periods (steps of the fitted table's time grid).
        quantiles : sequence of float
            Levels in (0, 1); one output column each, named by ``quantile_column``.
        history : DataFrame, optional
            Forecast from the end of this table instead (same series and columns) with the
            parameters learned in ``fit``; this is how rolling-origin backtests avoid refitting.

        Returns
        -------
        DataFrame
            ``[*id_cols, time_col, q...]``: one row per series and future period; values are
            non-negative, finite and non-decreasing in the quantile.
        """
        self._check_fitted()
        name = type(self).__name__
        check_param(name, "horizon", horizon, is_int(horizon) and horizon >= 1, "an int >= 1")
        qs = check_quantiles(name, quantiles)
        panel = self.history_panel(history)
        arr = self._forecast(panel, int(horizon), qs)
        arr = finalize(arr, last_values(panel))
        return to_frame(panel, arr, qs, self.id_cols, self.time_col)


def last_values(panel: Panel) -> np.ndarray:
    """Last known value per series (0 for a series without observations)."""
    if panel.n_times == 0:
        return np.zeros(panel.n_series)
    last = panel.values[:, -1]
    return np.where(np.isnan(last), 0.0, last)


def to_frame(
    panel: Panel,
    arr: np.ndarray,
    quantiles: tuple[float, ...],
    id_cols: Sequence[str],
    time_col: str,
) -> pd.DataFrame:
    """Long output table of an ``(n_series, horizon, n_quantiles)`` forecast array."""
    n, horizon, _ = arr.shape
    times = panel.times(panel.n_times, horizon)
    out = panel.keys.loc[np.repeat(np.arange(n), horizon)].reset_index(drop=True)
    out[time_col] = times[np.tile(np.arange(horizon), n)]
    for j, q in enumerate(quantiles):
        out[quantile_column(q)] = arr[:, :, j].reshape(-1)
    return out
