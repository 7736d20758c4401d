"""Per-workload demand: each workload's share of its account's predicted target.

Need profiles are per account. A workload that moves takes part of that demand with it; the part
is its *share*, per resource:

``share[w, r] = peak_w[r] / sum_{v in account(w)} peak_v[r]``

where ``peak_w[r]`` is the highest usage of ``w`` on ``r`` over the most recent ``recent``
window of the usage table (default: the last 7 days before the plan start). Shares of an
account's workloads add up to 1, so the demand that moves plus the demand that stays is exactly
the account's target: ``d_w[r, t] = share[w, r] x d[account(w), r, t]``. Using peaks rather than
means errs on the side of the workloads that drive the account's peak.

Fallbacks, each recorded in :attr:`WorkloadDemand.notes`:

- the usage table has no ``workload`` column, or an account has no workload rows for ``r``:
  that account's workloads share ``r`` equally;
- a workload with no rows (while others of its account have some) has share 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from models import Organisation
from planner.formulation.core import FloatArray


@dataclass(frozen=True)
class WorkloadDemand:
    """Each workload's share of its account's demand, per resource.

    Attributes
    ----------
    workloads
        Workload ids, in the organisation's order.
    accounts
        Owning account of each workload.
    resources
        Resource names (columns of ``share``).
    share
        ``(workloads, resources)`` array in [0, 1]; per account and resource the shares add up
        to 1 (or 0 when the account has no workloads).
    notes
        How fallbacks were applied.
    """

    workloads: list[str]
    accounts: list[str]
    resources: list[str]
    share: FloatArray
    notes: list[str] = field(default_factory=list)

    def index(self) -> dict[str, int]:
        """Position of each workload id."""
        return {w: i for i, w in enumerate(self.workloads)}

    def of(self, workload: str) -> dict[str, float]:
        """Share per resource of one workload."""
        i = self.index()[workload]
        return {r: float(self.share[i, j]) for j, r in enumerate(self.resources)}

    def demand(self, account_demand: FloatArray, account_ids: list[str]) -> FloatArray:
        """``d_w[r, t] = share[w, r] x d[account(w), r, t]`` for every workload.

        Parameters
        ----------
        account_demand
            ``(accounts, resources, periods)`` target demand (``ProblemData.demand``).
        account_ids
            Account ids along the first axis of ``account_demand``.

        Returns
        -------
        numpy.ndarray
            ``(workloads, resources, periods)``.
        """
        pos = {a: i for i, a in enumerate(account_ids)}
        rows = np.array([pos[a] for a in self.accounts], dtype=np.int64)
        if rows.size == 0:
            return np.zeros((0, *account_demand.shape[1:]))
        return self.share[:, :, None] * account_demand[rows]

    @classmethod
    def equal(cls, org: Organisation) -> WorkloadDemand:
        """Equal shares among each account's workloads (no usage per workload)."""
        return cls.from_peaks(org, {}, note="no per-workload usage: equal shares")

    @classmethod
    def from_peaks(
        cls,
        org: Organisation,
        peaks: Mapping[tuple[str, str], float],
        *,
        note: str = "",
    ) -> WorkloadDemand:
        """Shares from given peaks ``{(workload, resource): peak}`` (module docstring rule).

        Parameters
        ----------
        org
            The organisation (workloads and their accounts).
        peaks
            Recent peak usage per workload and resource; absent pairs count as no data.
        note
            Recorded first in ``notes``.
        """
        resources = org.resource_names
        wl = [w.id for w in org.workloads]
        acc = [w.account for w in org.workloads]
        share = np.zeros((len(wl), len(resources)))
        notes = [note] if note else []
        by_account: dict[str, list[int]] = {}
        for i, a in enumerate(acc):
            by_account.setdefault(a, []).append(i)
        for a, idx in by_account.items():
            for j, r in enumerate(resources):
                vals = np.array([max(peaks.get((wl[i], r), 0.0), 0.0) for i in idx])
                has = [(wl[i], r) in peaks for i in idx]
                total = float(vals.sum())
                if total > 0:
                    share[idx, j] = vals / total
                else:
                    share[idx, j] = 1.0 / len(idx)
                    if peaks and not any(has):
                        notes.append(f"{a}: no usage per workload for {r}; equal shares")
        return cls(wl, acc, resources, share, notes)

    @classmethod
    def from_usage(
        cls,
        org: Organisation,
        usage: pd.DataFrame,
        *,
        start: datetime | None = None,
        recent: timedelta = timedelta(days=7),
    ) -> WorkloadDemand:
        """Shares from the ``workload`` column of a long usage table (module docstring rule).

        Parameters
        ----------
        org
            The organisation.
        usage
            Long usage table ``account, resource, ts, value[, workload]``.
        start
            Plan start: only usage before it counts (default: all of it).
        recent
            Length of the window (ending at ``start`` or the last timestamp) whose peaks count.

        Raises
        ------
        ValueError
            When ``recent`` is not positive.
        """
        if recent <= timedelta(0):
            raise ValueError(
                f"The 'recent' parameter of WorkloadDemand.from_usage must be positive. "
                f"Got {recent!r} instead."
            )
        if "workload" not in usage.columns or usage.empty:
            return cls.equal(org)
        df = usage[["workload", "resource", "ts", "value"]].copy()
        df["ts"] = pd.to_datetime(df["ts"], utc=True).dt.tz_localize(None)
        if start is not None:
            end = pd.Timestamp(start)
            end = end.tz_convert(None) if end.tzinfo is not None else end
            df = df[df["ts"] < end]
        if df.empty:
            return cls.equal(org)
        cut = df["ts"].max() - pd.Timedelta(recent)
        df = df[(df["ts"] > cut) & df["workload"].notna() & (df["workload"].astype(str) != "")]
        peaks = df.groupby(["workload", "resource"])["value"].max()
        mapping = {(str(w), str(r)): float(v) for (w, r), v in peaks.items()}
        return cls.from_peaks(org, mapping, note=f"shares of peak usage over the last {recent}")
