"""Read the public traces of ``../shared/data`` into gap-free hourly per-workload frames.

Bitbrains (GWA-T-12 "Rnd", July 2013)
-------------------------------------
Units: **cpu in GHz** (``cpu_mhz / 1000``, the trace's MHz), **memory in GiB**
(``mem_kb / 2**20``; the trace's "KB" are KiB).

- A VM's *life* runs from its first to its last row with a non-zero provisioned capacity in the
  window. Outside its life it did not exist and uses 0, so VMs created during the month show
  as growth of their account, as they did at Bitbrains. VMs with less than a day (24 rows) of
  life in the window are left out.
- Rows whose provisioned capacity is zero (``cpu_cap_mhz == 0``: the VM was not provisioned
  then; their usage is 0 too, up to a few stray memory readings) count as 0. The data README
  counts 73 such VMs across the trace's files; in the July file 62 VMs have such rows (7,842
  rows; one VM has them for 721 of its hours, so it is left out).
- Missing hours inside a VM's life (the trace has two outages: 2013-07-16 14:00 to 07-17 18:00,
  when only 33 VMs report, and 2013-07-30 22:00 to 07-31 21:00, when none do) are filled with
  the value 24 hours earlier (repeated, so a 29-hour outage takes the day before), then 24
  hours later, then the nearest value. The count of filled values is in ``frame.attrs``.
- More VMs than eligible ones: VM number ``k`` (0-based, beyond the ``n`` eligible) is a
  *replica* ``r = k // n`` of eligible VM ``k % n``: its usage is rolled (circularly, within the
  window) by ``5 x r`` hours, a shift of diurnal phase as for another time zone, and scaled by a
  factor drawn uniformly from [0.8, 1.25] with the seed. Its id is ``vm<id>-r<r>``.

Google cluster trace 2011 (days 1-7)
------------------------------------
Units: **cpu in NCU** and **memory in NMU**: ``cpu_pct / 100`` and ``mem_pct / 100``, i.e. one
unit is the capacity of one normalised machine (the trace's normalisation). The 5-minute steps
are averaged to hours (12 steps); hours in which a job did not run are 0 (the job used
nothing). Time stamps start at a nominal ``2011-05-02 00:00`` (the trace publishes offsets
only). Jobs beyond the 236 in the file are replicas by the Bitbrains rule above.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

BITBRAINS_FILE = "bitbrains_rnd_2013-07_hourly.parquet"
GOOGLE_FILE = "google2011_jobs_days1-7_5min.csv.gz"
ALIBABA_FILE = "alibaba_callgraph_patterns.jsonl.gz"
SOURCES = {
    BITBRAINS_FILE: "the Bitbrains GWA-T-12 trace (http://gwa.ewi.tudelft.nl/datasets/gwa-t-12-bitbrains)",
    GOOGLE_FILE: "the Google cluster-usage trace 2011 (https://github.com/google/cluster-data)",
    ALIBABA_FILE: "the Alibaba microservice trace 2021 (https://github.com/alibaba/clusterdata)",
}
MIN_LIFE_HOURS = 24
REPLICA_SHIFT_HOURS = 5
GOOGLE_ORIGIN = pd.Timestamp("2011-05-02 00:00")


def trace_file(data_dir: Path | str, name: str) -> Path:
    """Path of trace ``name`` in ``data_dir``; a ``FileNotFoundError`` saying where it comes from."""
    path = Path(data_dir) / name
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing. The scenario builders read the public traces prepared in "
            f"../shared/data (see its README.md); this file is derived from "
            f"{SOURCES.get(name, 'a public trace')}. Pass data_dir= pointing at that folder."
        )
    return path


@lru_cache(maxsize=2)
def _bitbrains_raw(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path)


def _fill_gaps(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill NaN by the value 24 h earlier (repeatedly), then 24 h later, then the nearest."""
    out = frame.copy()
    for _ in range(len(out) // 24 + 1):
        if not out.isna().to_numpy().any():
            break
        out = out.fillna(out.shift(24))
    for _ in range(len(out) // 24 + 1):
        if not out.isna().to_numpy().any():
            break
        out = out.fillna(out.shift(-24))
    return out.ffill().bfill().fillna(0.0)


def _replicate(frames: dict[str, pd.DataFrame], n: int, seed: int) -> dict[str, pd.DataFrame]:
    """Extend each frame to ``n`` columns by shifted, scaled replicas (module docstring)."""
    base = list(next(iter(frames.values())).columns)
    if n <= len(base):
        return {r: f.iloc[:, :n] for r, f in frames.items()}
    rng = np.random.default_rng([seed, 3])
    scales = rng.uniform(0.8, 1.25, size=n)
    out: dict[str, pd.DataFrame] = {}
    for r, f in frames.items():
        values = f.to_numpy()
        cols = [values]
        names = list(base)
        for k in range(len(base), n):
            rep, j = divmod(k, len(base))
            col = np.roll(values[:, j], REPLICA_SHIFT_HOURS * rep) * scales[k]
            cols.append(col[:, None])
            names.append(f"{base[j]}-r{rep}")
        out[r] = pd.DataFrame(np.hstack(cols), index=f.index, columns=names)
    return out


def bitbrains_frames(
    data_dir: Path | str,
    *,
    n_vms: int,
    seed: int,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
) -> dict[str, pd.DataFrame]:
    """Hourly per-VM cpu (GHz) and memory (GiB) over ``[start, end)``, ``n_vms`` columns.

    The eligible VMs (a day of life in the window) are sampled with ``seed`` (all of them, in a seeded order, when ``n_vms``
    is larger; then replicas), and the columns are sorted by VM id so that contiguous blocks are
    blocks of neighbouring ids. ``frame.attrs["filled"]`` counts the filled values.
    """
    if not isinstance(n_vms, int) or n_vms < 1:
        raise ValueError(f"The 'n_vms' parameter must be an int >= 1. Got {n_vms!r} instead.")
    raw = _bitbrains_raw(trace_file(data_dir, BITBRAINS_FILE))
    t0 = pd.Timestamp(start) if start is not None else raw["ts"].min().ceil("D")
    t1 = pd.Timestamp(end) if end is not None else raw["ts"].max().floor("h") + pd.Timedelta("1h")
    if t1 <= t0:
        raise ValueError(f"The window [start, end) = [{t0}, {t1}) is empty; end must be later.")
    grid = pd.date_range(t0, t1, freq="h", inclusive="left", name="ts")
    rows = raw[(raw["ts"] >= t0) & (raw["ts"] < t1)]
    real = rows[rows["cpu_cap_mhz"] > 0]
    life = real.groupby("vm")["ts"].agg(["min", "max", "size"])
    eligible = np.sort(life.index[life["size"] >= MIN_LIFE_HOURS].to_numpy())
    if len(eligible) == 0:
        raise ValueError(f"No Bitbrains VM has a day of data in the window [{t0}, {t1}).")
    rng = np.random.default_rng([seed, 0])
    order = rng.permutation(eligible)
    chosen = np.sort(order[: min(n_vms, len(order))])
    rows = rows[rows["vm"].isin(chosen)]
    ts = grid.to_numpy()[:, None]
    alive = (ts >= life.loc[chosen, "min"].to_numpy()) & (ts <= life.loc[chosen, "max"].to_numpy())
    frames: dict[str, pd.DataFrame] = {}
    filled = 0
    for r, col, scale in (("cpu", "cpu_mhz", 1e-3), ("memory", "mem_kb", 2.0**-20)):
        values = rows[col].where(rows["cpu_cap_mhz"] > 0, 0.0)
        wide = rows.assign(v=values).pivot_table(index="ts", columns="vm", values="v")
        wide = wide.reindex(index=grid, columns=chosen) * scale
        filled += int((wide.isna().to_numpy() & alive).sum())
        wide = _fill_gaps(wide).where(alive, 0.0)
        wide.columns = [f"vm{v}" for v in chosen]
        frames[r] = wide.clip(lower=0.0)
    out = _replicate(frames, n_vms, seed)
    for f in out.values():
        f.attrs["filled"] = filled
        f.attrs["eligible"] = len(eligible)
    return out


@lru_cache(maxsize=2)
def _google_hourly(path: Path) -> dict[str, pd.DataFrame]:
    raw = pd.read_csv(path)
    raw["hour"] = raw["t_index"] // 12
    n_hours = int(raw["t_index"].max()) // 12 + 1
    grid = pd.date_range(GOOGLE_ORIGIN, periods=n_hours, freq="h", name="ts")
    jobs = np.sort(raw["job"].unique())
    out = {}
    for r, col in (("cpu", "cpu_pct"), ("memory", "mem_pct")):
        # a step in which the job did not run counts as 0, so sum / 12 is the hourly mean
        wide = raw.pivot_table(index="hour", columns="job", values=col, aggfunc="sum") / 12.0
        wide = wide.reindex(index=range(n_hours), columns=jobs).fillna(0.0) / 100.0
        wide.index = grid
        wide.columns = [f"job{j}" for j in jobs]
        out[r] = wide
    return out


def google_frames(
    data_dir: Path | str,
    *,
    n_jobs: int,
    seed: int,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
) -> dict[str, pd.DataFrame]:
    """Hourly per-job cpu (NCU) and memory (NMU) over ``[start, end)``, ``n_jobs`` columns.

    Jobs are sampled with ``seed`` and sorted by job id (ids grow with submission time).
    """
    if not isinstance(n_jobs, int) or n_jobs < 1:
        raise ValueError(f"The 'n_jobs' parameter must be an int >= 1. Got {n_jobs!r} instead.")
    hourly = _google_hourly(trace_file(data_dir, GOOGLE_FILE))
    cpu = hourly["cpu"]
    t0 = pd.Timestamp(start) if start is not None else cpu.index[0]
    t1 = pd.Timestamp(end) if end is not None else cpu.index[-1] + pd.Timedelta("1h")
    mask = (cpu.index >= t0) & (cpu.index < t1)
    if not mask.any():
        raise ValueError(f"The window [start, end) = [{t0}, {t1}) holds no hour of the trace.")
    active = cpu.loc[mask].sum() > 0
    jobs = np.array(sorted(active[active].index, key=lambda j: int(j[3:])))
    rng = np.random.default_rng([seed, 0])
    chosen = sorted(rng.permutation(jobs)[: min(n_jobs, len(jobs))], key=lambda j: int(j[3:]))
    frames = {r: f.loc[mask, chosen].copy() for r, f in hourly.items()}
    return _replicate(frames, n_jobs, seed)
