"""Write a replay to a folder (tables and the organisation) and read it back for reports."""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from models import Organisation
from planner.io import write_atomic
from planner.simulate.engine import Replay
from planner.simulate.metrics import (
    account_metrics,
    cycles_frame,
    events_frame,
    policy_metrics,
    series_frame,
)

RUN_FILE = "run.json"


@dataclass
class RunTables:
    """A replay as tables (what the report draws)."""

    config: dict[str, Any]
    organisation: Organisation
    series: pd.DataFrame
    events: pd.DataFrame
    cycles: pd.DataFrame
    accounts: pd.DataFrame
    metrics: pd.DataFrame


def run_tables(replay: Replay) -> RunTables:
    """The tables of a replay held in memory."""
    return RunTables(
        config=dict(replay.config),
        organisation=replay.initial,
        series=series_frame(replay),
        events=events_frame(replay),
        cycles=cycles_frame(replay),
        accounts=account_metrics(replay),
        metrics=policy_metrics(replay),
    )


def _csv(frame: pd.DataFrame) -> bytes:
    return frame.to_csv(index=False).encode()


def write_run(tables: RunTables, out: Path) -> list[Path]:
    """Write ``run.json``, ``organisation.json`` and the CSV tables under ``out`` (atomically)."""
    out.mkdir(parents=True, exist_ok=True)
    files = {
        RUN_FILE: json.dumps(
            {"kind": "quota-planner replay", "config": tables.config}, indent=2
        ).encode(),
        "organisation.json": tables.organisation.model_dump_json(indent=2).encode(),
        "metrics.csv": _csv(tables.metrics),
        "account_metrics.csv": _csv(tables.accounts),
        "events.csv": _csv(tables.events),
        "cycles.csv": _csv(tables.cycles),
        "series.csv.gz": gzip.compress(_csv(tables.series), mtime=0),
    }
    written = []
    for name, data in files.items():
        write_atomic(out / name, data)
        written.append(out / name)
    return written


def is_run_dir(path: Path) -> bool:
    """Whether ``path`` is a folder written by :func:`write_run`."""
    return path.is_dir() and (path / RUN_FILE).is_file()


def read_run(path: Path) -> RunTables:
    """Read a folder written by :func:`write_run`.

    Raises
    ------
    FileNotFoundError
        When ``path`` holds no ``run.json``.
    """
    if not is_run_dir(path):
        raise FileNotFoundError(
            f"{path} is not a replay folder (no {RUN_FILE}); run simulate --out"
        )
    meta = json.loads((path / RUN_FILE).read_text())
    org = Organisation.model_validate_json((path / "organisation.json").read_text())

    def csv(name: str) -> pd.DataFrame:
        data = (path / name).read_bytes()
        if name.endswith(".gz"):
            data = gzip.decompress(data)
        if not data.strip():
            return pd.DataFrame()
        return pd.read_csv(io.BytesIO(data), keep_default_na=False, na_values=[""])

    series = csv("series.csv.gz")
    if "ts" in series:
        series["ts"] = pd.to_datetime(series["ts"])
    return RunTables(
        config=meta["config"],
        organisation=org,
        series=series,
        events=csv("events.csv"),
        cycles=csv("cycles.csv"),
        accounts=csv("account_metrics.csv"),
        metrics=csv("metrics.csv"),
    )
