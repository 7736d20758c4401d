"""``quota-planner forecast ORG_DIR``: demand forecasts with bands, backtest metrics and plots."""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.table import Table

from planner.cli.common import console, load_folder, progress
from planner.io import write_atomic

EXAMPLES = """\
examples:
  quota-planner forecast ./my-org --horizon 24                       # print the forecast summary
  quota-planner forecast ./my-org --backtest --out out/               # + rolling-origin metrics
  quota-planner forecast ./my-org --out out/ --plot web-011 batch-003 # + PNG per account
"""

METHODS = ("auto", "global", "snaive24", "snaive168", "ewm")
QUANTILES = (0.5, 0.9, 0.99)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the ``forecast`` command."""
    p = sub.add_parser(
        "forecast",
        help="forecast each account's demand (P50, P90, P99), backtest it, plot it",
        description=(
            "Forecast every account x resource of the organisation's usage for the next\n"
            "HORIZON periods (known growth and scheduled jobs applied), optionally backtest\n"
            "the method on rolling origins (MASE, sMAPE, pinball loss, coverage) and plot\n"
            "history, forecast and bands for chosen accounts."
        ),
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("org_dir", type=Path, help="organisation folder (organisation.yaml, usage.csv)")
    p.add_argument("--horizon", type=_positive, default=24, help="periods to forecast (default 24)")
    p.add_argument(
        "--method", choices=METHODS, default="auto", help="forecaster (default auto: per series)"
    )
    p.add_argument("--backtest", action="store_true", help="also run a rolling-origin backtest")
    p.add_argument(
        "--windows", type=_positive, default=3, help="backtest origins, one horizon apart (3)"
    )
    p.add_argument("--out", type=Path, default=None, help="folder for forecast, metrics and plots")
    p.add_argument(
        "--format", choices=("csv", "parquet"), default="csv", help="table format (default csv)"
    )
    p.add_argument("--plot", nargs="+", default=[], metavar="ACCOUNT", help="accounts to plot")
    p.add_argument("--no-events", action="store_true", help="do not apply growth and jobs")
    p.add_argument("--seed", type=int, default=0, help="seed of the global model (default 0)")
    p.add_argument("--limit", type=int, default=30, help="rows of each table to print (30)")
    p.set_defaults(func=handle)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def make_forecaster(method: str, seed: int = 0) -> Any:
    """The forecaster named by ``--method``."""
    from planner.forecast import (
        EWM,
        AutoForecaster,
        GlobalGradientBoosting,
        SeasonalNaive,
    )

    makers = {
        "auto": lambda: AutoForecaster(random_state=seed),
        "global": lambda: GlobalGradientBoosting(random_state=seed),
        "snaive24": lambda: SeasonalNaive(season=24),
        "snaive168": lambda: SeasonalNaive(season=168, fallback_season=24),
        "ewm": lambda: EWM(),
    }
    return makers[method]()


def account_usage(usage: pd.DataFrame) -> pd.DataFrame:
    """Usage per account, resource and period (per-workload rows summed)."""
    cols = ["account", "resource", "ts"]
    summed = usage.groupby(cols, observed=True)["value"].sum()
    return summed.reset_index()


def handle(args: argparse.Namespace) -> int:
    """Run ``forecast``."""
    from planner.forecast import apply_events, rolling_origin

    with progress("loading the organisation") as stage:
        org, raw = load_folder(args.org_dir)
        usage = account_usage(raw)
        unknown = sorted(set(args.plot) - set(usage["account"].astype(str)))
        if unknown:
            raise ValueError(
                f"--plot names accounts without usage: {unknown}; "
                f"choose among {sorted(usage['account'].astype(str).unique())[:10]}"
            )
        stage(f"fitting {args.method}")
        est = make_forecaster(args.method, args.seed)
        est.fit(usage)
        forecast = est.predict(args.horizon, QUANTILES)
        if not args.no_events:
            forecast = apply_events(forecast, org.events)
        result = None
        if args.backtest:
            stage("backtesting")
            result = rolling_origin(
                make_forecaster(args.method, args.seed),
                usage,
                horizon=args.horizon,
                n_windows=args.windows,
                quantiles=QUANTILES,
            )
    choice = getattr(est, "choice_", None)
    console.print(forecast_table(forecast, choice, args.horizon, args.limit))
    if result is not None:
        console.print(metrics_table(result.per_series, args.limit))
        console.print(overall_line(result.overall, len(result.origins), args.horizon))
    if args.out is not None:
        written = write_outputs(args.out, args.format, forecast, result, choice)
        for account in args.plot:
            png = plot_account(usage, forecast, account, history=max(7 * 24, 4 * args.horizon))
            path = args.out / f"forecast_{_safe(account)}.png"
            write_atomic(path, png)
            written.append(path)
        console.print("Written: " + ", ".join(str(p) for p in written))
    elif args.plot:
        console.print("[yellow]--plot needs --out DIR to write the PNG files[/]")
    return 0


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name)


def _table_bytes(df: pd.DataFrame, fmt: str) -> bytes:
    if fmt == "parquet":
        buf = io.BytesIO()
        df.to_parquet(buf, index=False)
        return buf.getvalue()
    return df.to_csv(index=False).encode()


def write_outputs(
    out: Path,
    fmt: str,
    forecast: pd.DataFrame,
    result: Any,
    choice: pd.DataFrame | None,
) -> list[Path]:
    """Write forecast (and metrics, and the per-series model choice) tables; return the paths."""
    tables: dict[str, pd.DataFrame] = {"forecast": forecast}
    if choice is not None:
        tables["model_choice"] = choice
    if result is not None:
        tables["metrics"] = result.per_series
        tables["metrics_overall"] = (
            result.overall.rename("value").rename_axis("metric").reset_index()
        )
        tables["backtest_forecasts"] = result.forecasts
    paths = []
    for name, df in tables.items():
        path = out / f"{name}.{fmt}"
        write_atomic(path, _table_bytes(df, fmt))
        paths.append(path)
    return paths


def forecast_table(
    forecast: pd.DataFrame, choice: pd.DataFrame | None, horizon: int, limit: int
) -> Table:
    """Per series: mean P50, peak P90 and P99 over the horizon, and the chosen model."""
    summary = forecast.groupby(["account", "resource"], observed=True).agg(
        p50=("q0.5", "mean"), p90=("q0.9", "max"), p99=("q0.99", "max")
    )
    if choice is not None:
        summary = summary.join(choice.set_index(["account", "resource"])["model"])
    summary = summary.sort_values("p99", ascending=False).reset_index()
    table = Table(title=f"Forecast, next {horizon} periods (largest first)")
    for col in ("account", "resource", "mean P50", "peak P90", "peak P99"):
        table.add_column(col, justify="left" if col in ("account", "resource") else "right")
    if choice is not None:
        table.add_column("model")
    for row in summary.head(limit).itertuples(index=False):
        cells = [str(row.account), str(row.resource), _num(row.p50), _num(row.p90), _num(row.p99)]
        if choice is not None:
            cells.append(str(row.model))
        table.add_row(*cells)
    if len(summary) > limit:
        table.caption = f"{len(summary) - limit} more series in the written table"
    return table


def metrics_table(per_series: pd.DataFrame, limit: int) -> Table:
    """Backtest metrics per series, worst MASE first."""
    table = Table(title="Backtest per series (worst MASE first)")
    cols = ("account", "resource", "MASE", "sMAPE %", "pinball P90", "cover P90", "cover P99")
    for col in cols:
        table.add_column(col, justify="left" if col in ("account", "resource") else "right")
    rows = per_series.sort_values("mase", ascending=False, na_position="last")
    for r in rows.head(limit).to_dict("records"):
        table.add_row(
            str(r["account"]),
            str(r["resource"]),
            _num(r["mase"]),
            _num(r["smape"]),
            _num(r["pinball_q0.9"]),
            f"{r['coverage_q0.9']:.0%}",
            f"{r['coverage_q0.99']:.0%}",
        )
    return table


def overall_line(overall: pd.Series, n_origins: int, horizon: int) -> str:
    """One-line summary of the overall backtest metrics."""
    return (
        f"Overall ({n_origins} origins x {horizon} periods, {int(overall['series'])} series): "
        f"MASE {overall['mase']:.3f} (median {overall['mase_median']:.3f}), "
        f"sMAPE {overall['smape']:.1f} %, scaled pinball P90 {overall['spinball_q0.9']:.3f}, "
        f"coverage P90 {overall['coverage_q0.9']:.1%}, P99 {overall['coverage_q0.99']:.1%}"
    )


def _num(value: Any) -> str:
    if not isinstance(value, int | float | np.number) or not np.isfinite(float(value)):
        return "-"
    value = float(value)
    return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"


def plot_account(
    usage: pd.DataFrame, forecast: pd.DataFrame, account: str, *, history: int = 168
) -> bytes:
    """PNG of one account: recent history, P50 forecast, P50-P90 and P90-P99 bands per resource."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = usage[usage["account"].astype(str) == account]
    fc = forecast[forecast["account"].astype(str) == account]
    resources = sorted(set(hist["resource"].astype(str)) | set(fc["resource"].astype(str)))
    fig, axes = plt.subplots(
        len(resources), 1, figsize=(10, 2.8 * len(resources)), squeeze=False, sharex=True
    )
    for ax, res in zip(axes[:, 0], resources, strict=True):
        h = hist[hist["resource"].astype(str) == res].sort_values("ts").tail(history)
        f = fc[fc["resource"].astype(str) == res].sort_values("ts")
        ax.plot(h["ts"], h["value"], color="black", lw=1.0, label="history")
        ax.fill_between(
            f["ts"], f["q0.9"], f["q0.99"], color="tab:blue", alpha=0.15, label="P90-P99"
        )
        ax.fill_between(
            f["ts"], f["q0.5"], f["q0.9"], color="tab:blue", alpha=0.35, label="P50-P90"
        )
        ax.plot(f["ts"], f["q0.5"], color="tab:blue", lw=1.5, label="P50")
        ax.set_ylabel(res)
        ax.grid(alpha=0.3)
    axes[0, 0].set_title(f"{account}: history and forecast")
    axes[0, 0].legend(loc="upper left", fontsize=8, ncol=4)
    fig.autofmt_xdate()
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    plt.close(fig)
    return buf.getvalue()
