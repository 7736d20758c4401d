"""``quota-planner forecast`` on the shipped demo organisation, and the benchmark's --quick mode."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from benchmark_module import load_benchmark

from planner.cli import main

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "planner" / "demo_data"
SHARED = ROOT.parent / "shared" / "data"


def test_forecast_backtest_outputs_and_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    code = main(
        ["forecast", str(DEMO), "--horizon", "12", "--method", "snaive24", "--backtest", "--windows", "2",
         "--out", str(out), "--plot", "web-011"]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "Backtest per series" in printed
    assert "Overall (2 origins x 12 periods" in printed
    fc = pd.read_csv(out / "forecast.csv", parse_dates=["ts"])
    n_series = fc.groupby(["account", "resource"]).ngroups
    assert len(fc) == 12 * n_series
    assert (fc["q0.5"] <= fc["q0.9"]).all()
    assert (fc["q0.9"] <= fc["q0.99"]).all()
    metrics = pd.read_csv(out / "metrics.csv")
    assert {"mase", "smape", "pinball_q0.9", "coverage_q0.9", "coverage_q0.99"} <= set(
        metrics.columns
    )
    assert len(metrics) == n_series
    png = (out / "forecast_web-011.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_forecast_applies_organisation_events(tmp_path: Path) -> None:
    a, b = tmp_path / "with", tmp_path / "without"
    assert main(["forecast", str(DEMO), "--method", "ewm", "--out", str(a)]) == 0
    assert main(["forecast", str(DEMO), "--method", "ewm", "--out", str(b), "--no-events"]) == 0
    with_ev = pd.read_csv(a / "forecast.csv").set_index(["account", "resource", "ts"])
    without = pd.read_csv(b / "forecast.csv").set_index(["account", "resource", "ts"])
    ratio = (with_ev["q0.5"] / without["q0.5"]).xs(("web-011", "cpu"))
    # The demo's growth event: web-011 cpu x4.8, ramping over 6 h from 2013-07-15 02:00.
    assert ratio.iloc[0] == pytest.approx(1.0)
    assert ratio.loc["2013-07-15 05:00:00"] == pytest.approx(1 + 3.8 / 2)
    assert ratio.iloc[-1] == pytest.approx(4.8)


def test_forecast_auto_parquet(tmp_path: Path) -> None:
    assert (
        main(
            ["forecast", str(DEMO), "--horizon", "6", "--out", str(tmp_path), "--format", "parquet"]
        )
        == 0
    )
    fc = pd.read_parquet(tmp_path / "forecast.parquet")
    assert not fc.isna().any().any()
    choice = pd.read_parquet(tmp_path / "model_choice.parquet")
    assert set(choice["model"]) <= {"snaive24", "snaive168", "ewm", "global_gbm", "fallback"}


def test_forecast_bad_plot_account(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(
        ["forecast", str(DEMO), "--method", "ewm", "--out", str(tmp_path), "--plot", "nobody"]
    )
    assert code == 2
    assert "nobody" in capsys.readouterr().err


def _benchmark():
    return load_benchmark("forecast_accuracy")


def test_benchmark_quick_synthetic(tmp_path: Path) -> None:
    assert _benchmark().main(["--quick", "--synthetic", "--no-peer", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "forecast_accuracy_quick_synthetic.csv")
    assert len(table) == 5
    assert table["mase_mean"].notna().all()
    assert (table["coverage_p90"] > 0.5).all()
    assert "| trace | method |" in (tmp_path / "forecast_accuracy_quick_synthetic.md").read_text()


@pytest.mark.skipif(
    not (SHARED / "bitbrains_rnd_2013-07_hourly.parquet").exists(), reason="no ../shared/data"
)
def test_benchmark_quick_on_traces(tmp_path: Path) -> None:
    assert _benchmark().main(["--quick", "--no-peer", "--out", str(tmp_path)]) == 0
    table = pd.read_csv(tmp_path / "forecast_accuracy_quick.csv")
    assert set(table["trace"]) == {"Bitbrains", "Google 2011"}
    assert len(table) == 10


def test_benchmark_reports_missing_data(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _benchmark().main(["--quick", "--data", str(tmp_path)]) == 0
    assert "missing" in capsys.readouterr().out
