"""Known events applied to a forecast, checked against hand-computed values."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest

from models import Events, GrowthEvent, ScheduledJob
from planner.forecast import apply_events, growth_factor

T0 = datetime(2024, 1, 1)


def flat_forecast() -> pd.DataFrame:
    ts = pd.date_range(T0, periods=6, freq="h")
    parts = [
        pd.DataFrame(
            {"account": a, "resource": r, "ts": ts, "q0.5": 10.0, "q0.9": 12.0, "q0.99": 15.0}
        )
        for a, r in (("a", "cpu"), ("a", "memory"), ("b", "cpu"))
    ]
    return pd.concat(parts, ignore_index=True)


def series(df: pd.DataFrame, account: str, resource: str, col: str = "q0.5") -> list[float]:
    return df[(df.account == account) & (df.resource == resource)][col].round(9).tolist()


def test_growth_ramp_step_and_job() -> None:
    events = Events(
        growth=[
            GrowthEvent(account="a", start=datetime(2024, 1, 1, 2), multiplier=2.0, ramp_hours=2),
            GrowthEvent(account="b", resource="cpu", start=datetime(2024, 1, 1, 1), multiplier=0.5),
        ],
        jobs=[
            ScheduledJob(
                account="a",
                resource="cpu",
                start=datetime(2024, 1, 1, 3, 30),
                end=datetime(2024, 1, 1, 5),
                amount=4.0,
            )
        ],
    )
    out = apply_events(flat_forecast(), events)
    # ramp 1 -> 2 over 02:00-04:00; job adds 4 to the periods 03:00 and 04:00 (overlapping it).
    assert series(out, "a", "cpu") == [10, 10, 10, 19, 24, 20]
    assert series(out, "a", "cpu", "q0.99") == [15, 15, 15, 26.5, 34, 30]
    assert series(out, "a", "memory") == [10, 10, 10, 15, 20, 20]
    assert series(out, "b", "cpu") == [10, 5, 5, 5, 5, 5]


def test_no_events_returns_unchanged_copy() -> None:
    fc = flat_forecast()
    for events in (None, Events(), []):
        out = apply_events(fc, events)
        pd.testing.assert_frame_equal(out, fc)
        assert out is not fc


def test_timezone_aware_event_on_naive_forecast() -> None:
    aware = GrowthEvent(
        account="a", resource="cpu", start=datetime(2024, 1, 1, 2, tzinfo=UTC), multiplier=3.0
    )
    out = apply_events(flat_forecast(), [aware])
    assert series(out, "a", "cpu") == [10, 10, 30, 30, 30, 30]


def test_growth_factor_formula() -> None:
    ev = GrowthEvent(account="a", start=T0, multiplier=1.5, ramp_hours=4)
    times = pd.Series(pd.date_range(T0 - pd.Timedelta(hours=1), periods=7, freq="h"))
    np.testing.assert_allclose(growth_factor(ev, times), [1, 1, 1.125, 1.25, 1.375, 1.5, 1.5])


def test_job_for_unknown_series_changes_nothing() -> None:
    job = ScheduledJob(account="zz", resource="cpu", start=T0, end=datetime(2024, 1, 2), amount=1.0)
    pd.testing.assert_frame_equal(apply_events(flat_forecast(), [job]), flat_forecast())


def test_bad_event_type() -> None:
    with pytest.raises(TypeError, match="GrowthEvent or ScheduledJob"):
        apply_events(flat_forecast(), ["grow"])  # type: ignore[list-item]
