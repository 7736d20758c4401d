"""Forecasters: the predict contract, validation, determinism and awkward series."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from planner.forecast import (
    EWM,
    AutoForecaster,
    GlobalGradientBoosting,
    NotFittedError,
    SeasonalNaive,
    default_forecaster,
)

QCOLS = ["q0.5", "q0.9", "q0.99"]


def periodic_usage(
    n_accounts: int = 3, hours: int = 24 * 14, seed: int = 0, noise: float = 0.5
) -> pd.DataFrame:
    """Hourly cpu and memory per account: a daily sine around a level, plus Gaussian noise."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-01-01", periods=hours, freq="h")
    t = np.arange(hours)
    parts = []
    for a in range(n_accounts):
        for r, level in (("cpu", 10.0 + a), ("memory", 40.0 + 5 * a)):
            value = level + 0.3 * level * np.sin(2 * np.pi * t / 24) + rng.normal(0, noise, hours)
            parts.append(
                pd.DataFrame({"account": f"acc{a}", "resource": r, "ts": ts, "value": value})
            )
    return pd.concat(parts, ignore_index=True)


def awkward_usage() -> pd.DataFrame:
    """One normal series plus a 3-point, a constant and an all-zero series."""
    base = periodic_usage(n_accounts=1)
    base = base[base["resource"] == "cpu"]
    ts = base["ts"].drop_duplicates().reset_index(drop=True)
    short = pd.DataFrame(
        {"account": "short", "resource": "cpu", "ts": ts.iloc[-3:], "value": [1.0, 2.0, 3.0]}
    )
    const = pd.DataFrame({"account": "const", "resource": "cpu", "ts": ts, "value": 7.0})
    zero = pd.DataFrame({"account": "zero", "resource": "cpu", "ts": ts, "value": 0.0})
    return pd.concat([base, short, const, zero], ignore_index=True)


def small_global(**kw: object) -> GlobalGradientBoosting:
    params: dict[str, object] = {"max_iter": 15, "max_samples": 3000, "min_samples_leaf": 20}
    params.update(kw)
    return GlobalGradientBoosting(**params)  # type: ignore[arg-type]


def small_auto(**kw: object) -> AutoForecaster:
    cands = [SeasonalNaive(24), SeasonalNaive(168, fallback_season=24), EWM(), small_global()]
    return AutoForecaster(candidates=cands, **kw)  # type: ignore[arg-type]


ESTIMATORS = [
    pytest.param(lambda: SeasonalNaive(24), id="snaive24"),
    pytest.param(lambda: SeasonalNaive(168, fallback_season=24), id="snaive168"),
    pytest.param(lambda: EWM(alpha=0.2), id="ewm"),
    pytest.param(small_global, id="global"),
    pytest.param(small_auto, id="auto"),
]


@pytest.fixture(scope="module")
def usage() -> pd.DataFrame:
    return periodic_usage()


def check_contract(fc: pd.DataFrame, usage: pd.DataFrame, horizon: int) -> None:
    n_series = usage.groupby(["account", "resource"]).ngroups
    assert list(fc.columns) == ["account", "resource", "ts", *QCOLS]
    assert len(fc) == n_series * horizon
    assert not fc[QCOLS].isna().any().any()
    assert (fc[QCOLS].to_numpy() >= 0).all()
    assert (np.diff(fc[QCOLS].to_numpy(), axis=1) >= 0).all()
    last = usage["ts"].max()
    expected = pd.date_range(last + pd.Timedelta(hours=1), periods=horizon, freq="h")
    for _, g in fc.groupby(["account", "resource"]):
        assert list(g["ts"]) == list(expected)


@pytest.mark.parametrize("make", ESTIMATORS)
def test_round_trip_contract(make, usage: pd.DataFrame) -> None:
    est = make()
    assert est.fit(usage) is est
    fc = est.predict(12)
    check_contract(fc, usage, 12)
    if isinstance(est, EWM):  # flat by design: it can only be near the mean level
        assert 7 < fc[(fc.account == "acc0") & (fc.resource == "cpu")]["q0.5"].mean() < 13
        return
    # The daily sine is learnable: the median is within a few noise levels of the truth.
    truth = 10 + 3 * np.sin(2 * np.pi * np.arange(14 * 24, 14 * 24 + 12) / 24)
    got = fc[(fc.account == "acc0") & (fc.resource == "cpu")]["q0.5"].to_numpy()
    assert np.abs(got - truth).mean() < 1.5


@pytest.mark.parametrize("make", ESTIMATORS)
def test_unfitted_raises(make) -> None:
    with pytest.raises(NotFittedError, match="not fitted yet"):
        make().predict(3)
    assert issubclass(NotFittedError, ValueError)


