"""A small valid organisation folder for tests, written to a temporary path.

Three accounts, two resources, two days of hourly usage with a daily shape; edit the returned
parts and write them again to make a malformed folder.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

BASE_ORG: dict[str, Any] = {
    "name": "tiny",
    "resources": [{"name": "cpu", "unit": "cores"}, {"name": "memory", "unit": "GiB"}],
    "parent": {"capacity": {"cpu": 100, "memory": "400 GiB"}, "reserve": {"cpu": 10}},
    "accounts": [
        {"id": "web", "quota": {"cpu": 30, "memory": 100}, "priority": 5},
        {"id": "batch", "quota": {"cpu": 30, "memory": 100}, "priority": 1},
        {"id": "db", "quota": {"cpu": 20, "memory": 100}, "priority": 3, "floor": {"cpu": 5}},
    ],
    "workloads": [
        {"id": "web-1", "account": "web"},
        {"id": "batch-1", "account": "batch"},
        {"id": "db-1", "account": "db"},
    ],
    "rules": {"period_minutes": 60, "horizon_periods": 12},
}

LEVELS = {"web": (35.0, 90.0), "batch": (20.0, 60.0), "db": (10.0, 80.0)}


def base_usage(days: int = 2) -> pd.DataFrame:
    """Hourly usage with a daily wave, deterministic."""
    ts = pd.date_range("2013-07-01", periods=24 * days, freq="h")
    wave = 1.0 + 0.3 * np.sin(2 * np.pi * ts.hour.to_numpy() / 24)
    rows = []
    for account, (cpu, mem) in LEVELS.items():
        for resource, level in (("cpu", cpu), ("memory", mem)):
            for t, w in zip(ts, wave, strict=True):
                rows.append((account, resource, t.isoformat(), round(level * w, 3), f"{account}-1"))
    return pd.DataFrame(rows, columns=["account", "resource", "ts", "value", "workload"])


BASE_EDGES = "source,target,weight,critical\nweb-1,db-1,10,true\nbatch-1,db-1,2,false\n"


def write_folder(
    path: Path,
    org: dict[str, Any] | None = None,
    usage: pd.DataFrame | None = None,
    edges: str | None = BASE_EDGES,
) -> Path:
    """Write an organisation folder (the base one unless parts are given)."""
    path.mkdir(parents=True, exist_ok=True)
    org = copy.deepcopy(BASE_ORG) if org is None else org
    (path / "organisation.yaml").write_text(yaml.safe_dump(org, sort_keys=False))
    (base_usage() if usage is None else usage).to_csv(path / "usage.csv", index=False)
    if edges is not None:
        (path / "dependencies.csv").write_text(edges)
    return path
