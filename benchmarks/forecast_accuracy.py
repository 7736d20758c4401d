"""Forecast accuracy on public traces: our forecasters against baselines and statsforecast's AutoETS.

Setup (rolling origin): every method is fitted once on the training span, then forecasts the next
24 hours from an origin at 00:00 of each test day, re-originated every 24 hours over the test span
with the history known at that origin (no refit). Scored on series with at least two days of
training history and observations through the test span:

- Bitbrains Rnd (hourly, per VM cpu and memory): train 2013-06-30 22:00 to 2013-07-21 23:00 (the
  first three weeks of July), test 2013-07-22 to 2013-07-31 (10 origins).
- Google 2011 jobs (5-minute steps averaged to hourly, per job cpu and memory): train days 1-5,
  test days 6-7 (2 origins). Time stamps are nominal (day 1 = 2011-05-02); a full week of history
  does not exist, so weekly seasonal naive falls back to the daily season there.

Metrics: MASE (scaled by the in-sample daily seasonal-naive MAE; mean and median over series),
sMAPE, pinball loss at P90 divided by the series' mean training value (mean over series), coverage
of P90 and P99 (pooled over all test points), seconds to fit and forecast all origins.

Run: ``.venv/bin/python benchmarks/forecast_accuracy.py`` (full, minutes) or ``--quick`` (a few
series, seconds); ``--synthetic`` uses generated data when ../shared/data is absent.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from planner.forecast import (  # noqa: E402
    EWM,
    AutoForecaster,
    GlobalGradientBoosting,
    SeasonalNaive,
    default_candidates,
    rolling_origin,
    score_forecasts,
)
from planner.forecast.base import build_panel  # noqa: E402
from planner.io import write_atomic  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
BITBRAINS = "bitbrains_rnd_2013-07_hourly.parquet"
GOOGLE = "google2011_jobs_days1-7_5min.csv.gz"
QUANTILES = (0.5, 0.9, 0.99)
HORIZON = 24
IDS = ["account", "resource"]


def load_bitbrains(path: Path, n_vms: int | None) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Long table (account = VM, resource cpu in MHz | memory in MB) and the first test hour."""
    b = pd.read_parquet(path, columns=["vm", "ts", "cpu_mhz", "mem_kb"])
    if n_vms is not None:
        b = b[b["vm"].isin(sorted(b["vm"].unique())[:n_vms])]
    acc = "vm" + b["vm"].astype(str)
    cpu = pd.DataFrame({"account": acc, "resource": "cpu", "ts": b["ts"], "value": b["cpu_mhz"]})
    mem = pd.DataFrame(
        {"account": acc, "resource": "memory", "ts": b["ts"], "value": b["mem_kb"] / 1024}
    )
    return pd.concat([cpu, mem], ignore_index=True), pd.Timestamp("2013-07-22 00:00")


