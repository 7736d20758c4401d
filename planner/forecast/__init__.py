"""Demand forecasts with uncertainty: baselines, a global gradient-boosting model, automatic choice.

Every estimator here follows the contract of :mod:`planner.estimate`: ``fit(usage)`` on a long table
(``account, resource, ts, value``; column names are parameters) returns ``self``;
``predict(horizon, quantiles=(0.5, 0.9, 0.99))`` returns ``[account, resource, ts, q0.5, q0.9,
q0.99]``, non-negative, monotone in the quantile and without NaN. ``predict(..., history=df)``
forecasts from the end of ``df`` with the fitted parameters (rolling origins without refitting).
"""

from __future__ import annotations

from planner.estimate import DEFAULT_QUANTILES, NotFittedError, quantile_column
from planner.forecast.auto import AutoForecaster, default_candidates
from planner.forecast.backtest import (
    BacktestResult,
    coverage,
    mase,
    pinball,
    rolling_origin,
    score_forecasts,
    smape,
)
from planner.forecast.base import BaseForecaster
from planner.forecast.baselines import EWM, SeasonalNaive
from planner.forecast.events import apply_events, growth_factor
from planner.forecast.global_model import GlobalGradientBoosting

__all__ = [
    "DEFAULT_QUANTILES",
    "EWM",
    "AutoForecaster",
    "BacktestResult",
    "BaseForecaster",
    "GlobalGradientBoosting",
    "NotFittedError",
    "SeasonalNaive",
    "apply_events",
    "coverage",
    "default_candidates",
    "default_forecaster",
    "growth_factor",
    "mase",
    "pinball",
    "quantile_column",
    "rolling_origin",
    "score_forecasts",
    "smape",
]


def default_forecaster(random_state: int = 0) -> AutoForecaster:
    """The forecaster the planner uses: :class:`AutoForecaster` over the default candidates.

    Parameters
    ----------
    random_state : int
        Seed of the global model; the same seed gives the same forecast.
    """
    return AutoForecaster(random_state=random_state)
