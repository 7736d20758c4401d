"""``benchmarks/replay.py`` smoked on the shipped 100-VM organisation (no ../shared needed)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from benchmark_module import load_benchmark

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "tests" / "data" / "bitbrains_100vm"


def _benchmark():
    return load_benchmark("replay")


def test_replay_benchmark_quick_on_a_shipped_organisation(tmp_path: Path) -> None:
    bench = _benchmark()
    # --scenarios: the tables are gathered from each scenario's summary.json
    args = ["--quick", "--org", str(SAMPLE), "--out", str(tmp_path), "--scenarios", SAMPLE.name]
    assert bench.main([*args, "--policies", "static,kueue,kueue-shadow"]) == 0
    table = pd.read_csv(tmp_path / "replay_quick.csv").set_index("policy")
    assert list(table.index) == ["static", "kueue", "kueue-shadow"]
    assert (table["replayed"] == "2013-07-08 00:00:00 .. 2013-07-15 00:00:00").all()
    # reactive borrowing throttles less than fixed quotas; shadows on demand never hurt
    assert table.loc["kueue", "throttled_share"] < table.loc["static", "throttled_share"]
    assert table.loc["kueue-shadow", "throttled_share"] <= table.loc["kueue", "throttled_share"]
    md = (tmp_path / "replay_quick.md").read_text()
    assert "| scenario | policy | throttled_share |" in md
    assert "targets not evaluated" in md  # the program's policies were not asked for
    run = tmp_path / "replay" / "bitbrains_100vm"
    assert (run / "report.md").is_file()
    assert (run / "metrics.csv").is_file()
    assert (run / "summary.json").is_file()


def test_targets_are_judged_from_the_metrics() -> None:
    m = pd.DataFrame(
        {"throttled_share": [4.0, 1.0, 0.2, 0.0], "idle_share": [10.0, 9.0, 8.0, 5.0]},
        index=["greedy", "kueue", "mip", "oracle"],
    )
    tg = _benchmark().targets(m)
    assert tg["cut_vs_greedy"] == 0.95
    assert tg["cut_vs_kueue"] == 0.8
    assert tg["gap_closed"] == 0.8
    assert tg["met_greedy"]
    assert tg["met_kueue"]
    assert tg["met_gap"]
    m.loc["mip", "idle_share"] = 9.5  # more idle than kueue: not met
    assert not _benchmark().targets(m)["met_kueue"]
