"""A global gradient-boosting model: one quantile regressor per level, trained across all series.

Design
------
*Direct multi-step*: one row per (series, origin, h) with ``h`` as a feature, so a single model per
quantile covers every step of the horizon. Recursive forecasting would feed P50 forecasts back as
lags: its errors compound and the quantiles of a recursion are not quantiles of the path. Direct
training also lets the bands grow with ``h`` as the data says.

*Scaled per series*: every value feature and the target are divided by the series' recent mean at
the origin, so accounts of any size share one model.

*Conformalised quantiles* (CQR): the last ``calibration_window`` steps are held out; the quantile
models trained before them forecast from rolling origins inside it, and each level ``q`` is shifted
by the ``q``-quantile of the scaled errors there, so that P90 covers about 90 % out of sample
(gradient-boosted quantiles are usually too narrow: they fit their own training data). With
``refit`` the models are then trained again on all data and keep the shifts.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.stats import norm
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from planner.forecast.base import (
    DEFAULT_QUANTILES,
    BaseForecaster,
    Panel,
    check_param,
    check_quantiles,
    is_int,
    is_real,
)
from planner.forecast.baselines import calibration_origins, gather_actuals
from planner.forecast.features import FeatureMaker, from_model_space, to_model_space


class GlobalGradientBoosting(BaseForecaster):
    """Quantile gradient boosting across all series on lag, window and calendar features.

    Parameters
    ----------
    quantiles : sequence of float
        Levels trained in ``fit`` (one ``HistGradientBoostingRegressor(loss="quantile")`` each);
        other levels asked of ``predict`` are interpolated between them on the normal scale.
    horizon : int
        Largest step ahead trained; longer forecasts reuse the model of the last step.
    seasons : sequence of int
        Season lengths in steps (24, 168 = daily, weekly for hourly data); the first is "the day".
    lags : int
        Number of most recent values used as features.
    scale_window : int
        Steps over which the per-series scale (mean) is taken at each origin.
    calibration_window : int
        Steps held out at the end for the conformal shift (at most a third of the history).
    origin_stride : int
        Distance in steps between training origins.
    max_samples : int
        Training rows drawn at random (with ``random_state``) from all (series, origin, h).
    max_iter, learning_rate, max_leaf_nodes, min_samples_leaf, l2_regularization
        Passed to ``HistGradientBoostingRegressor``.
    refit : bool
        Retrain on all data after calibration (else keep the models trained before the hold-out).
    random_state : int
        Seed of the row sampling and the regressors: same seed, same forecast.
    n_threads : int or None
        OpenMP threads of the regressors (None: all cores). One by default: on shared cores
        OpenMP's spinning threads made training 3-6 times slower (measured 133 s vs 21 s).
    id_cols, time_col, value_col
        Column names of the long usage table.
    """

    def __init__(
        self,
        quantiles: Sequence[float] = DEFAULT_QUANTILES,
        horizon: int = 24,
        seasons: Sequence[int] = (24, 168),
        lags: int = 6,
        scale_window: int = 168,
        calibration_window: int = 168,
        origin_stride: int = 1,
        max_samples: int = 40_000,
        max_iter: int = 100,
        learning_rate: float = 0.1,
        max_leaf_nodes: int = 31,
        min_samples_leaf: int = 50,
        l2_regularization: float = 0.0,
        refit: bool = False,
        random_state: int = 0,
        n_threads: int | None = 1,
        id_cols: Sequence[str] = ("account", "resource"),
        time_col: str = "ts",
        value_col: str = "value",
    ) -> None:
        self.quantiles = quantiles
        self.horizon = horizon
        self.seasons = seasons
        self.lags = lags
        self.scale_window = scale_window
        self.calibration_window = calibration_window
        self.origin_stride = origin_stride
        self.max_samples = max_samples
        self.max_iter = max_iter
        self.learning_rate = learning_rate
        self.max_leaf_nodes = max_leaf_nodes
        self.min_samples_leaf = min_samples_leaf
        self.l2_regularization = l2_regularization
        self.refit = refit
        self.random_state = random_state
        self.n_threads = n_threads
        self.id_cols = id_cols
        self.time_col = time_col
        self.value_col = value_col

    def _validate_params(self) -> None:
        name = type(self).__name__
        check_quantiles(name, self.quantiles)
        for p, low in (
            ("horizon", 1),
            ("lags", 1),
            ("scale_window", 1),
            ("calibration_window", 1),
            ("origin_stride", 1),
            ("max_samples", 100),
            ("max_iter", 1),
            ("max_leaf_nodes", 2),
            ("min_samples_leaf", 1),
        ):
            value = getattr(self, p)
            check_param(name, p, value, is_int(value) and value >= low, f"an int >= {low}")
        s = self.seasons
        ok = isinstance(s, Sequence) and all(is_int(m) and m >= 2 for m in s)
        check_param(name, "seasons", s, ok, "a sequence of ints >= 2")
        lr, l2 = self.learning_rate, self.l2_regularization
        check_param(name, "learning_rate", lr, is_real(lr) and lr > 0, "a float > 0")
        check_param(name, "l2_regularization", l2, is_real(l2) and l2 >= 0, "a float >= 0")
        check_param(name, "refit", self.refit, isinstance(self.refit, bool), "a bool")
        rs = self.random_state
        check_param(name, "random_state", rs, is_int(rs) and rs >= 0, "an int >= 0")
        nt = self.n_threads
        ok = nt is None or (is_int(nt) and nt >= 1)
        check_param(name, "n_threads", nt, ok, "None or an int >= 1")

    # -- training ---------------------------------------------------------------------------
    def _maker(self, panel: Panel) -> FeatureMaker:
        return FeatureMaker(
            panel, int(self.lags), [int(m) for m in self.seasons], int(self.scale_window)
        )

    def _training_rows(
        self, maker: FeatureMaker, end: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Features and scaled targets whose targets lie before grid index ``end``."""
        panel = maker.panel
        h_max = int(self.horizon)
        origins = np.arange(end - 1, 0, -int(self.origin_stride))[::-1]
        if origins.size == 0:
            return np.zeros((0, len(maker.names()))), np.zeros(0)
        grid = np.meshgrid(
            np.arange(panel.n_series), origins, np.arange(1, h_max + 1), indexing="ij"
        )
        ser, org, stp = (g.ravel() for g in grid)
        target = org - 1 + stp
        keep = (target < end) & (org > panel.first[ser])
        keep &= ~np.isnan(panel.values[ser, np.clip(target, 0, panel.n_times - 1)])
        ser, org, stp, target = ser[keep], org[keep], stp[keep], target[keep]
        if ser.size > self.max_samples:
            pick = np.sort(rng.choice(ser.size, size=int(self.max_samples), replace=False))
            ser, org, stp, target = ser[pick], org[pick], stp[pick], target[pick]
        x, s = maker.rows(ser, org, stp)
        return x, to_model_space(panel.values[ser, target], s)

    def _train(self, x: np.ndarray, y: np.ndarray) -> list[HistGradientBoostingRegressor | float]:
        models: list[HistGradientBoostingRegressor | float] = []
        # A feature without any value (e.g. the weekly lag of a 5-day history) cannot be binned;
        # a constant stands in for it, so the trees never split on it.
        x = np.where(np.isnan(x).all(axis=0)[None, :], 0.0, x)
        for q in self.quantiles_:
            if len(y) < 2 * int(self.min_samples_leaf):
                models.append(float(np.quantile(y, q)) if len(y) else 1.0)
                continue
            model = HistGradientBoostingRegressor(
                loss="quantile",
                quantile=q,
                max_iter=int(self.max_iter),
                learning_rate=float(self.learning_rate),
                max_leaf_nodes=int(self.max_leaf_nodes),
                min_samples_leaf=int(self.min_samples_leaf),
                l2_regularization=float(self.l2_regularization),
                early_stopping=False,
                random_state=int(self.random_state),
            )
            models.append(model.fit(x, y))
        return models

    @staticmethod
    def _apply(
        models: Sequence[HistGradientBoostingRegressor | float], x: np.ndarray
    ) -> np.ndarray:
        cols = [np.full(len(x), m) if isinstance(m, float) else m.predict(x) for m in models]
        return np.column_stack(cols) if cols else np.zeros((len(x), 0))

    def _paths(
        self,
        models: Sequence[HistGradientBoostingRegressor | float],
        maker: FeatureMaker,
        origins: np.ndarray,
        horizon: int,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Quantile paths in model space ``(n_series, n_origins, horizon, n_fitted_q)`` (unshifted)
        and the scale of each ``(series, origin, h)``."""
        n = maker.panel.n_series
        ser, org, stp = np.meshgrid(np.arange(n), origins, np.arange(1, horizon + 1), indexing="ij")
        x, s = maker.rows(ser.ravel(), org.ravel(), np.minimum(stp.ravel(), int(self.horizon)))
        z = self._apply(models, x)
        return z.reshape(n, len(origins), horizon, -1), s.reshape(n, len(origins), horizon)

    def _fit_panel(self, panel: Panel) -> None:
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            self._fit_core(panel)

    def _fit_core(self, panel: Panel) -> None:
        self.quantiles_ = check_quantiles(type(self).__name__, self.quantiles)
        rng = np.random.default_rng(int(self.random_state))
        maker = self._maker(panel)
        t = panel.n_times
        h_cal = int(self.horizon)
        window = min(int(self.calibration_window), t // 3)
        origins = calibration_origins(t, h_cal, window, stride=max(1, h_cal // 2))
        if window < h_cal:
            origins = np.zeros(0, np.int64)
        self.shift_ = np.zeros(len(self.quantiles_))
        self.oos_origins_ = origins
        if origins.size:
            x, y = self._training_rows(maker, int(origins[0]), rng)
            models = self._train(x, y)
            zpaths, scale = self._paths(models, maker, origins, h_cal)
            actual = gather_actuals(panel.values, origins, h_cal)
            ok = ~np.isnan(actual)
            zactual = to_model_space(np.nan_to_num(actual), scale)
            for j, q in enumerate(self.quantiles_):
                score = (zactual - zpaths[..., j])[ok]
                self.shift_[j] = float(np.quantile(score, q)) if score.size else 0.0
            j50 = int(np.argmin(np.abs(np.asarray(self.quantiles_) - 0.5)))
            median = from_model_space(zpaths[..., j50] + self.shift_[j50], scale)
            self.oos_errors_ = actual - median
        else:
            self.oos_errors_ = np.full((panel.n_series, 0, h_cal), np.nan)
        if self.refit or not origins.size:
            x, y = self._training_rows(maker, t, rng)
            models = self._train(x, y)
        self.models_ = models
        self.n_features_ = len(maker.names())

    # -- forecasting ------------------------------------------------------------------------
    def _forecast(self, panel: Panel, horizon: int, quantiles: tuple[float, ...]) -> np.ndarray:
        maker = self._maker(panel)
        with threadpool_limits(limits=self.n_threads, user_api="openmp"):
            zpaths, scale = self._paths(self.models_, maker, np.array([panel.n_times]), horizon)
        z = np.maximum.accumulate(zpaths[:, 0] + self.shift_[None, None, :], axis=2)
        fitted = from_model_space(z, scale[:, 0, :, None])
        return interpolate_levels(fitted, self.quantiles_, quantiles)


def interpolate_levels(
    values: np.ndarray, fitted: Sequence[float], wanted: Sequence[float]
) -> np.ndarray:
    """Values at ``wanted`` levels from values at ``fitted`` levels (last axis), on the normal scale.

    Levels between two fitted ones are interpolated linearly in ``z = Phi^-1(q)``; levels outside
    are extrapolated from the two nearest (or taken as the only one).
    """
    fz = norm.ppf(np.asarray(fitted, dtype=np.float64))
    out = np.empty((*values.shape[:-1], len(wanted)))
    for j, q in enumerate(wanted):
        hit = np.flatnonzero(np.isclose(fitted, q))
        if hit.size:
            out[..., j] = values[..., hit[0]]
            continue
        if len(fitted) == 1:
            out[..., j] = values[..., 0]
            continue
        z = float(norm.ppf(q))
        k = int(np.clip(np.searchsorted(fz, z), 1, len(fz) - 1))
        w = (z - fz[k - 1]) / (fz[k] - fz[k - 1])
        out[..., j] = values[..., k - 1] + w * (values[..., k] - values[..., k - 1])
    return out
