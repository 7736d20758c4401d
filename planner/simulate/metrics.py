"""What users feel, per policy and per account, computed from the recorded series and events.

Definitions (per account ``a``, resource ``r``, replayed step ``t``; ``u`` usage, ``e`` effective
quota = quota + shadow + borrowed - lent, ``period_hours`` the step in hours):

- **throttled** ``= sum_t max(0, u - e) x period_hours``: unit-hours of usage above the quota;
- **idle** ``= sum_t max(0, e - u) x period_hours``: unit-hours allocated and unused;
- **violation hours**: steps (in hours) where, for some resource with ``u > 0``, the coverage
  ``e / u`` is below the account's ``performance_threshold.min_coverage``;
- **churn** ``= sum |quota change|`` of the base quota, from the quota at the start (0 for an
  account the policy opened) through every step;
- **loans, loans reclaimed, shadows, shadows reverted, accounts opened, workloads moved**: counts
  of those events; **seconds per cycle**: wall time of one planning cycle (forecast included).

Resources have different units, so totals are given per resource, and as a unit-free
``*_share``: the sum over resources of the unit-hours divided by the parent's capacity (a share of
one hour of the whole parent).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from planner.simulate.engine import Replay
from planner.simulate.state import FIELDS, PolicyState

COUNT_EVENTS = {
    "loan": "loans",
    "loan_reclaimed": "loans_reclaimed",
    "shadow": "shadows",
    "shadow_reverted": "shadows_reverted",
    "account_opened": "accounts_opened",
    "workload_moved": "workloads_moved",
}


def _ordered(state: PolicyState) -> list[str]:
    """Recorded accounts in the organisation's order (so a resumed replay lists them alike)."""
    known = [a for a in state.org.account_ids if a in state.record]
    return known + sorted(set(state.record) - set(known))


def series_frame(replay: Replay) -> pd.DataFrame:
    """Long table ``policy, account, resource, ts`` + one column per recorded field (played steps)."""
    parts = []
    for name, state in replay.states.items():
        resources = state.org.resource_names
        for account in _ordered(state):
            rec = state.record[account]
            n_r, n_t, _ = rec.shape
            frame = pd.DataFrame(rec.reshape(n_r * n_t, len(FIELDS)), columns=list(FIELDS))
            frame.insert(0, "ts", np.tile(replay.times.to_numpy(), n_r))
            frame.insert(0, "resource", np.repeat(resources, n_t))
            frame.insert(0, "account", account)
            frame.insert(0, "policy", name)
            parts.append(frame.dropna(subset=["usage"]))
    if not parts:
        return pd.DataFrame(columns=["policy", "account", "resource", "ts", *FIELDS])
    return pd.concat(parts, ignore_index=True)


def events_frame(replay: Replay) -> pd.DataFrame:
    """Every event of every policy: ``policy, cycle, ts, kind, account, resource, amount, detail``."""
    rows = [e for s in replay.states.values() for e in s.events]
    cols = ["policy", "cycle", "ts", "kind", "account", "resource", "amount", "detail"]
    return pd.DataFrame(rows, columns=cols)


def cycles_frame(replay: Replay) -> pd.DataFrame:
    """One row per policy and cycle: method, status, fallback, seconds, violations found."""
    return pd.DataFrame([c for s in replay.states.values() for c in s.cycles])


def account_metrics(replay: Replay) -> pd.DataFrame:
    """One row per policy and account (see the module docstring for the definitions)."""
    hours = replay.trace.step / pd.Timedelta(hours=1)
    events = events_frame(replay)
    rows = []
    for name, state in replay.states.items():
        resources = state.org.resource_names
        initial = {a.id: a for a in replay.initial.accounts}
        ev = events[events["policy"] == name]
        for account in _ordered(state):
            rec = state.record[account]
            acc = state.org.account(account)
            u = rec[:, :, FIELDS.index("usage")]
            e = rec[:, :, FIELDS.index("effective")]
            q = rec[:, :, FIELDS.index("quota")]
            played = ~np.isnan(u[0])
            row: dict[str, object] = {"policy": name, "account": account}
            for j, r in enumerate(resources):
                uj, ej, qj = u[j, played], e[j, played], q[j, played]
                row[f"usage_{r}"] = float(uj.sum() * hours)
                row[f"throttled_{r}"] = float(np.clip(uj - ej, 0, None).sum() * hours)
                row[f"idle_{r}"] = float(np.clip(ej - uj, 0, None).sum() * hours)
                q0 = initial[account].quota.get(r, 0.0) if account in initial else 0.0
                path = np.concatenate([[q0], qj])
                row[f"churn_{r}"] = float(np.abs(np.diff(path)).sum())
            need = acc.performance_threshold.min_coverage
            with np.errstate(divide="ignore", invalid="ignore"):
                short = (u > 0) & (e < need * u - 1e-9)
            row["violation_hours"] = float(short[:, played].any(axis=0).sum() * hours)
            mine = ev[ev["account"] == account]["kind"].value_counts()
            for kind, col in COUNT_EVENTS.items():
                row[col] = int(mine.get(kind, 0))
            rows.append(row)
    return pd.DataFrame(rows)


def policy_metrics(replay: Replay) -> pd.DataFrame:
    """One row per policy: totals over accounts, shares of capacity, seconds per cycle."""
    per = account_metrics(replay)
    cycles = cycles_frame(replay)
    cap = replay.initial.parent.capacity
    resources = replay.initial.resource_names
    rows = []
    for name in replay.states:
        sub = per[per["policy"] == name]
        row: dict[str, object] = {"policy": name}
        for key in ("throttled", "idle"):
            share = 0.0
            for r in resources:
                total = float(sub[f"{key}_{r}"].sum())
                row[f"{key}_{r}"] = total
                share += total / cap[r] if cap.get(r, 0) > 0 else 0.0
            row[f"{key}_share"] = share
        for r in resources:
            use = float(sub[f"usage_{r}"].sum())
            row[f"throttled_pct_{r}"] = (
                100.0 * float(sub[f"throttled_{r}"].sum()) / use if use else 0.0
            )
            row[f"churn_{r}"] = float(sub[f"churn_{r}"].sum())
        row["violation_hours"] = float(sub["violation_hours"].sum())
        for col in COUNT_EVENTS.values():
            row[col] = int(sub[col].sum())
        mine = cycles[cycles["policy"] == name] if len(cycles) else cycles
        secs = mine["seconds"].to_numpy(dtype=float) if len(mine) else np.zeros(0)
        row["seconds_per_cycle"] = float(secs.mean()) if secs.size else 0.0
        row["seconds_max"] = float(secs.max()) if secs.size else 0.0
        fb = (
            mine["fallback"].astype(str)
            if len(mine) and "fallback" in mine
            else pd.Series([], dtype=str)
        )
        row["fallback_cycles"] = int((fb != "").sum())
        st = (
            mine["status"].astype(str)
            if len(mine) and "status" in mine
            else pd.Series([], dtype=str)
        )
        row["error_cycles"] = int((st == "error").sum())
        rows.append(row)
    return pd.DataFrame(rows)
