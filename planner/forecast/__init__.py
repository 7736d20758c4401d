"""Demand forecasts with uncertainty: baselines, a global gradient-boosting model, automatic choice.

Every estimator here follows the contract of :mod:`planner.estimate`: ``fit(usage)`` on a long table
(``account, resource, ts, value``; column names are parameters) returns ``self``;
``predict(horizon, quantiles=(0.5, 0.9, 0.99))`` returns ``[account, resource, ts, q0.5, q0.9,
q0.99]``, non-negative, monotone in the quantile and without NaN.
"""

from __future__ import annotations

from planner.estimate import DEFAULT_QUANTILES, NotFittedError, quantile_column
from planner.forecast.base import BaseForecaster
from planner.forecast.baselines import EWM, SeasonalNaive
from planner.forecast.events import apply_events, growth_factor

__all__ = [
    "DEFAULT_QUANTILES",
    "EWM",
    "BaseForecaster",
    "NotFittedError",
    "SeasonalNaive",
    "apply_events",
    "default_forecaster",
    "growth_factor",
    "quantile_column",
]


def default_forecaster() -> BaseForecaster:
    """The forecaster the planner uses (columns ``account, resource, ts, value``)."""
    return SeasonalNaive(season=168, fallback_season=24)