def load_google(path: Path, n_jobs: int | None) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Long table (account = job, cpu and memory in % of a machine), hourly means; first test hour."""
    g = pd.read_csv(path, usecols=["job", "t_index", "cpu_pct", "mem_pct"])
    if n_jobs is not None:
        busiest = g.groupby("job").size().sort_values(ascending=False).index[:n_jobs]
        g = g[g["job"].isin(busiest)]
    base = pd.Timestamp("2011-05-02 00:00")
    g = g.assign(ts=base + pd.to_timedelta((g["t_index"] // 12) * 60, unit="min"))
    hourly = g.groupby(["job", "ts"], as_index=False)[["cpu_pct", "mem_pct"]].mean()
    acc = "job" + hourly["job"].astype(str)
    cpu = pd.DataFrame(
        {"account": acc, "resource": "cpu", "ts": hourly["ts"], "value": hourly["cpu_pct"]}
    )
    mem = pd.DataFrame(
        {"account": acc, "resource": "memory", "ts": hourly["ts"], "value": hourly["mem_pct"]}
    )
    return pd.concat([cpu, mem], ignore_index=True), base + pd.Timedelta(days=5)


def synthetic(
    n_series: int = 8, days: int = 21, seed: int = 0
) -> tuple[pd.DataFrame, pd.Timestamp]:
    """Hourly series with daily and weekly cycles, noise and a few spikes (for CI without data)."""
    rng = np.random.default_rng(seed)
    ts = pd.date_range("2024-01-01", periods=days * 24, freq="h")
    t = np.arange(len(ts))
    parts = []
    for i in range(n_series):
        level = rng.uniform(5, 50)
        daily = 0.4 * level * np.sin(2 * np.pi * (t + rng.integers(24)) / 24)
        weekly = np.where(ts.day_of_week >= 5, -0.3 * level, 0.0)
        noise = rng.normal(0, 0.1 * level, len(t))
        spikes = (rng.random(len(t)) < 0.01) * level
        value = np.clip(level + daily + weekly + noise + spikes, 0, None)
        parts.append(
            pd.DataFrame({"account": f"s{i}", "resource": "cpu", "ts": ts, "value": value})
        )
    return pd.concat(parts, ignore_index=True), ts[0] + pd.Timedelta(days=days - 3)


def eligible(long: pd.DataFrame, test_start: pd.Timestamp) -> pd.DataFrame:
    """Series with >= 48 training hours and observations up to the last test hour."""
    last = long["ts"].max()
    g = long.groupby(IDS, observed=True)["ts"]
    n_train = long[long["ts"] < test_start].groupby(IDS, observed=True).size()
    ends = g.max()
    keys = ends[(ends >= last)].index.intersection(n_train[n_train >= 48].index)
    return keys.to_frame(index=False)


def our_methods(seed: int, quick: bool = False) -> dict[str, Callable[[], object]]:
    """The forecasters under test, by row name (``quick``: a lighter global model)."""
    light = {"max_iter": 30, "max_samples": 5000} if quick else {}

    def global_model() -> GlobalGradientBoosting:
        return GlobalGradientBoosting(random_state=seed, **light)  # type: ignore[arg-type]

    def auto() -> AutoForecaster:
        cands = [*default_candidates(seed)[:3], global_model()]
        return AutoForecaster(candidates=cands, random_state=seed)

    return {
        "seasonal naive (daily)": lambda: SeasonalNaive(season=24),
        "seasonal naive (weekly)": lambda: SeasonalNaive(season=168, fallback_season=24),
        "EWM (alpha 0.1)": lambda: EWM(alpha=0.1),
        "global GBM (ours)": global_model,
        "automatic choice (ours)": auto,
    }


def run_ours(
    name: str, make: Callable[[], object], long: pd.DataFrame, test_start: pd.Timestamp
) -> tuple[pd.DataFrame, float]:
    """Backtest forecasts of one of our methods and the seconds to fit and forecast."""
    est = make()
    res = rolling_origin(
        est, long, horizon=HORIZON, step=HORIZON, start=test_start, quantiles=QUANTILES
    )  # type: ignore[arg-type]
    return res.forecasts, res.fit_seconds + res.predict_seconds


def run_autoets(
    long: pd.DataFrame, keys: pd.DataFrame, test_start: pd.Timestamp
) -> tuple[pd.DataFrame, float] | str:
    """AutoETS (statsforecast, season 24) on the same origins; a note string if unavailable."""
    try:
        from statsforecast import StatsForecast
        from statsforecast.models import AutoETS, Naive
    except ImportError as exc:  # the peer is optional (the `bench` extra)
        return f"statsforecast not importable ({exc}); install the bench extra"
    data = long.merge(keys, on=IDS)
    panel = build_panel(data, IDS, "ts", "value")
    times = panel.times(0, panel.n_times)
    filled = pd.DataFrame(
        {
            "unique_id": np.repeat(
                (
                    panel.keys["account"].astype(str) + "|" + panel.keys["resource"].astype(str)
                ).to_numpy(),
                panel.n_times,
            ),
            "ds": np.tile(times.to_numpy(), panel.n_series),
            "y": panel.values.reshape(-1),
        }
    ).dropna()
    n_windows = int((times[-1] + panel.step - test_start) / (HORIZON * panel.step))
    sf = StatsForecast(
        models=[AutoETS(season_length=24)], freq="h", n_jobs=1, fallback_model=Naive()
    )
    began = time.perf_counter()
    cv = sf.cross_validation(
        df=filled, h=HORIZON, step_size=HORIZON, n_windows=n_windows, refit=False, level=[80, 98]
    )
    seconds = time.perf_counter() - began
    split = cv["unique_id"].astype(str).str.split("|", n=1, expand=True)
    out = pd.DataFrame(
        {
            "account": split[0],
            "resource": split[1],
            "ts": cv["ds"],
            "q0.5": cv["AutoETS"].clip(lower=0),
            "q0.9": cv["AutoETS-hi-80"].clip(lower=0),
            "q0.99": cv["AutoETS-hi-98"].clip(lower=0),
        }
    )
    return out, seconds


def score(
    forecasts: pd.DataFrame, long: pd.DataFrame, keys: pd.DataFrame, test_start: pd.Timestamp
) -> pd.Series:
    """Overall metrics of forecasts on the eligible series."""
    fc = forecasts.drop(columns=[c for c in ("actual", "origin") if c in forecasts.columns])
    fc = fc.merge(keys, on=IDS)
    fc = fc.merge(long.rename(columns={"value": "actual"}), on=[*IDS, "ts"], how="left")
    train = long[long["ts"] < test_start].merge(keys, on=IDS)
    _, overall = score_forecasts(fc, train, quantiles=QUANTILES, season=24)
    return overall


def bench_trace(
    trace: str, long: pd.DataFrame, test_start: pd.Timestamp, args: argparse.Namespace
) -> tuple[list[dict[str, object]], list[str]]:
    """Rows of the results table for one trace, and notes."""
    keys = eligible(long, test_start)
    rows: list[dict[str, object]] = []
    notes: list[str] = []
    n_series = long.groupby(IDS, observed=True).ngroups
    print(f"{trace}: {n_series} series, {len(keys)} scored, test from {test_start}", flush=True)
    for name, make in our_methods(args.seed, args.quick).items():
        fc, seconds = run_ours(name, make, long, test_start)
        rows.append(_row(trace, name, score(fc, long, keys, test_start), seconds))
        print(f"  {name:28s} {_fmt(rows[-1])}", flush=True)
    if args.no_peer:
        notes.append("AutoETS skipped (--no-peer).")
    else:
        peer = run_autoets(long, keys, test_start)
        if isinstance(peer, str):
            notes.append(f"AutoETS skipped: {peer}.")
        else:
            fc, seconds = peer
            rows.append(
                _row(trace, "AutoETS (statsforecast)", score(fc, long, keys, test_start), seconds)
            )
            print(f"  {'AutoETS (statsforecast)':28s} {_fmt(rows[-1])}", flush=True)
    return rows, notes


def _row(trace: str, method: str, overall: pd.Series, seconds: float) -> dict[str, object]:
    return {
        "trace": trace,
        "method": method,
        "series": int(overall.get("series", 0)),
        "points": int(overall.get("points", 0)),
        "mase_mean": round(float(overall.get("mase", np.nan)), 4),
        "mase_median": round(float(overall.get("mase_median", np.nan)), 4),
        "smape": round(float(overall.get("smape", np.nan)), 2),
        "pinball_p90_scaled": round(float(overall.get("spinball_q0.9", np.nan)), 4),
        "coverage_p90": round(float(overall.get("coverage_q0.9", np.nan)), 4),
        "coverage_p99": round(float(overall.get("coverage_q0.99", np.nan)), 4),
        "fit_predict_s": round(seconds, 2),
    }


def _fmt(row: dict[str, object]) -> str:
    return (
        f"MASE {row['mase_mean']} (median {row['mase_median']}) pinball90 {row['pinball_p90_scaled']} "
        f"cov90 {row['coverage_p90']} cov99 {row['coverage_p99']} {row['fit_predict_s']} s"
    )


def single_fit_seconds(long: pd.DataFrame, seed: int) -> float:
    """Seconds for AutoForecaster to fit on all of ``long`` and forecast 24 hours once."""
    began = time.perf_counter()
    AutoForecaster(random_state=seed).fit(long).predict(HORIZON, QUANTILES)
    return time.perf_counter() - began


def markdown(table: pd.DataFrame, notes: list[str], command: str) -> str:
    """The results as a Markdown document."""
    head = (
        "| trace | method | series | MASE mean | MASE median | sMAPE % | pinball P90 (scaled) "
        "| P90 coverage | P99 coverage | fit+predict s |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    lines = [
        f"| {r.trace} | {r.method} | {r.series} | {r.mase_mean:.3f} | {r.mase_median:.3f} | "
        f"{r.smape:.1f} | {r.pinball_p90_scaled:.3f} | {r.coverage_p90:.1%} | {r.coverage_p99:.1%} | "
        f"{r.fit_predict_s:.1f} |"
        for r in table.itertuples(index=False)
    ]
    doc = [
        "# Forecast accuracy",
        "",
        f"Regenerate: `{command}`",
        "",
        (__doc__ or "").split("Run:")[0].strip(),
        "",
        head + "\n".join(lines),
        "",
        *[f"- {n}" for n in notes],
        "",
    ]
    return "\n".join(doc)


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; returns the exit code."""
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--quick", action="store_true", help="a few series only (seconds)")
    p.add_argument("--synthetic", action="store_true", help="generated data instead of the traces")
    p.add_argument("--data", type=Path, default=DATA, help=f"trace folder (default {DATA})")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results")
    p.add_argument("--no-peer", action="store_true", help="skip statsforecast's AutoETS")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    command = "python benchmarks/forecast_accuracy.py" + " ".join(
        ["", *(a for a in (argv if argv is not None else sys.argv[1:]) if not a.startswith("/"))]
    )
    traces: list[tuple[str, pd.DataFrame, pd.Timestamp]] = []
    notes: list[str] = []
    if args.synthetic:
        long, start = synthetic(n_series=6 if args.quick else 40)
        traces.append(("synthetic", long, start))
    else:
        missing = [f for f in (BITBRAINS, GOOGLE) if not (args.data / f).exists()]
        if missing:
            print(
                f"forecast_accuracy: missing {', '.join(str(args.data / f) for f in missing)}; "
                "nothing to measure (use --synthetic for generated data)."
            )
            return 0
        traces.append(
            ("Bitbrains", *load_bitbrains(args.data / BITBRAINS, 6 if args.quick else None))
        )
        traces.append(("Google 2011", *load_google(args.data / GOOGLE, 6 if args.quick else None)))
    rows: list[dict[str, object]] = []
    for trace, long, start in traces:
        r, n = bench_trace(trace, long, start, args)
        rows += r
        notes += [f"{trace}: {x}" for x in n]
    if not args.synthetic and not args.quick:
        long = traces[0][1]
        train = long[long["ts"] < traces[0][2]]
        seconds = single_fit_seconds(train, args.seed)
        n = train.groupby(IDS).ngroups
        notes.append(
            f"AutoForecaster fit on all {n} Bitbrains series (500 VMs x 2) and one 24 h forecast: "
            f"{seconds:.1f} s (target < 60 s on 2 cores)."
        )
        print(notes[-1])
    table = pd.DataFrame(rows)
    suffix = "_quick" if args.quick else ""
    suffix += "_synthetic" if args.synthetic else ""
    write_atomic(args.out / f"forecast_accuracy{suffix}.csv", table.to_csv(index=False))
    write_atomic(
        args.out / f"forecast_accuracy{suffix}.md", markdown(table, notes, command.strip())
    )
    print(f"written {args.out / f'forecast_accuracy{suffix}.md'} and .csv")
    return 0


if __name__ == "__main__":
    sys.exit(main())
