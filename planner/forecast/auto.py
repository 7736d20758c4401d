"""Automatic choice of forecaster per series, by out-of-sample error, with a fallback.

Each candidate is fitted once on all series. Every candidate of this package records the errors
its P50 made out of sample from rolling origins at the end of the training data (the same errors
that calibrate its bands: ``oos_errors_``, ``oos_origins_``). On the origins all candidates share,
each series takes the candidate with the lowest mean absolute error; a series with fewer than
``min_errors`` comparable errors (too short, or just started) takes ``fallback``.
Choosing on errors already computed costs no extra fitting.

**Level shifts.** A choice made on past errors is blind to a series that has just changed
regime: a batch job that starts after days of zeros is predicted at zero by the daily seasonal
naive (yesterday, same hour) for a whole day. At forecast time, a series whose mean over the
last ``shift_window`` periods differs from the same periods one day earlier by more than
``shift_factor`` times its usual day-to-day change, one of the two being at most a tenth of
the other (a start or a stop), is forecast by ``fallback`` (a smoothed last value) instead,
until the day-old values catch up.

**Recent errors.** A seasonal forecast repeats yesterday and ignores the last hours: a series
running above its forecast since this morning is forecast as if it were not. The chosen
forecasts are therefore corrected by their own recent error: each series' mean error over the
last ``correction_window`` periods (the forecast made ``correction_window`` periods ago against
what happened) is added to every quantile at lead ``h`` with weight ``correction_decay ** h``
(an AR(1) model of the errors), and the result clipped at zero. The decay is chosen at fit
time from :data:`DECAYS` (0: no correction) by the mean absolute error it leaves on the same
rolling-origin errors the choice of model uses: each origin's errors corrected by the errors,
over the ``correction_window`` periods before it, of the latest origin at least that far back.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from planner.forecast.base import BaseForecaster, Panel, check_param, is_int
from planner.forecast.baselines import EWM, SeasonalNaive
from planner.forecast.global_model import GlobalGradientBoosting

#: A level shift is "on or off": the lower of the two levels is at most this share of the other.
ONOFF_RATIO = 0.1
#: Decays of the recent-error correction tried at fit time (0: none).
DECAYS = (0.0, 0.5, 0.7, 0.8, 0.9, 0.95)


def default_candidates(random_state: int = 0) -> list[BaseForecaster]:
    """Daily and weekly seasonal naive, EWM and the global gradient-boosting model."""
    return [
        SeasonalNaive(season=24),
        SeasonalNaive(season=168, fallback_season=24),
        EWM(alpha=0.1),
        GlobalGradientBoosting(random_state=random_state),
    ]


def _clone(est: BaseForecaster, **overrides: Any) -> BaseForecaster:
    params = est.get_params()
    params.update({k: v for k, v in overrides.items() if k in params})
    return type(est)(**params)


class AutoForecaster(BaseForecaster):
    """Pick, per series, the candidate with the lowest out-of-sample MAE of its median.

    Parameters
    ----------
    candidates : sequence of BaseForecaster or None
        Unfitted forecasters of this package (cloned; their column names are replaced by ours);
        None: :func:`default_candidates`.
    fallback : BaseForecaster or None
        Used for series with too little history to compare; None: ``EWM(alpha=0.3)`` (a smoothed
        last value, safe on short, constant and all-zero series).
    min_errors : int
        Comparable out-of-sample errors a series needs for the choice.
    random_state : int
        Seed given to candidates that take one.
    shift_window : int
        Periods whose mean is compared with the same periods one day earlier (0: no check).
    shift_factor : float
        A level shift is a difference above this many times the series' mean absolute daily
        difference (before the window).
    correction_window : int
        Periods of recent error that correct the forecast (0: no correction).
    correction_decay : float or None
        Weight of the recent error at lead 1, raised to the lead's power after (0: none);
        None: chosen from :data:`DECAYS` on the rolling-origin errors.
    id_cols, time_col, value_col
        Column names of the long usage table.

    Attributes
    ----------
    choice_ : DataFrame
        Per series: the id columns, ``model`` (chosen name) and the MAE of each candidate.
    shifted_ : ndarray of bool
        Per series: a level shift was found at the last forecast (``fallback`` answered).
    recent_error_ : ndarray
        Per series: the recent error added (decaying) to the last forecast.
    correction_decay_ : float
        The decay used (``correction_decay``, or the one chosen at fit time).
    decay_mae_ : dict
        Per decay tried: the mean absolute error it left (empty when the decay was given).
    """

    def __init__(
        self,
        candidates: Sequence[BaseForecaster] | None = None,
        fallback: BaseForecaster | None = None,
        min_errors: int = 48,
        random_state: int = 0,
        shift_window: int = 6,
        shift_factor: float = 8.0,
        correction_window: int = 3,
        correction_decay: float | None = None,
        id_cols: Sequence[str] = ("account", "resource"),
        time_col: str = "ts",
        value_col: str = "value",
    ) -> None:
        self.candidates = candidates
        self.fallback = fallback
        self.min_errors = min_errors
        self.random_state = random_state
        self.shift_window = shift_window
        self.shift_factor = shift_factor
        self.correction_window = correction_window
        self.correction_decay = correction_decay
        self.id_cols = id_cols
        self.time_col = time_col
        self.value_col = value_col

    def _validate_params(self) -> None:
        name = type(self).__name__
        c = self.candidates
        ok = c is None or (
            isinstance(c, Sequence) and len(c) > 0 and all(isinstance(e, BaseForecaster) for e in c)
        )
        check_param(name, "candidates", c, ok, "None or a non-empty sequence of forecasters")
        f = self.fallback
        ok = f is None or isinstance(f, BaseForecaster)
        check_param(name, "fallback", f, ok, "None or a forecaster")
        m = self.min_errors
        check_param(name, "min_errors", m, is_int(m) and m >= 1, "an int >= 1")
        rs = self.random_state
        check_param(name, "random_state", rs, is_int(rs) and rs >= 0, "an int >= 0")
        sw = self.shift_window
        check_param(name, "shift_window", sw, is_int(sw) and sw >= 0, "an int >= 0")
        sf = self.shift_factor
        ok = isinstance(sf, int | float) and not isinstance(sf, bool) and sf > 0
        check_param(name, "shift_factor", sf, ok, "a number > 0")
        cw = self.correction_window
        check_param(name, "correction_window", cw, is_int(cw) and cw >= 0, "an int >= 0")
        cd = self.correction_decay
        ok = cd is None or (
            isinstance(cd, int | float) and not isinstance(cd, bool) and 0 <= cd < 1
        )
        check_param(name, "correction_decay", cd, ok, "None or a number in [0, 1)")

    def _fit_panel(self, panel: Panel) -> None:
        cols = {"id_cols": self.id_cols, "time_col": self.time_col, "value_col": self.value_col}
        base = (
            self.candidates
            if self.candidates is not None
            else default_candidates(int(self.random_state))
        )
        fallback = self.fallback if self.fallback is not None else EWM(alpha=0.3)
        self.candidates_ = [_clone(c, random_state=self.random_state, **cols) for c in base]
        self.fallback_ = _clone(fallback, **cols)
        for est in [*self.candidates_, self.fallback_]:
            est._validate_common()
            est._validate_params()
            est._fit_panel(panel)
        self.names_ = [self._name(c, i) for i, c in enumerate(self.candidates_)]
        mae = self._compare(panel)
        counts = mae.pop("_count")
        scores = np.column_stack([mae[n] for n in self.names_])
        best = np.argmin(np.where(np.isnan(scores), np.inf, scores), axis=1)
        usable = (counts >= int(self.min_errors)) & np.isfinite(scores).any(axis=1)
        self.chosen_ = np.where(usable, best, -1)
        choice = panel.keys.copy()
        choice["model"] = [self.names_[b] if b >= 0 else "fallback" for b in self.chosen_]
        for n in self.names_:
            choice[f"mae_{n}"] = mae[n]
        self.choice_ = choice
        self.correction_decay_, self.decay_mae_ = self._decay(panel)

    def _decay(self, panel: Panel) -> tuple[float, dict[float, float]]:
        """The given decay, or the one of :data:`DECAYS` leaving the smallest mean absolute
        error on the chosen models' (and the fallback's) rolling-origin errors of their
        medians once each origin's errors are corrected by the recent error: over the
        ``correction_window`` periods before the origin, the errors of the latest origin at
        least that far back (the origin exactly ``correction_window`` before when the models'
        origins allow; ties: the smaller decay)."""
        w = int(self.correction_window)
        if self.correction_decay is not None or w == 0:
            return (0.0 if w == 0 else float(self.correction_decay or 0.0)), {}
        total = dict.fromkeys(DECAYS, 0.0)
        count = 0
        for i, est in [*enumerate(self.candidates_), (-1, self.fallback_)]:
            rows = self.chosen_ == i
            errors = getattr(est, "oos_errors_", np.zeros((len(rows), 0, 0)))[rows]
            origins = np.asarray(getattr(est, "oos_origins_", ()), dtype=np.int64)
            if not rows.any() or origins.size == 0 or errors.shape[2] < w:
                continue
            # errors of the median the forecaster predicts (a baseline's errors are of its
            # point forecast, which its bands shift by a per-series median offset)
            median_offset = getattr(est, "median_offset", None)
            if median_offset is not None:
                errors = errors - median_offset(panel)[rows, None, None]
            # for each origin o: the latest origin b <= o - w, read at the leads that cover
            # periods o - w .. o - 1
            back = np.searchsorted(origins, origins - w, side="right") - 1
            skip = origins - w - origins[np.clip(back, 0, None)]
            ok = (back >= 0) & (skip + w <= errors.shape[2])
            if not ok.any():
                continue
            now = np.flatnonzero(ok)
            leads = skip[now][:, None] + np.arange(w)[None, :]
            recent_paths = errors[:, back[now][:, None], leads]  # series x pairs x w
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN: no error known
                recent = np.nan_to_num(np.nanmean(recent_paths, axis=2), nan=0.0)
            later = errors[:, now, :]
            known = ~np.isnan(later)
            count += int(known.sum())
            lead = np.arange(1, later.shape[2] + 1)
            for d in DECAYS:
                left = np.abs(later - recent[:, :, None] * d ** lead[None, None, :])
                total[d] += float(np.where(known, left, 0.0).sum())
        if count == 0:
            return 0.0, {}
        mae = {d: t / count for d, t in total.items()}
        return min(DECAYS, key=lambda d: (mae[d], d)), mae

    @staticmethod
    def _name(est: BaseForecaster, i: int) -> str:
        if isinstance(est, SeasonalNaive):
            return f"snaive{est.season}"
        if isinstance(est, EWM):
            return "ewm"
        if isinstance(est, GlobalGradientBoosting):
            return "global_gbm"
        return f"{type(est).__name__.lower()}{i}"

    def _compare(self, panel: Panel) -> dict[str, np.ndarray]:
        """Mean absolute out-of-sample error per series and candidate, on shared origins."""
        shared: set[int] | None = None
        horizon = min(c.oos_errors_.shape[2] for c in self.candidates_)
        for c in self.candidates_:
            o = {int(x) for x in c.oos_origins_}
            shared = o if shared is None else shared & o
        common = np.array(sorted(shared or set()), dtype=np.int64)
        out: dict[str, np.ndarray] = {}
        stack = []
        for c in self.candidates_:
            pos = np.searchsorted(c.oos_origins_, common)
            stack.append(np.abs(c.oos_errors_[:, pos, :horizon]))
        errs = np.stack(stack) if stack else np.zeros((0, panel.n_series, 0, 0))
        valid = ~np.isnan(errs).any(axis=0)
        out["_count"] = valid.reshape(panel.n_series, -1).sum(axis=1)
        for name, e in zip(self.names_, errs, strict=True):
            total = np.where(valid, e, 0.0).reshape(panel.n_series, -1).sum(axis=1)
            with np.errstate(all="ignore"):
                out[name] = np.where(out["_count"] > 0, total / out["_count"], np.nan)
        return out

    def level_shifts(self, panel: Panel) -> np.ndarray:
        """Series whose last ``shift_window`` periods left the level of the day before.

        ``|mean(last w) - mean(same w one day earlier)| > shift_factor x s``, ``s`` the mean
        absolute daily difference before the window (the scale of MASE), and one of the two
        means at most :data:`ONOFF_RATIO` of the other (a start or a stop, not a swing); needs
        a day and ``w`` periods of observations.
        """
        w = int(self.shift_window)
        n = panel.n_series
        season = max(1, round(pd.Timedelta(days=1) / panel.step))
        if w == 0 or panel.n_times < season + w:
            return np.zeros(n, dtype=bool)
        v = panel.values
        # the noise scale: the daily seasonal difference before the window (the recent
        # periods, and the chosen model's latest errors, would include the shift itself)
        past = v[:, : v.shape[1] - w]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: no shift
            recent = np.nanmean(v[:, -w:], axis=1)
            before = np.nanmean(v[:, -season - w : -season], axis=1)
            scale = np.nanmean(np.abs(past[:, season:] - past[:, :-season]), axis=1)
        scale = np.nan_to_num(scale, nan=0.0)
        long_enough = panel.lengths() >= season + w
        jump = np.abs(recent - before)
        big = np.isfinite(jump) & (jump > float(self.shift_factor) * scale + 1e-9)
        # on or off: one of the two levels is at most a tenth of the other
        onoff = np.minimum(recent, before) <= ONOFF_RATIO * np.maximum(recent, before)
        return long_enough & big & onoff

    def _chosen(
        self, panel: Panel, horizon: int, quantiles: tuple[float, ...]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Each series' chosen forecast, and which series had a level shift."""
        out = self.fallback_._forecast(panel, horizon, quantiles)
        shifted = self.level_shifts(panel) & (self.chosen_ >= 0)
        for i, est in enumerate(self.candidates_):
            rows = (self.chosen_ == i) & ~shifted
            if rows.any():
                out[rows] = est._forecast(panel, horizon, quantiles)[rows]
        return out, shifted

    def recent_error(self, panel: Panel) -> np.ndarray:
        """Per series: the mean error (actual - median) over the last ``correction_window``
        periods of the forecast made ``correction_window`` periods ago; 0 where unknown."""
        w = int(self.correction_window)
        if w == 0 or self.correction_decay_ == 0.0 or panel.n_times <= w:
            return np.zeros(panel.n_series)
        with warnings.catch_warnings():
            # series that had not started ``w`` periods ago: no error known
            warnings.simplefilter("ignore", RuntimeWarning)
            past, _ = self._chosen(panel.truncate(panel.n_times - w), w, (0.5,))
            err = np.nanmean(panel.values[:, -w:] - past[:, :, 0], axis=1)
        return np.nan_to_num(err, nan=0.0, posinf=0.0, neginf=0.0)

    def _forecast(self, panel: Panel, horizon: int, quantiles: tuple[float, ...]) -> np.ndarray:
        out, self.shifted_ = self._chosen(panel, horizon, quantiles)
        # a level-shifted series is already forecast from its last values
        self.recent_error_ = np.where(self.shifted_, 0.0, self.recent_error(panel))
        if self.recent_error_.any():
            weight = self.correction_decay_ ** np.arange(1, horizon + 1)
            out = out + self.recent_error_[:, None, None] * weight[None, :, None]
            out = np.clip(out, 0.0, None)
        return out

    def model_counts(self) -> pd.Series:
        """How many series each candidate (or the fallback) was chosen for."""
        self._check_fitted()
        return self.choice_["model"].value_counts()
