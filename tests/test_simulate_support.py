"""Shared inputs of the replay and report tests (no tests here): the 100-VM sample, tiny cases."""

from __future__ import annotations

from datetime import datetime
from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from models import Organisation
from planner.io import load

SAMPLE = Path(__file__).parent / "data" / "bitbrains_100vm"


@cache
def sample() -> tuple[Organisation, pd.DataFrame]:
    """The shipped 100-VM, 10-account, two-week Bitbrains organisation (loaded once)."""
    return load(SAMPLE)


def tiny_org(**rules: object) -> Organisation:
    """Three accounts sharing 10 units of cpu: a (priority 5), b (priority 3), c (priority 1)."""
    return Organisation.model_validate(
        {
            "name": "tiny",
            "resources": [{"name": "cpu"}],
            "parent": {"capacity": {"cpu": 10.0}},
            "accounts": [
                {"id": "a", "quota": {"cpu": 3.0}, "priority": 5, "borrow_limit": {"cpu": 2.0}},
                {"id": "b", "quota": {"cpu": 3.0}, "priority": 3, "borrow_limit": {"cpu": 5.0}},
                {"id": "c", "quota": {"cpu": 3.0}, "priority": 1, "lend_limit": {"cpu": 2.0}},
            ],
            "workloads": [{"id": f"{x}-1", "account": x} for x in "abc"],
            "rules": rules,
        }
    )


def tiny_usage(values: dict[str, list[float]], start: str = "2013-07-01") -> pd.DataFrame:
    """Hourly usage of the tiny organisation's workloads from per-account value lists."""
    rows = []
    for account, vals in values.items():
        ts = pd.date_range(start, periods=len(vals), freq="h")
        rows += [
            (account, "cpu", t, float(v), f"{account}-1") for t, v in zip(ts, vals, strict=True)
        ]
    return pd.DataFrame(rows, columns=["account", "resource", "ts", "value", "workload"])


def at(hour: int) -> datetime:
    """2013-07-01 plus ``hour`` hours."""
    return datetime(2013, 7, 1) + pd.Timedelta(hours=hour).to_pytimedelta()


def wave(n: int, level: float, amp: float, phase: float = 0.0) -> list[float]:
    """A daily wave (deterministic)."""
    h = np.arange(n)
    return list(np.round(level + amp * np.sin(2 * np.pi * (h + phase) / 24), 3))
