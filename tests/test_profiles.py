"""Need profiles: quantile level, events, ordering, empty usage, resampling (values by hand)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd
import pytest

from models import Organisation
from planner.estimate import RecentPeakEstimator, quantile_column
from planner.profiles import build_need_profiles, interpolate_level, period_peaks

T0 = datetime(2024, 3, 1)
HOUR = timedelta(hours=1)


class FakeForecaster:
    """Predicts fixed quantiles per account (default 10/20/30) and keeps what it was fitted on."""

    def __init__(self, levels: dict[str, tuple[float, float, float]] | None = None) -> None:
        self.levels = levels or {}

    def fit(self, usage: pd.DataFrame) -> FakeForecaster:
        self.history_ = usage.copy()
        return self

    def predict(self, horizon: int, quantiles: Sequence[float]) -> pd.DataFrame:
        last = self.history_["ts"].max()
        rows = []
        for (a, r), _ in self.history_.groupby(["account", "resource"]):
            vals = dict(zip((0.5, 0.9, 0.99), self.levels.get(a, (10.0, 20.0, 30.0)), strict=True))
            for h in range(1, horizon + 1):
                rows.append(
                    {"account": a, "resource": r, "ts": last + h * HOUR}
                    | {quantile_column(q): vals[q] for q in quantiles}
                )
        return pd.DataFrame(rows)


def make_org(accounts: list[dict[str, Any]], **extra: Any) -> Organisation:
    data: dict[str, Any] = {
        "resources": [{"name": "cpu"}],
        "parent": {"capacity": {"cpu": 100}},
        "accounts": accounts,
        "rules": {"period_minutes": 60, "horizon_periods": 6},
    }
    data.update(extra)
    return Organisation.model_validate(data)


def hourly_usage(accounts: Sequence[str], hours: int = 24, value: float = 1.0) -> pd.DataFrame:
    ts = pd.date_range(T0 - hours * HOUR, periods=hours, freq="1h")
    return pd.DataFrame(
        [{"account": a, "resource": "cpu", "ts": t, "value": value} for a in accounts for t in ts]
    )


def by_id(profiles: list[Any]) -> dict[str, Any]:
    return {p.account: p for p in profiles}


def test_quantile_level_respected() -> None:
    org = make_org(
        [
            {"id": "A", "performance_threshold": 0.9},
            {"id": "B", "performance_threshold": 0.95},
            {"id": "C", "performance_threshold": 0.5},
            {"id": "D", "performance_threshold": 0.995},
            {"id": "E", "performance_threshold": 0.3},
        ]
    )
    got = by_id(build_need_profiles(org, hourly_usage("ABCDE"), forecaster=FakeForecaster()))
    # quantiles 10 / 20 / 30 at 0.5 / 0.9 / 0.99; B: 20 + (0.05 / 0.09) * 10
    expected = {"A": 20.0, "B": 20 + 50 / 9, "C": 10.0, "D": 30.0, "E": 10.0}
    for a, v in expected.items():
        d = got[a].demand["cpu"]
        assert d.target == pytest.approx([v] * 6), a
        assert d.quantiles[0.9] == pytest.approx([20.0] * 6)
        assert d.periods[0] == T0  # the period after the last usage
        assert len(d.periods) == 6


def test_interpolate_level_between_columns() -> None:
    vals = np.array([[1.0, 3.0, 7.0]])
    assert interpolate_level(vals, (0.5, 0.9, 0.99), 0.7)[0] == pytest.approx(2.0)
    assert interpolate_level(vals, (0.5, 0.9, 0.99), 0.99)[0] == pytest.approx(7.0)


def test_events_applied() -> None:
    org = make_org(
        [{"id": "A"}, {"id": "B"}],
        events={
            "growth": [{"account": "A", "start": T0 + 2 * HOUR, "multiplier": 3, "ramp_hours": 2}],
            "jobs": [
                {
                    "account": "A",
                    "resource": "cpu",
                    "start": T0 + 1.5 * HOUR,
                    "end": T0 + 2.5 * HOUR,
                    "amount": 5,
                    "name": "etl",
                },
                # after the horizon: no effect, not mentioned
                {
                    "account": "A",
                    "resource": "cpu",
                    "start": T0 + 30 * HOUR,
                    "end": T0 + 31 * HOUR,
                    "amount": 100,
                    "name": "later",
                },
                # an account without usage still gets its scheduled job
                {
                    "account": "B",
                    "resource": "cpu",
                    "start": T0 + 4 * HOUR,
                    "end": T0 + 5 * HOUR,
                    "amount": 7,
                },
            ],
        },
    )
    got = by_id(build_need_profiles(org, hourly_usage("A"), forecaster=FakeForecaster()))
    # P90 20; growth factor at each period's start: 1, 1, 1, 2, 3, 3; the job (+5, not grown)
    # overlaps periods 1 and 2
    assert got["A"].demand["cpu"].target == pytest.approx([20, 25, 25, 40, 60, 60])
    assert got["A"].demand["cpu"].quantiles[0.5] == pytest.approx([10, 15, 15, 20, 30, 30])
    assert got["B"].demand["cpu"].target == pytest.approx([0, 0, 0, 0, 7, 0])
    assert "growth x3" in got["A"].reason
    assert "etl +5 cpu" in got["A"].reason
    assert "later" not in got["A"].reason


def test_ordering_and_empty_account() -> None:
    org = make_org(
        [
            {"id": "A", "priority": 10, "quota": {"cpu": 18}},
            {"id": "B", "priority": 5},
            {"id": "C", "priority": 1},
            {"id": "D", "priority": 50},
        ]
    )
    profiles = build_need_profiles(org, hourly_usage("ABC"), forecaster=FakeForecaster())
    # criticality = priority / 50 (no edges); shortfall / capacity 100:
    # A 10 * 0.2 * 0.02 = 0.04, B 5 * 0.1 * 0.2 = 0.1, C 1 * 0.02 * 0.2 = 0.004, D 0
    assert [p.account for p in profiles] == ["B", "A", "C", "D"]
    got = by_id(profiles)
    assert got["A"].priority_score == pytest.approx(0.04)
    assert got["B"].priority_score == pytest.approx(0.1)
    assert got["A"].shortfall == pytest.approx({"cpu": 2.0})
    assert got["D"].demand["cpu"].target == [0.0] * 6
    assert got["D"].shortfall == {"cpu": 0.0}
    assert "no usage history" in got["D"].reason
    assert got["D"].criticality == pytest.approx(1.0)


def test_critical_dependencies_and_criticality() -> None:
    org = make_org(
        [
            {"id": "web", "priority": 10},
            {"id": "db", "priority": 1},
            {"id": "batch", "priority": 1},
        ],
        edges=[{"source": "web", "target": "db", "critical": True}],
    )
    got = by_id(build_need_profiles(org, hourly_usage(["web", "db"]), forecaster=FakeForecaster()))
    assert got["web"].critical_dependencies == ["db"]
    # raw(db) = 1 + 10 + 10 = 21, raw(web) = 10, raw(batch) = 1
    assert got["db"].criticality == pytest.approx(1.0)
    assert got["web"].criticality == pytest.approx(10 / 21)
    assert "depends critically on db" in got["web"].reason


def test_resampled_to_peak_of_summed_workloads() -> None:
    org = make_org(
        [{"id": "A"}], workloads=[{"id": "w1", "account": "A"}, {"id": "w2", "account": "A"}]
    )
    ts = pd.date_range(T0, periods=8, freq="15min")
    usage = pd.DataFrame(
        {
            "account": "A",
            "resource": "cpu",
            "workload": ["w1"] * 8 + ["w2"] * 8,
            "ts": list(ts) * 2,
            "value": [*[1, 5, 2, 2, 0, 0, 1, 0], *[4, 1, 1, 1, 3, 0, 0, 2]],
        }
    )
    # instants summed: 5, 6, 3, 3 | 3, 0, 1, 2 -> hourly peaks 6 and 3 (not 9 = peak + peak)
    peaks = period_peaks(usage, 60, origin=T0)
    assert peaks["ts"].tolist() == [pd.Timestamp(T0), pd.Timestamp(T0 + HOUR)]
    assert peaks["value"].tolist() == [6, 3]
    fake = FakeForecaster()
    profiles = build_need_profiles(org, usage, forecaster=fake)
    assert fake.history_["value"].tolist() == [6, 3]
    assert profiles[0].demand["cpu"].periods[0] == T0 + 2 * HOUR


def test_start_in_history_uses_only_the_past() -> None:
    org = make_org([{"id": "A"}])
    fake = FakeForecaster()
    profiles = build_need_profiles(
        org, hourly_usage("A", hours=48), start=T0 - 24 * HOUR, forecaster=fake
    )
    assert fake.history_["ts"].max() == pd.Timestamp(T0 - 25 * HOUR)
    assert profiles[0].demand["cpu"].periods[0] == T0 - 24 * HOUR


def test_recent_peak_estimator_end_to_end() -> None:
    org = make_org([{"id": "A", "quota": {"cpu": 5}}])
    usage = hourly_usage("A", hours=48)
    usage["value"] = [float(t.hour) for t in usage["ts"]]
    (profile,) = build_need_profiles(org, usage, forecaster=RecentPeakEstimator(days=1))
    # the same hour of the day as the last day: hours 0..5
    assert profile.demand["cpu"].target == pytest.approx([0, 1, 2, 3, 4, 5])
    assert profile.shortfall == pytest.approx({"cpu": 0.0})
    assert "within quota" in profile.reason


def test_bad_input() -> None:
    org = make_org([{"id": "A"}])
    coarse = hourly_usage("A", hours=10)
    coarse = coarse.iloc[::2]
    with pytest.raises(ValueError, match="coarser than the period"):
        build_need_profiles(org, coarse, forecaster=FakeForecaster())
    with pytest.raises(ValueError, match="not in the organisation"):
        build_need_profiles(org, hourly_usage("Z"), forecaster=FakeForecaster())
    with pytest.raises(ValueError, match="quantiles"):
        build_need_profiles(org, hourly_usage("A"), quantiles=(0.9, 0.5))


def test_profile_command_writes_ranked_json(tmp_path: Any) -> None:
    import json

    import yaml

    from planner.cli import main

    folder = tmp_path / "org"
    folder.mkdir()
    org = {
        "resources": [{"name": "cpu"}],
        "parent": {"capacity": {"cpu": 10}},
        "accounts": [
            {"id": "web", "priority": 10, "quota": {"cpu": 1}},
            {"id": "db", "priority": 1, "quota": {"cpu": 1}},
            {"id": "idle", "priority": 1},
        ],
        "edges": [{"source": "web", "target": "db", "critical": True}],
        "rules": {"period_minutes": 60, "horizon_periods": 4},
    }
    (folder / "organisation.yaml").write_text(yaml.safe_dump(org))
    usage = hourly_usage(["web", "db"], hours=24 * 8, value=3.0)
    usage.to_csv(folder / "usage.csv", index=False)
    out = tmp_path / "profiles.json"
    assert main(["profile", str(folder), "--out", str(out)]) == 0
    doc = json.loads(out.read_text())
    assert doc["start"] == T0.isoformat()
    # web: 10 * (10/21) * (2/10) = 0.95; db: 1 * 1 * (2/10) = 0.2; idle: 0
    assert [p["account"] for p in doc["profiles"]] == ["web", "db", "idle"]
    assert [p["rank"] for p in doc["profiles"]] == [1, 2, 3]
    assert doc["critical_chains"] == [{"accounts": ["web", "db"], "priority": 11.0, "weight": 1.0}]
    assert doc["profiles"][0]["demand"]["cpu"]["target"] == pytest.approx([3.0] * 4)  # flat history


def test_given_need_profile_is_kept() -> None:
    periods = [T0 + i * HOUR for i in range(6)]
    given = {
        "account": "A",
        "demand": {"cpu": {"resource": "cpu", "periods": periods, "target": [50.0] * 6}},
    }
    org = make_org([{"id": "A", "priority": 2, "need_profile": given}, {"id": "B"}])
    got = by_id(build_need_profiles(org, hourly_usage("AB"), forecaster=FakeForecaster()))
    assert got["A"].demand["cpu"].target == [50.0] * 6
    assert got["A"].shortfall == {"cpu": 50.0}
    # 2 * (2/2) * 0.5 = 1.0
    assert got["A"].priority_score == pytest.approx(1.0)
    assert "given" in got["A"].reason
    assert got["B"].demand["cpu"].target == pytest.approx([20.0] * 6)


@pytest.mark.parametrize("seed", [0, 1])
def test_period_peaks_matches_pandas_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    rows = []
    for a in ("A", "B"):
        for r in ("cpu", "mem"):
            for w in ("w1", "w2", "w3"):
                for ts in pd.date_range("2024-01-01 00:05", periods=40, freq="10min"):
                    rows.append((a, r, w, ts, float(rng.integers(0, 100))))
    usage = pd.DataFrame(rows, columns=["account", "resource", "workload", "ts", "value"])
    usage = usage.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    origin = datetime(2024, 1, 2, 0, 30)  # periods :30 to :30, origin after the data
    got = period_peaks(usage, 60, origin=origin)
    summed = usage.groupby(["account", "resource", "ts"])["value"].sum().reset_index()
    half = pd.Timedelta(minutes=30)
    summed["ts"] = (summed["ts"] - half).dt.floor("1h") + half  # period containing ts
    expected = summed.groupby(["account", "resource", "ts"])["value"].max().reset_index()
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), expected, check_dtype=False, check_exact=False
    )
