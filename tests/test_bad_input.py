"""Malformed organisations: each gives its documented message, exit code 2, no traceback and
no output file."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from orgfolder import BASE_ORG, base_usage, write_folder

from planner.cli import main
from planner.errors import InputError
from planner.io import load


def org_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    org = copy.deepcopy(BASE_ORG)
    change(org)
    return org


def usage_with(change: Callable[[pd.DataFrame], pd.DataFrame]) -> pd.DataFrame:
    return change(base_usage())


def _set(df: pd.DataFrame, row: int, col: str, value: object) -> pd.DataFrame:
    df = df.astype({col: object})
    df.loc[row, col] = value
    return df


# name -> (how to build the folder, fragments the message must contain)
CASES: dict[str, tuple[Callable[[Path], Path], list[str]]] = {
    "missing folder": (lambda p: p / "nope", ["no such folder"]),
    "no organisation file": (
        lambda p: (p.mkdir(), p)[1],
        ["has no organisation.yaml", "create one"],
    ),
    "bad yaml": (
        lambda p: _raw_yaml(p, "name: x\naccounts: [\n  - id: a\n"),
        ["organisation.yaml", "line", "not valid YAML"],
    ),
    "yaml not a mapping": (
        lambda p: _raw_yaml(p, "- just\n- a list\n"),
        ["organisation.yaml", "must be a mapping"],
    ),
    "missing usage file": (
        lambda p: (write_folder(p), (p / "usage.csv").unlink(), p)[2],
        ["has no usage table", "account,resource,ts,value"],
    ),
    "empty usage": (
        lambda p: write_folder(p, usage=base_usage().iloc[:0]),
        ["usage.csv", "has no rows"],
    ),
    "usage missing a column": (
        lambda p: write_folder(p, usage=base_usage().drop(columns="value")),
        ["usage.csv", "header", "value"],
    ),
    "unknown account in usage": (
        lambda p: write_folder(p, usage=usage_with(lambda d: _set(d, 3, "account", "ghost"))),
        ["usage.csv", "line 5", "account is not an account", "'ghost'"],
    ),
    "unknown resource in usage": (
        lambda p: write_folder(p, usage=usage_with(lambda d: _set(d, 0, "resource", "gpu"))),
        ["usage.csv", "line 2", "resource is not declared", "'gpu'"],
    ),
    "negative usage": (
        lambda p: write_folder(p, usage=usage_with(lambda d: _set(d, 10, "value", -4.0))),
        ["usage.csv", "line 12", "negative"],
    ),
    "NaN usage": (
        lambda p: write_folder(p, usage=usage_with(lambda d: _set(d, 7, "value", np.nan))),
        ["usage.csv", "line 9", "missing or NaN"],
    ),
    "non-numeric usage": (
        lambda p: write_folder(p, usage=usage_with(lambda d: _set(d, 7, "value", "lots"))),
        ["usage.csv", "line 9", "not a number"],
    ),
    "bad timestamp": (
        lambda p: write_folder(p, usage=usage_with(lambda d: _set(d, 2, "ts", "yesterday"))),
        ["usage.csv", "line 4", "ts is not a date-time"],
    ),
    "timestamps out of order": (
        lambda p: write_folder(p, usage=usage_with(lambda d: d.iloc[[0, 2, 1, *range(3, len(d))]])),
        ["usage.csv", "goes back in time", "sort the file"],
    ),
    "gap in the history": (
        lambda p: write_folder(p, usage=usage_with(lambda d: d.drop(index=[5, 6, 7]))),
        ["usage.csv", "gaps", "add the missing rows"],
    ),
    "duplicate usage rows": (
        lambda p: write_folder(p, usage=usage_with(lambda d: pd.concat([d, d.iloc[[4]]]))),
        ["usage.csv", "repeats"],
    ),
    "workload of another account": (
        lambda p: write_folder(p, usage=usage_with(lambda d: _set(d, 1, "workload", "db-1"))),
        ["usage.csv", "line 3", "belongs to another account"],
    ),
    "duplicate account ids": (
        lambda p: write_folder(p, org_with(lambda o: o["accounts"].append({"id": "web"}))),
        ["organisation.yaml", "accounts[3]", "repeats the id 'web'"],
    ),
    "floors exceed capacity": (
        lambda p: write_folder(p, org_with(lambda o: o["accounts"][0].update(floor={"cpu": 99}))),
        ["organisation.yaml", "floors for cpu add up to 104", "lower some floors"],
    ),
    "wrong units": (
        lambda p: write_folder(
            p, org_with(lambda o: o["accounts"][1]["quota"].update(memory="4 GHz"))
        ),
        ["organisation.yaml", "accounts[1].quota.memory", "does not convert", "GiB"],
    ),
    "unknown field (typo)": (
        lambda p: write_folder(p, org_with(lambda o: o["accounts"][0].update(qouta={"cpu": 1}))),
        ["organisation.yaml", "accounts[0].qouta", "not a known field"],
    ),
    "negative quota": (
        lambda p: write_folder(p, org_with(lambda o: o["accounts"][2]["quota"].update(cpu=-3))),
        ["organisation.yaml", "accounts[2].quota", "non-negative"],
    ),
    "unknown resource in quota": (
        lambda p: write_folder(p, org_with(lambda o: o["accounts"][0]["quota"].update(gpu=2))),
        ["organisation.yaml", "accounts[0] (web).quota", "unknown resource 'gpu'"],
    ),
    "workload of an unknown account": (
        lambda p: write_folder(
            p, org_with(lambda o: o["workloads"].append({"id": "x-1", "account": "x"}))
        ),
        ["organisation.yaml", "workloads[3] (x-1).account", "unknown account 'x'"],
    ),
    "edge to an unknown node": (
        lambda p: write_folder(p, edges="source,target,weight,critical\nweb-1,nowhere,1,false\n"),
        ["dependencies.csv", "line 2", "target", "'nowhere'", "neither an account nor a workload"],
    ),
    "edge with a bad flag": (
        lambda p: write_folder(p, edges="source,target,weight,critical\nweb-1,db-1,1,maybe\n"),
        ["dependencies.csv", "line 2", "not a boolean"],
    ),
    "edge with negative weight": (
        lambda p: write_folder(p, edges="source,target,weight,critical\nweb-1,db-1,-1,true\n"),
        ["dependencies.csv", "line 2", "weight"],
    ),
    "missing capacity": (
        lambda p: write_folder(p, org_with(lambda o: o["parent"].pop("capacity"))),
        ["organisation.yaml", "parent.capacity", "is required"],
    ),
}


def _raw_yaml(path: Path, text: str) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "organisation.yaml").write_text(text)
    base_usage().to_csv(path / "usage.csv", index=False)
    return path


def test_the_base_folder_is_valid(tmp_path: Path) -> None:
    org, usage = load(write_folder(tmp_path / "org"))
    assert [a.id for a in org.accounts] == ["web", "batch", "db"]
    assert org.parent.capacity["memory"] == 400.0
    assert len(org.edges) == 2
    assert org.edges[0].critical
    assert len(usage) == 3 * 2 * 48


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input_is_reported_clearly(
    case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    build, fragments = CASES[case]
    folder = build(tmp_path / "org")
    out = tmp_path / "plan.json"
    code = main(["plan", str(folder), "--out", str(out)])
    captured = capsys.readouterr()
    text = " ".join((captured.err + captured.out).split())
    assert code == 2, text
    assert "Traceback" not in text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in: {text}"
    assert not out.exists()


def test_all_problems_of_a_file_come_together(tmp_path: Path) -> None:
    def many(d: pd.DataFrame) -> pd.DataFrame:
        d = _set(d, 1, "value", -1.0)
        d = _set(d, 2, "account", "ghost")
        return _set(d, 3, "resource", "gpu")

    with pytest.raises(InputError) as info:
        load(write_folder(tmp_path / "org", usage=usage_with(many)))
    messages = [str(p) for p in info.value.problems]
    assert len(messages) == 3
    assert any("negative" in m for m in messages)
    assert any("ghost" in m for m in messages)
    assert any("gpu" in m for m in messages)
