"""Scenario builders, the embedded demo and the CI samples.

Tests marked ``shared`` need the traces in ``../shared/data`` and are skipped without them (CI);
the others check the shipped files only.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from models import Organisation
from planner.estimate import RecentPeakEstimator
from planner.io import load
from planner.scenarios import (
    BITBRAINS_RESOURCES,
    DEFAULT_DATA_DIR,
    alibaba_graph_tables,
    alibaba_workload_graph,
    bitbrains_organisation,
    block_sizes,
    google_organisation,
    tables_to_models,
)
from planner.scenarios._build import build_organisation, warmup_hours

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "planner" / "demo_data"
TEST_DATA = ROOT / "tests" / "data"
HAVE_TRACES = (DEFAULT_DATA_DIR / "bitbrains_rnd_2013-07_hourly.parquet").is_file()
shared = pytest.mark.skipif(
    not HAVE_TRACES, reason=f"the public traces are not in {DEFAULT_DATA_DIR} (CI has no ../shared)"
)


def account_totals(usage: pd.DataFrame) -> pd.DataFrame:
    """Hourly usage per account and resource (sum of the workloads), wide by account."""
    return usage.groupby(["resource", "ts", "account"])["value"].sum().unstack("account")


# --- the shipped demo (no ../shared needed) ---


def test_demo_loads_with_the_loader_and_with_the_models() -> None:
    org, usage = load(DEMO)
    raw = yaml.safe_load((DEMO / "organisation.yaml").read_text())
    edges = pd.read_csv(DEMO / "dependencies.csv").to_dict("records")
    again = Organisation.model_validate(raw | {"edges": edges})
    assert again.account_ids == org.account_ids
    assert len(org.edges) == len(edges) > 0
    assert 10 <= len(org.accounts) <= 14
    assert {r.name: r.unit for r in org.resources} == {"cpu": "GHz", "memory": "GiB"}
    assert set(usage.columns) >= {"account", "resource", "ts", "value", "workload"}
    days = (usage["ts"].max() - usage["ts"].min()) / pd.Timedelta("1D")
    assert 13 <= days <= 22
    assert {t.application_profile for t in org.templates} == {"web", "batch", "datastore"}
    assert org.events.jobs, "the demo has a scheduled job"


def test_demo_folder_is_small() -> None:
    total = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    assert total < 1_000_000, f"planner/demo_data holds {total} bytes"


def test_demo_growth_event_outgrows_the_ceiling() -> None:
    org, usage = load(DEMO)
    assert org.events.growth
    exceeded = []
    for ev in org.events.growth:
        account = org.account(ev.account)
        resources = [ev.resource] if ev.resource else org.resource_names
        for r in resources:
            series = usage[(usage["account"] == ev.account) & (usage["resource"] == r)]
            series = series.groupby(["account", "resource", "ts"], as_index=False)["value"].sum()
            peak = RecentPeakEstimator(days=7).fit(series).predict(24, (0.5,))["q0.5"].max()
            if peak * ev.multiplier > account.ceiling[r]:
                exceeded.append((ev.account, r))
    assert exceeded, "no growth event takes an account beyond its per-account ceiling"


def test_demo_parent_is_tight_enough_that_not_all_bids_fit() -> None:
    org, usage = load(DEMO)
    series = usage.groupby(["account", "resource", "ts"], as_index=False)["value"].sum()
    predicted = RecentPeakEstimator(days=7).fit(series).predict(24, (0.5,))
    peaks = predicted.groupby(["account", "resource"])["q0.5"].max()
    short = []
    for r in org.resource_names:
        bids = [max(0.0, peaks[(a.id, r)] - a.quota.get(r, 0.0)) for a in org.accounts]
        available = org.parent.capacity[r] - sum(a.quota.get(r, 0.0) for a in org.accounts)
        assert sum(b > 0 for b in bids) >= 2, f"fewer than two accounts bid for {r}"
        if sum(bids) > available:
            short.append(r)
    assert short, "every bid fits in the parent's pool: negotiation would not matter"


def test_demo_edges_join_known_workloads_and_mark_critical_ones() -> None:
    org, _ = load(DEMO)
    ids = {w.id for w in org.workloads}
    assert all(e.source in ids and e.target in ids for e in org.edges)
    assert any(e.critical for e in org.edges)
    owner = {w.id: w.account for w in org.workloads}
    for u, v in org.rules.must_stay_together:
        assert owner[u] == owner[v]


@pytest.mark.parametrize("folder", [DEMO, TEST_DATA])
def test_attribution_is_shipped(folder: Path) -> None:
    text = (folder / "README.md").read_text()
    for needle in ("Shen", "Iosup", "CCGrid 2015", "Luo", "SoCC 2021"):
        assert needle in text, f"{folder}/README.md does not cite {needle}"


# --- the CI samples ---


def test_sample_organisation_loads() -> None:
    org, usage = load(TEST_DATA / "bitbrains_100vm")
    assert len(org.workloads) == 100
    assert len(org.accounts) == 10
    assert usage["workload"].nunique() == 100
    assert usage["ts"].nunique() >= 7 * 24


def test_sample_graphs_become_valid_organisations() -> None:
    nodes = pd.read_csv(TEST_DATA / "alibaba_graphs" / "nodes.csv")
    edges = pd.read_csv(TEST_DATA / "alibaba_graphs" / "edges.csv")
    assert nodes["graph"].nunique() >= 3
    for name, part in nodes.groupby("graph"):
        workloads, deps = tables_to_models(part, edges[edges["graph"] == name])
        assert len(workloads) == int(str(name).split("-")[0][1:])
        accounts = sorted({w.account for w in workloads})
        org = Organisation.model_validate(
            {
                "resources": [{"name": "cpu"}],
                "parent": {"capacity": {"cpu": 10}},
                "accounts": [{"id": a} for a in accounts],
                "workloads": [w.model_dump() for w in workloads],
                "edges": [e.model_dump() for e in deps],
            }
        )
        assert org.edges


def test_block_sizes_cover_every_item_and_leave_no_group_empty() -> None:
    for n, k, seed in ((10, 10, 0), (100, 7, 1), (1000, 1000, 2), (500, 3, 3)):
        sizes = block_sizes(n, k, seed)
        assert sizes.sum() == n
        assert len(sizes) == k
        assert sizes.min() >= 1
    np.testing.assert_array_equal(block_sizes(100, 7, 1), block_sizes(100, 7, 1))
    with pytest.raises(ValueError, match="number of accounts"):
        block_sizes(5, 6, 0)


def test_missing_traces_raise_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"bitbrains_rnd_2013-07_hourly\.parquet.*shared"):
        bitbrains_organisation(tmp_path, n_vms=10, n_accounts=2)
    with pytest.raises(FileNotFoundError, match="google2011"):
        google_organisation(tmp_path, n_jobs=10, n_accounts=2)
    with pytest.raises(FileNotFoundError, match="alibaba_callgraph_patterns"):
        alibaba_workload_graph(tmp_path, n_workloads=10, seed=0)


# --- the builders on the real traces (skipped without ../shared/data) ---


@shared
def test_same_seed_same_organisation_other_seed_other() -> None:
    kw = {"n_vms": 60, "n_accounts": 8, "start": "2013-07-01", "end": "2013-07-08"}
    org1, use1 = bitbrains_organisation(DEFAULT_DATA_DIR, seed=3, **kw)  # type: ignore[arg-type]
    org2, use2 = bitbrains_organisation(DEFAULT_DATA_DIR, seed=3, **kw)  # type: ignore[arg-type]
    org3, _ = bitbrains_organisation(DEFAULT_DATA_DIR, seed=4, **kw)  # type: ignore[arg-type]
    assert org1 == org2
    pd.testing.assert_frame_equal(use1, use2)
    assert org1 != org3


@shared
@pytest.mark.parametrize("tightness", [0.6, 0.8, 1.0])
def test_tightness_rule_recounted_from_the_usage(tightness: float) -> None:
    org, usage = bitbrains_organisation(
        DEFAULT_DATA_DIR, n_vms=80, n_accounts=12, tightness=tightness, seed=1, end="2013-07-15"
    )
    totals = account_totals(usage)
    for r in org.resource_names:
        peaks = totals.loc[r].max()
        assert math.isclose(org.parent.capacity[r], tightness * peaks.sum(), rel_tol=1e-3)
        first = totals.loc[r].iloc[:168]
        for a in org.accounts:
            assert math.isclose(a.ceiling[r], peaks[a.id] / tightness, rel_tol=1e-3, abs_tol=1e-3)
            assert a.floor[r] <= a.quota[r] + 1e-9
            assert a.quota[r] <= first[a.id].quantile(0.95) + 1e-3
        room = org.parent.capacity[r] - org.parent.reserve[r]
        assert sum(a.quota[r] for a in org.accounts) <= room + 1e-3


@shared
def test_large_organisation_uses_replicas_and_validates() -> None:
    org, usage = bitbrains_organisation(
        DEFAULT_DATA_DIR, n_vms=600, n_accounts=300, seed=0, end="2013-07-04"
    )
    assert len(org.accounts) == 300
    assert len(org.workloads) == 600
    replicas = [w.id for w in org.workloads if "-r" in w.id]
    assert replicas
    assert usage["workload"].nunique() == 600
    assert not usage["value"].isna().any()
    assert (usage["value"] >= 0).all()
    per_series = usage.groupby(["workload", "resource"])["ts"].nunique()
    assert per_series.nunique() == 1  # no gaps: every series has every hour


@shared
def test_google_organisation_aggregates_to_hours() -> None:
    org, usage = google_organisation(DEFAULT_DATA_DIR, n_jobs=40, n_accounts=6, seed=2)
    assert len(org.accounts) == 6
    assert usage["ts"].nunique() == 7 * 24
    assert {r.unit for r in org.resources} == {"NCU", "NMU"}
    raw = pd.read_csv(DEFAULT_DATA_DIR / "google2011_jobs_days1-7_5min.csv.gz")
    job = org.workloads[0].id
    mine = usage[(usage["workload"] == job) & (usage["resource"] == "cpu")]["value"].to_numpy()
    steps = raw[raw["job"] == int(job[3:])].set_index("t_index")["cpu_pct"]
    expect = steps.reindex(range(7 * 288), fill_value=0.0).to_numpy().reshape(-1, 12).mean(1)
    np.testing.assert_allclose(mine, expect / 100, atol=1e-4)


@shared
@pytest.mark.parametrize(("n", "seed"), [(14, 0), (120, 1), (2000, 2)])
def test_alibaba_graph_has_the_size_asked_and_the_critical_rule(n: int, seed: int) -> None:
    nodes, edges = alibaba_graph_tables(DEFAULT_DATA_DIR, n_workloads=n, seed=seed, n_accounts=4)
    assert len(nodes) == n
    assert nodes["id"].is_unique
    assert set(edges["source"]) | set(edges["target"]) <= set(nodes["id"])
    label = dict(zip(nodes["id"], nodes["label"], strict=True))
    expect = edges["rpctype"].isin(["db", "mc"]) | edges["target"].map(label).isin(
        ["database", "Memcached"]
    )
    assert (edges["critical"] == expect).all()
    assert nodes["account"].nunique() == 4
    w1, e1 = alibaba_workload_graph(DEFAULT_DATA_DIR, n_workloads=n, seed=seed)
    w2, e2 = alibaba_workload_graph(DEFAULT_DATA_DIR, n_workloads=n, seed=seed)
    assert w1 == w2
    assert e1 == e2


@shared
def test_build_script_reproduces_the_shipped_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_demo", ROOT / "scripts" / "build_demo.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build_demo(DEFAULT_DATA_DIR, tmp_path / "demo")
    for f in sorted(DEMO.iterdir()):
        assert (tmp_path / "demo" / f.name).read_bytes() == f.read_bytes(), f.name


def test_current_quotas_see_only_the_warm_up_of_a_short_window() -> None:
    """A 4-day window replays from its midpoint: usage after it (here a burst of account 1)
    must not leak into the current quotas, floors and limits the baselines start from."""
    hours = 96
    ts = pd.date_range("2013-07-01", periods=hours, freq="h", name="ts")
    quiet = np.full(hours, 1.0)
    burst = np.r_[np.zeros(hours // 2), np.full(hours // 2, 8.0)]
    frame = pd.DataFrame({"vm1": quiet, "vm2": burst}, index=ts)
    org, _ = build_organisation(
        {"cpu": frame, "memory": frame * 2},
        np.array([0, 1]),
        name="warm-up",
        resources=BITBRAINS_RESOURCES,
        tightness=0.8,
        seed=0,
        mean_memory=pd.Series({"vm1": 2.0, "vm2": 2.0}),
    )
    assert warmup_hours(hours) == 48
    assert warmup_hours(24 * 30) == 168
    bursty = org.accounts[1]
    for r in ("cpu", "memory"):
        assert bursty.quota[r] == 0.0
        assert bursty.floor[r] == 0.0
        assert bursty.borrow_limit[r] == 0.0
        # capacity and ceilings are the scenario's sizing (whole window), not a forecast
        assert bursty.ceiling[r] == pytest.approx(8.0 * (2 if r == "memory" else 1) / 0.8)
    assert org.accounts[0].quota["cpu"] == pytest.approx(1.0)


@pytest.mark.parametrize("hours", [2, 3, 47, 96, 200, 335, 336, 337, 720])
def test_the_warm_up_ends_before_the_replay_starts(hours: int) -> None:
    """The scenario's quotas read ``warmup_hours``; the replay starts at ``default_start``:
    the two rules are written apart and must agree that the warm-up is never replayed."""
    from planner.simulate import default_start
    from planner.simulate.trace import Trace

    trace = Trace(
        times=pd.date_range("2013-07-01", periods=hours, freq="h"),
        workloads=("w",),
        resources=("cpu",),
        values=np.zeros((1, 1, hours)),
        home={"w": "a"},
        step=pd.Timedelta(hours=1),
    )
    start = default_start(trace, pd.Timedelta(hours=6))
    assert start - trace.times[0] >= pd.Timedelta(hours=warmup_hours(hours))