@pytest.mark.parametrize(
    ("est", "message"),
    [
        (
            SeasonalNaive(season=0),
            "The 'season' parameter of SeasonalNaive must be an int >= 1. Got 0 instead.",
        ),
        (
            SeasonalNaive(season=24, fallback_season=48),
            "The 'fallback_season' parameter of SeasonalNaive must be None or an int in [1, season]. Got 48 instead.",
        ),
        (
            EWM(alpha=1.5),
            "The 'alpha' parameter of EWM must be a float in (0, 1]. Got 1.5 instead.",
        ),
        (
            EWM(calibration_window=True),
            "The 'calibration_window' parameter of EWM must be an int >= 1. Got True instead.",
        ),
        (
            GlobalGradientBoosting(quantiles=(0.5, 1.2)),
            "The 'quantiles' parameter of GlobalGradientBoosting must be a non-empty sequence of floats in (0, 1). Got (0.5, 1.2) instead.",
        ),
        (
            GlobalGradientBoosting(random_state=-1),
            "The 'random_state' parameter of GlobalGradientBoosting must be an int >= 0. Got -1 instead.",
        ),
        (
            AutoForecaster(min_errors=0),
            "The 'min_errors' parameter of AutoForecaster must be an int >= 1. Got 0 instead.",
        ),
        (
            AutoForecaster(shift_factor=0),
            "The 'shift_factor' parameter of AutoForecaster must be a number > 0. Got 0 instead.",
        ),
        (
            EWM(id_cols="account"),
            "The 'id_cols' parameter of EWM must be a non-empty sequence of column names. Got 'account' instead.",
        ),
    ],
)
def test_parameter_validation_messages(est, message: str, usage: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match=re.escape(message)) as info:
        est.fit(usage)
    assert str(info.value) == message


def test_parameters_stored_untouched() -> None:
    est = SeasonalNaive(season=7, id_cols=["a"])
    assert est.season == 7
    assert est.id_cols == ["a"]
    assert est.get_params()["season"] == 7


def test_predict_validation(usage: pd.DataFrame) -> None:
    est = EWM().fit(usage)
    with pytest.raises(
        ValueError,
        match=re.escape("The 'horizon' parameter of EWM must be an int >= 1. Got 0 instead."),
    ):
        est.predict(0)
    with pytest.raises(ValueError, match="'quantiles' parameter of EWM"):
        est.predict(3, quantiles=[0.5, 1.0])


def test_bad_usage_is_reported() -> None:
    with pytest.raises(ValueError, match="no column"):
        EWM().fit(pd.DataFrame({"account": ["a"], "ts": [pd.Timestamp(0)], "value": [1.0]}))
    with pytest.raises(ValueError, match="no rows"):
        EWM().fit(pd.DataFrame(columns=["account", "resource", "ts", "value"]))


def test_custom_column_names(usage: pd.DataFrame) -> None:
    renamed = usage.rename(columns={"account": "unique_id", "ts": "ds", "value": "y"})
    est = SeasonalNaive(24, id_cols=("unique_id", "resource"), time_col="ds", value_col="y")
    fc = est.fit(renamed).predict(2)
    assert list(fc.columns) == ["unique_id", "resource", "ds", *QCOLS]


@pytest.mark.parametrize("make", ESTIMATORS)
def test_fit_is_idempotent(make, usage: pd.DataFrame) -> None:
    est = make()
    first = est.fit(usage).predict(6)
    est.fit(periodic_usage(seed=5))
    again = est.fit(usage).predict(6)
    pd.testing.assert_frame_equal(first, again)


def test_global_model_deterministic_with_seed(usage: pd.DataFrame) -> None:
    a = small_global(random_state=3).fit(usage).predict(6)
    b = small_global(random_state=3).fit(usage).predict(6)
    pd.testing.assert_frame_equal(a, b)


def test_global_model_other_quantiles_interpolated(usage: pd.DataFrame) -> None:
    fc = small_global().fit(usage).predict(4, quantiles=(0.5, 0.9, 0.95, 0.99))
    q = fc[["q0.5", "q0.9", "q0.95", "q0.99"]].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all()


def test_awkward_series_fall_back_without_nan() -> None:
    usage = awkward_usage()
    est = small_auto().fit(usage)
    fc = est.predict(24)
    assert not fc[QCOLS].isna().any().any()
    choice = est.choice_.set_index("account")["model"]
    assert choice["short"] == "fallback"
    by = fc.groupby("account")
    assert np.allclose(by.get_group("const")[QCOLS].to_numpy(), 7.0)
    assert np.allclose(by.get_group("zero")[QCOLS].to_numpy(), 0.0)
    short = by.get_group("short")[QCOLS].to_numpy()
    assert (short > 0).all()
    assert (short[:, 0] < 4).all()


