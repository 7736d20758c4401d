"""Backtest metrics on hand-computed cases and the rolling-origin loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from planner.forecast import EWM, SeasonalNaive, coverage, mase, pinball, rolling_origin, smape


def test_metrics_by_hand() -> None:
    y = np.array([1.0, 2.0, 3.0, 4.0])
    f = np.array([2.0, 2.0, 2.0, 2.0])
    # naive (season 1) in-sample MAE of [1, 3, 2, 4] = (2 + 1 + 2) / 3 = 5/3; forecast MAE = 1.
    assert mase(y, f, np.array([1.0, 3.0, 2.0, 4.0]), season=1) == pytest.approx(0.6)
    # |y - f| / (|y| + |f|): 1/3, 0, 1/5, 2/6 -> mean 13/60 -> 200 * = 43.33 %
    assert smape(y, f) == pytest.approx(200 * (1 / 3 + 0 + 1 / 5 + 1 / 3) / 4)
    # q = 0.9: under-forecast by 1 (y=3) and 2 (y=4) costs 0.9 and 1.8; over by 1 (y=1) costs 0.1.
    assert pinball(y, f, 0.9) == pytest.approx((0.1 + 0 + 0.9 + 1.8) / 4)
    assert coverage(y, f) == pytest.approx(0.5)
    assert smape(np.zeros(2), np.zeros(2)) == 0.0
    assert np.isnan(mase(y, f, np.full(5, 3.0), season=1))


def periodic(days: int = 10) -> pd.DataFrame:
    ts = pd.date_range("2024-01-01", periods=days * 24, freq="h")
    hour = np.arange(len(ts)) % 24
    value = 5.0 + 2.0 * (hour >= 12) + (np.arange(len(ts)) < 24)  # the first day is 1 higher
    return pd.DataFrame({"account": "a", "resource": "cpu", "ts": ts, "value": value})


def test_rolling_origin_perfect_seasonal_forecast() -> None:
    usage = periodic()
    res = rolling_origin(SeasonalNaive(24), usage, horizon=24, n_windows=3)
    assert len(res.origins) == 3
    assert res.origins[-1] == usage.ts.max() - pd.Timedelta(hours=23)
    assert len(res.forecasts) == 3 * 24
    assert res.forecasts["actual"].notna().all()
    assert res.overall["mase"] == pytest.approx(0.0, abs=1e-9)
    assert res.overall["coverage_q0.9"] == 1.0
    row = res.per_series.iloc[0]
    assert row["n"] == 72
    assert row["smape"] == pytest.approx(0.0, abs=1e-9)


def test_rolling_origin_flat_forecast_by_hand() -> None:
    """EWM(alpha=1) forecasts the last value; with a ramp y = t the errors are 1..H."""
    ts = pd.date_range("2024-01-01", periods=60, freq="h")
    usage = pd.DataFrame({"account": "a", "resource": "cpu", "ts": ts, "value": np.arange(60.0)})
    res = rolling_origin(
        EWM(alpha=1.0, calibration_window=10, calibration_horizon=4),
        usage,
        horizon=4,
        step=2,
        start=ts[50],
    )
    assert [o.hour for o in res.origins] == [2, 4, 6, 8]  # 50, 52, 54, 56 h after the start
    # Calibration errors on a unit ramp are exactly 1..4, so the median offset is 2.5.
    first = res.forecasts[res.forecasts.origin == res.origins[0]]
    np.testing.assert_allclose(first["q0.5"], 49 + 2.5)
    # MASE: forecast MAE |y - 51.5| over y = 50..53 -> 1; in-sample daily-naive MAE = 24.
    assert res.per_series.iloc[0]["mase"] == pytest.approx(1.0 / 24)


def test_rolling_origin_validation() -> None:
    with pytest.raises(ValueError, match="not enough data"):
        rolling_origin(EWM(), periodic(days=1), horizon=24, n_windows=3)
    with pytest.raises(ValueError, match="'step' parameter of rolling_origin"):
        rolling_origin(EWM(), periodic(), horizon=24, step=0)
