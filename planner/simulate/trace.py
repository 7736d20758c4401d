"""The replayed world: per-workload usage on an hourly grid, aggregated by the current placement.

Usage is held as one dense array ``(workloads, resources, hours)`` so that each cycle can sum it
into accounts under whatever placement a policy has reached (workloads move with migrations; a
moved workload's history moves with it, which is what a forecaster of the new account should see).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from models import Organisation


@dataclass(frozen=True)
class Trace:
    """Hourly usage per workload.

    Attributes
    ----------
    times
        Start of each step (regular, ``step`` apart), naive UTC.
    workloads
        Workload ids (rows of ``values``).
    resources
        Resource names (second axis of ``values``).
    values
        ``(len(workloads), len(resources), len(times))``; missing samples are 0.
    home
        The account each workload is in at the start.
    step
        Sampling step (the organisation's period).
    """

    times: pd.DatetimeIndex
    workloads: tuple[str, ...]
    resources: tuple[str, ...]
    values: np.ndarray
    home: Mapping[str, str]
    step: pd.Timedelta

    @property
    def n_hours(self) -> int:
        """Number of steps."""
        return len(self.times)

    def index_of(self, when: pd.Timestamp) -> int:
        """Position of ``when`` on the grid (it must be a step boundary inside or at the end)."""
        pos = (pd.Timestamp(when) - self.times[0]) / self.step
        if pos != int(pos) or not 0 <= pos <= self.n_hours:
            raise ValueError(
                f"{when} is not a step of the trace ({self.times[0]} + k x {self.step})"
            )
        return int(pos)

    def by_account(
        self, placement: Mapping[str, str], accounts: Sequence[str], lo: int, hi: int
    ) -> np.ndarray:
        """Usage summed per account over steps ``[lo, hi)``: ``(len(accounts), resources, hi-lo)``."""
        pos = {a: i for i, a in enumerate(accounts)}
        out = np.zeros((len(accounts), len(self.resources), max(0, hi - lo)))
        rows = np.array([pos[placement[w]] for w in self.workloads], dtype=np.int64)
        np.add.at(out, rows, self.values[:, :, lo:hi])
        return out

    def history(
        self, placement: Mapping[str, str], accounts: Sequence[str], lo: int, hi: int
    ) -> pd.DataFrame:
        """Long account-level usage ``account, resource, ts, value`` over steps ``[lo, hi)``."""
        arr = self.by_account(placement, accounts, lo, hi)
        n_a, n_r, n_t = arr.shape
        return pd.DataFrame(
            {
                "account": np.repeat(np.asarray(accounts, dtype=object), n_r * n_t),
                "resource": np.tile(np.repeat(np.asarray(self.resources, dtype=object), n_t), n_a),
                "ts": np.tile(self.times[lo:hi].to_numpy(), n_a * n_r),
                "value": arr.reshape(-1),
            }
        )

    def workload_history(self, placement: Mapping[str, str], lo: int, hi: int) -> pd.DataFrame:
        """Long per-workload usage ``account, resource, ts, value, workload`` over ``[lo, hi)``,
        each workload under the account it is placed in now."""
        n_w, n_r, _ = self.values.shape
        n_t = max(0, hi - lo)
        owner = np.asarray([placement[w] for w in self.workloads], dtype=object)
        return pd.DataFrame(
            {
                "account": np.repeat(owner, n_r * n_t),
                "resource": np.tile(np.repeat(np.asarray(self.resources, dtype=object), n_t), n_w),
                "ts": np.tile(self.times[lo:hi].to_numpy(), n_w * n_r),
                "value": self.values[:, :, lo:hi].reshape(-1),
                "workload": np.repeat(np.asarray(self.workloads, dtype=object), n_r * n_t),
            }
        )


def _naive(ts: pd.Series) -> pd.Series:
    out = pd.to_datetime(ts)
    if getattr(out.dt, "tz", None) is not None:
        out = out.dt.tz_convert("UTC").dt.tz_localize(None)
    return out


def build_trace(org: Organisation, usage: pd.DataFrame) -> Trace:
    """Put a long usage table on the organisation's period grid, one row per workload.

    Rows without a ``workload`` column (or with an empty one) form one pseudo-workload per
    account, ``<account>/*``, which never moves. Samples finer than the period are reduced to
    the period's peak (as the planner's need profiles do), gaps are 0.

    Raises
    ------
    ValueError
        When the usage is empty, names unknown accounts or resources, or puts one workload in
        two accounts.
    """
    if usage.empty:
        raise ValueError("usage has no rows: nothing to replay")
    step = pd.Timedelta(minutes=org.rules.period_minutes)
    df = pd.DataFrame(
        {
            "account": usage["account"].astype(str).to_numpy(),
            "resource": usage["resource"].astype(str).to_numpy(),
            "ts": _naive(usage["ts"]).to_numpy(),
            "value": pd.to_numeric(usage["value"]).to_numpy(dtype=float),
        }
    )
    if "workload" in usage.columns:
        wl = usage["workload"].astype(object).where(usage["workload"].notna(), None)
        df["workload"] = [
            w if isinstance(w, str) and w else f"{a}/*"
            for w, a in zip(wl, df["account"], strict=True)
        ]
    else:
        df["workload"] = df["account"] + "/*"
    unknown = sorted(set(df["account"]) - set(org.account_ids))
    if unknown:
        raise ValueError(f"usage names accounts not in the organisation: {unknown[:8]}")
    bad_res = sorted(set(df["resource"]) - set(org.resource_names))
    if bad_res:
        raise ValueError(f"usage names resources not in the organisation: {bad_res[:8]}")
    homes = df.groupby("workload")["account"].nunique()
    if (homes > 1).any():
        raise ValueError(
            f"workload(s) {list(homes[homes > 1].index[:5])} appear under two accounts in usage"
        )
    start = df["ts"].min().floor(step)
    df["t"] = ((df["ts"] - start) // step).astype(np.int64)
    summed = df.groupby(["workload", "resource", "ts", "t"], sort=False)["value"].sum()
    peaks = summed.groupby(level=["workload", "resource", "t"]).max().reset_index()
    workloads = tuple(sorted(df["workload"].unique()))
    resources = tuple(org.resource_names)
    n_t = int(peaks["t"].max()) + 1
    values = np.zeros((len(workloads), len(resources), n_t))
    w_idx = pd.Index(workloads).get_indexer(pd.Index(peaks["workload"]))
    r_idx = pd.Index(resources).get_indexer(pd.Index(peaks["resource"]))
    values[w_idx, r_idx, peaks["t"].to_numpy()] = peaks["value"].to_numpy()
    home = dict(df.groupby("workload")["account"].first())
    times = pd.date_range(start, periods=n_t, freq=step)
    return Trace(times, workloads, resources, values, home, step)