@pytest.mark.parametrize("make", ESTIMATORS)
def test_single_point_series(make) -> None:
    one = pd.DataFrame(
        {"account": ["a"], "resource": ["cpu"], "ts": [pd.Timestamp("2024-01-01")], "value": [5.0]}
    )
    fc = make().fit(one).predict(3)
    assert len(fc) == 3
    assert not fc[QCOLS].isna().any().any()


def test_history_forecasts_from_its_end(usage: pd.DataFrame) -> None:
    cut = usage["ts"].min() + pd.Timedelta(days=10)
    est = SeasonalNaive(24).fit(usage[usage.ts < cut])
    later = est.predict(24, history=usage)
    direct = SeasonalNaive(24).fit(usage).predict(24)
    assert later["ts"].min() == usage["ts"].max() + pd.Timedelta(hours=1)
    # Same point path (the values one day back); only the fitted median offset differs.
    diff = (later["q0.5"] - direct["q0.5"]).to_numpy().reshape(-1, 24)
    np.testing.assert_allclose(diff, diff[:, :1].repeat(24, axis=1), atol=1e-9)
    with pytest.raises(ValueError, match="not seen in fit"):
        est.predict(3, history=usage.assign(account="new"))


def test_auto_chooses_seasonal_on_periodic_data(usage: pd.DataFrame) -> None:
    est = AutoForecaster(candidates=[SeasonalNaive(24), EWM(alpha=0.1)]).fit(usage)
    assert set(est.choice_["model"]) == {"snaive24"}
    assert est.model_counts()["snaive24"] == usage.groupby(["account", "resource"]).ngroups


def test_default_forecaster_is_auto() -> None:
    est = default_forecaster(random_state=1)
    assert isinstance(est, AutoForecaster)
    assert est.random_state == 1


def test_bands_cover_noise(usage: pd.DataFrame) -> None:
    """P90 of seasonal naive covers roughly 90 % of fresh data from the same process."""
    train = periodic_usage(hours=24 * 21, seed=1)
    fresh = periodic_usage(hours=24 * 22, seed=2)
    fresh = fresh[fresh.ts > train.ts.max()]
    fc = SeasonalNaive(24).fit(train).predict(24)
    merged = fc.merge(fresh, on=["account", "resource", "ts"])
    cover = (merged["value"] <= merged["q0.9"]).mean()
    assert 0.75 <= cover <= 1.0


def _job_and_web(hours_on: int) -> pd.DataFrame:
    """Five days hourly: a daily web series, and a job idle until its last ``hours_on`` hours."""
    ts = pd.date_range("2011-05-02", periods=120, freq="h")
    web = 5.0 + 2.0 * np.sin(2 * np.pi * np.arange(120) / 24)
    job = np.zeros(120)
    job[120 - hours_on :] = 2.0
    return pd.concat(
        [
            pd.DataFrame({"account": "web", "resource": "cpu", "ts": ts, "value": web}),
            pd.DataFrame({"account": "job", "resource": "cpu", "ts": ts, "value": job}),
        ]
    )


def test_a_job_that_just_started_is_forecast_at_its_new_level() -> None:
    """The daily seasonal naive, chosen on days of zeros, would predict zero for a day."""
    usage = _job_and_web(hours_on=6)
    cands = [SeasonalNaive(24), EWM(alpha=0.1)]
    est = AutoForecaster(candidates=cands).fit(usage)
    pred = est.predict(24).set_index("account")
    assert est.choice_.set_index("account").loc["job", "model"] == "snaive24"
    assert dict(zip(est.choice_["account"], est.shifted_, strict=True)) == {
        "web": False,
        "job": True,
    }
    # the fallback, EWM(alpha=0.3): 2 x (1 - 0.7^6) after six hours at 2
    assert pred.loc["job", "q0.5"].iloc[0] == pytest.approx(2 * (1 - 0.7**6), rel=0.05)
    web_direct = SeasonalNaive(24).fit(usage).predict(24).set_index("account")
    np.testing.assert_allclose(pred.loc["web", "q0.5"], web_direct.loc["web", "q0.5"])
    # without the check (nor the recent-error correction) the job is forecast at zero until
    # its start comes round again
    off = AutoForecaster(candidates=cands, shift_window=0, correction_window=0)
    pred_off = off.fit(usage).predict(24).set_index("account")
    assert pred_off.loc["job", "q0.5"].iloc[:18].max() == pytest.approx(0.0)
    # the correction alone: the last 3 hours ran 2 above the forecast of them, decaying by 0.9
    # an hour
    alone = AutoForecaster(candidates=cands, shift_window=0, correction_decay=0.9).fit(usage)
    pred_alone = alone.predict(24).set_index("account")
    assert alone.recent_error_.tolist() == pytest.approx([2.0, 0.0])
    np.testing.assert_allclose(
        pred_alone.loc["job", "q0.5"].iloc[:18], 2.0 * 0.9 ** np.arange(1, 19), atol=1e-9
    )


def test_recent_errors_correct_the_forecast_with_decay() -> None:
    """A series running above its seasonal forecast for the last hours is raised by that
    error, fading with the lead; one on its forecast is left alone; quantiles keep order."""
    usage = _job_and_web(hours_on=30)
    last = usage["ts"].max()
    job = (usage["account"] == "job") & (usage["ts"] > last - pd.Timedelta(hours=3))
    usage.loc[job, "value"] += 1.5
    est = AutoForecaster(candidates=[SeasonalNaive(24)], correction_decay=0.9).fit(usage)
    pred = est.predict(24, quantiles=(0.5, 0.9)).set_index("account")
    plain = SeasonalNaive(24).fit(usage).predict(24, quantiles=(0.5, 0.9)).set_index("account")
    errors = dict(zip(est.choice_["account"], est.recent_error_, strict=True))
    assert errors["job"] == pytest.approx(1.5)
    assert errors["web"] == pytest.approx(0.0)
    lift = pred.loc["job", "q0.5"].to_numpy() - plain.loc["job", "q0.5"].to_numpy()
    np.testing.assert_allclose(lift, 1.5 * 0.9 ** np.arange(1, 25), atol=1e-9)
    np.testing.assert_allclose(pred.loc["web", "q0.5"], plain.loc["web", "q0.5"])
    assert (pred["q0.9"] >= pred["q0.5"] - 1e-12).all()
    off = AutoForecaster(candidates=[SeasonalNaive(24)], correction_window=0).fit(usage)
    np.testing.assert_allclose(off.predict(24).set_index("account")["q0.5"], plain["q0.5"])


def _noisy_days(phi: float, n_series: int = 20, days: int = 10, seed: int = 0) -> pd.DataFrame:
    """Daily curves plus AR(1) noise of coefficient ``phi`` (0: independent noise)."""
    rng = np.random.default_rng(seed)
    n = 24 * days
    ts = pd.date_range("2013-07-01", periods=n, freq="h")
    frames = []
    for i in range(n_series):
        noise = np.zeros(n)
        shocks = rng.normal(scale=1.0, size=n)
        for t in range(1, n):
            noise[t] = phi * noise[t - 1] + shocks[t]
        value = 20.0 + 5.0 * np.sin(2 * np.pi * np.arange(n) / 24) + noise
        frames.append(
            pd.DataFrame({"account": f"a{i}", "resource": "cpu", "ts": ts, "value": value})
        )
    return pd.concat(frames)


def test_the_correction_decay_is_chosen_from_the_errors() -> None:
    """Errors that persist hour to hour get a strong correction; independent errors none."""
    persistent = AutoForecaster(candidates=[SeasonalNaive(24)]).fit(_noisy_days(0.95))
    assert persistent.correction_decay_ >= 0.8
    assert persistent.decay_mae_[persistent.correction_decay_] < persistent.decay_mae_[0.0]
    independent = AutoForecaster(candidates=[SeasonalNaive(24)]).fit(_noisy_days(0.0))
    assert independent.correction_decay_ == 0.0
    # a window that is not the models' origin spacing (3), and the global model (origins 12
    # apart): the decay is still chosen from their errors
    four = AutoForecaster(candidates=[SeasonalNaive(24)], correction_window=4)
    assert four.fit(_noisy_days(0.95)).correction_decay_ >= 0.8
    gbm = AutoForecaster(candidates=[GlobalGradientBoosting(random_state=0)], min_errors=1)
    gbm.fit(_noisy_days(0.95))
    assert (gbm.choice_["model"] == "global_gbm").all()
    assert gbm.decay_mae_
    assert gbm.correction_decay_ >= 0.5
    fixed = AutoForecaster(candidates=[SeasonalNaive(24)], correction_decay=0.5)
    assert fixed.fit(_noisy_days(0.0)).correction_decay_ == 0.5
    with pytest.raises(ValueError, match="correction_decay"):
        AutoForecaster(correction_decay=1.0).fit(_noisy_days(0.0))


def test_a_job_running_a_day_is_no_longer_a_shift() -> None:
    usage = _job_and_web(hours_on=30)
    est = AutoForecaster(candidates=[SeasonalNaive(24), EWM(alpha=0.1)]).fit(usage)
    est.predict(6)
    assert not est.shifted_.any()
