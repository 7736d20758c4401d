"""Reading an organisation folder and writing outputs atomically.

An organisation folder holds:

``organisation.yaml`` (or ``.yml`` / ``.json``)
    resources, parent, accounts, workloads, templates, rules, events, state: see
    :class:`models.Organisation`.
``usage.csv``, ``usage.csv.gz`` or ``usage.parquet``
    long format: ``account, resource, ts, value`` and optionally ``workload``.
``dependencies.csv`` (optional)
    ``source, target, weight, critical``: workload or account ids.

Validation runs in two layers: each record on its own (types, signs, units), then the
cross-references (unknown ids, duplicates, floors above capacity, ...). Every problem of a file is
reported at once, each naming the file, the record, the field and the fix.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import ValidationError

from models import DependencyEdge, Organisation
from planner.errors import InputError, Problem

ORG_FILES = ("organisation.yaml", "organisation.yml", "organisation.json")
USAGE_FILES = ("usage.parquet", "usage.csv", "usage.csv.gz")
DEPENDENCY_FILE = "dependencies.csv"
USAGE_COLUMNS = ("account", "resource", "ts", "value")
MAX_ROWS_LISTED = 8


def write_atomic(path: str | os.PathLike[str], data: str | bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new, never half of one.

    The data goes to a temporary file in the same folder, is flushed to disk, then renamed over
    ``path``. Missing parent folders are created. The file gets the usual permissions
    (``0666`` less the umask), not the temporary file's private ones.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(raw)
            fh.flush()
            os.fsync(fh.fileno())
        # mkstemp makes the file private (0600); give it the mode a plain open() would
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def load(path: str | os.PathLike[str]) -> tuple[Organisation, pd.DataFrame]:
    """Load and validate an organisation folder: the organisation and its usage table.

    Raises
    ------
    InputError
        Listing every problem found, each with its file, record, field and fix.
    """
    folder = Path(path)
    org = load_organisation(folder)
    usage = load_usage(folder, org)
    return org, usage


def load_organisation(path: str | os.PathLike[str]) -> Organisation:
    """Load ``organisation.yaml`` (and ``dependencies.csv`` when present) from a folder.

    ``path`` may also name the YAML/JSON file itself.
    """
    given = Path(path)
    if given.is_file():
        folder, org_file = given.parent, given
    else:
        folder = given
        if not folder.is_dir():
            raise InputError(
                [Problem(str(given), "", "no such folder; give the path of an organisation folder")]
            )
        found = [folder / name for name in ORG_FILES if (folder / name).is_file()]
        if not found:
            raise InputError(
                [
                    Problem(
                        str(folder),
                        "",
                        f"has no {ORG_FILES[0]}; create one (see README, 'Input format') or run "
                        "'quota-planner demo --write-demo DIR' for an example",
                    )
                ]
            )
        org_file = found[0]
    data = _read_mapping(org_file)
    edges, edge_problems = _read_edges(folder / DEPENDENCY_FILE)
    if "edges" in data and edges:
        edge_problems.append(
            Problem(
                org_file.name,
                "edges",
                f"edges are given both here and in {DEPENDENCY_FILE}; keep one of the two",
            )
        )
    if edges:
        data["edges"] = edges
    problems = list(edge_problems)
    try:
        org = Organisation.model_validate(data)
    except ValidationError as exc:
        problems.extend(_pydantic_problems(exc, org_file.name, edge_rows=bool(edges)))
        raise InputError(problems) from None
    if problems:
        raise InputError(problems)
    return org


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError([Problem(path.name, "", f"cannot be read ({exc})")]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        reason = getattr(exc, "problem", None) or str(exc)
        raise InputError(
            [Problem(path.name, where, f"is not valid YAML ({reason}); fix the syntax there")]
        ) from None
    if not isinstance(data, dict):
        raise InputError(
            [
                Problem(
                    path.name,
                    "",
                    "must be a mapping with keys such as resources, parent, accounts; "
                    f"found {type(data).__name__}",
                )
            ]
        )
    return data


def _read_edges(path: Path) -> tuple[list[dict[str, Any]], list[Problem]]:
    if not path.is_file():
        return [], []
    name = path.name
    try:
        df = pd.read_csv(path, dtype={"source": str, "target": str})
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        return [], [Problem(name, "", f"cannot be read as CSV ({exc}); fix the file")]
    missing = [c for c in ("source", "target") if c not in df.columns]
    if missing:
        return [], [
            Problem(
                name,
                "header",
                f"lacks the column(s) {', '.join(missing)}; the header must be "
                "source,target,weight,critical",
            )
        ]
    problems: list[Problem] = []
    edges: list[dict[str, Any]] = []
    for i, row in enumerate(df.to_dict("records")):
        line = i + 2
        edge: dict[str, Any] = {"source": row["source"], "target": row["target"]}
        if "weight" in row and not _is_missing(row["weight"]):
            edge["weight"] = row["weight"]
        if "critical" in row and not _is_missing(row["critical"]):
            crit = _parse_bool(row["critical"])
            if crit is None:
                problems.append(
                    Problem(
                        name,
                        f"line {line}",
                        f"critical = {row['critical']!r} is not a boolean; write true or false",
                    )
                )
                continue
            edge["critical"] = crit
        try:
            DependencyEdge.model_validate(edge)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(x) for x in err["loc"]) or "row"
                problems.append(
                    Problem(
                        name,
                        f"line {line}",
                        f"{field}: {_clean(err['msg'])} (got {err['input']!r})",
                    )
                )
            continue
        edges.append(edge)
    return edges, problems


def _pydantic_problems(exc: ValidationError, file: str, *, edge_rows: bool) -> list[Problem]:
    problems: list[Problem] = []
    for err in exc.errors():
        loc = _loc(err["loc"])
        msg = _clean(err["msg"])
        if err["type"] == "value_error" and not loc:
            # cross-reference layer: one problem per line, each starting with its key path
            for line in msg.splitlines():
                problems.append(_locate(line, file, edge_rows))
            continue
        if err["type"] == "extra_forbidden":
            msg = "is not a known field; check its spelling (see 'quota-planner schema')"
        elif err["type"] == "missing":
            msg = "is required; add it"
        else:
            msg = f"{msg} (got {_short(err.get('input'))})"
        problems.append(_locate(f"{loc}: {msg}" if loc else msg, file, edge_rows))
    return problems


_EDGE = re.compile(r"^edges\[(\d+)\]\.?(\S*)\s*(.*)$", re.S)
_KEY = re.compile(r"^([A-Za-z_][\w.\[\]]*(?: \([^)]*\))?(?:\.[\w\[\]]+)*):?\s+(.*)$", re.S)


def _locate(text: str, file: str, edge_rows: bool) -> Problem:
    if edge_rows:
        m = _EDGE.match(text)
        if m:
            line = int(m.group(1)) + 2
            field = m.group(2).rstrip(":")
            rest = m.group(3)
            return Problem(DEPENDENCY_FILE, f"line {line}", f"{field} {rest}".strip())
    m = _KEY.match(text)
    if m and ("[" in m.group(1) or "." in m.group(1)):
        return Problem(file, m.group(1), m.group(2))
    return Problem(file, "", text)


def _loc(parts: tuple[int | str, ...]) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


def _clean(msg: str) -> str:
    return msg.removeprefix("Value error, ").removeprefix("Assertion failed, ")


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _parse_bool(value: object) -> bool | None:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, int | float) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in ("true", "yes", "y", "1", "t"):
        return True
    if text in ("false", "no", "n", "0", "f", ""):
        return False
    return None


# --------------------------------------------------------------------------- usage


def load_usage(path: str | os.PathLike[str], org: Organisation) -> pd.DataFrame:
    """Read and validate the usage table of an organisation folder (or a usage file itself)."""
    given = Path(path)
    if given.is_file():
        file = given
    else:
        found = [given / n for n in USAGE_FILES if (given / n).is_file()]
        if not found:
            raise InputError(
                [
                    Problem(
                        str(given),
                        "",
                        f"has no usage table; add one of {', '.join(USAGE_FILES)} with the "
                        "columns account,resource,ts,value[,workload]",
                    )
                ]
            )
        if len(found) > 1:
            names = ", ".join(f.name for f in found)
            raise InputError(
                [Problem(str(given), "", f"has several usage tables ({names}); keep one")]
            )
        file = found[0]
    try:
        if file.suffix == ".parquet":
            raw = pd.read_parquet(file)
        else:
            raw = pd.read_csv(file, dtype={"account": str, "resource": str, "workload": str})
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise InputError(
            [Problem(file.name, "", f"cannot be read ({exc}); fix the file")]
        ) from None
    return validate_usage(raw, org, file=file.name)


def validate_usage(usage: pd.DataFrame, org: Organisation, *, file: str = "usage") -> pd.DataFrame:
    """Check a long usage table against ``org`` and return a clean copy.

    The copy has columns ``account, resource, ts, value`` (+ ``workload`` when given), ``ts`` as
    timezone-naive UTC datetimes, ``value`` as float, sorted by series and time.

    Raises
    ------
    InputError
        Every problem found, grouped by kind, each naming the rows (file lines for a CSV).
    """
    problems: list[Problem] = []
    if not isinstance(usage, pd.DataFrame):
        raise InputError(
            [Problem(file, "", f"must be a pandas DataFrame, got {type(usage).__name__}")]
        )
    missing = [c for c in USAGE_COLUMNS if c not in usage.columns]
    if missing:
        raise InputError(
            [
                Problem(
                    file,
                    "header",
                    f"lacks the column(s) {', '.join(missing)}; the columns must be "
                    "account,resource,ts,value and optionally workload",
                )
            ]
        )
    if usage.empty:
        raise InputError(
            [Problem(file, "", "has no rows; the planner needs at least a day of usage history")]
        )
    has_workload = "workload" in usage.columns
    df = usage[[*USAGE_COLUMNS, *(["workload"] if has_workload else [])]].copy()
    df.index = pd.RangeIndex(len(df))
    lines = df.index.to_numpy() + 2  # header is line 1
    for col in ("account", "resource", *(["workload"] if has_workload else [])):
        df[col] = df[col].astype("string")
    ts = pd.to_datetime(df["ts"], errors="coerce", utc=True)
    bad_ts = ts.isna().to_numpy()
    _rows(
        problems,
        file,
        lines,
        bad_ts,
        "ts is not a date-time; write ISO 8601 such as 2013-07-01T00:00:00",
    )
    value = pd.to_numeric(df["value"], errors="coerce")
    not_num = value.isna().to_numpy() & df["value"].notna().to_numpy()
    _rows(
        problems,
        file,
        lines,
        not_num,
        "value is not a number; write a plain number in the resource's unit",
    )
    nan = df["value"].isna().to_numpy() | (value.isna().to_numpy() & ~not_num)
    _rows(
        problems, file, lines, nan, "value is missing or NaN; write the measured amount (0 if idle)"
    )
    vals = value.to_numpy(dtype=float, na_value=np.nan)
    _rows(
        problems,
        file,
        lines,
        ~np.isfinite(vals) & ~np.isnan(vals),
        "value is infinite; write a finite amount",
    )
    _rows(problems, file, lines, vals < 0, "value is negative; usage cannot be below 0")
    accounts = set(org.account_ids)
    resources = set(org.resource_names)
    acc = df["account"].fillna("").to_numpy(dtype=object)
    res = df["resource"].fillna("").to_numpy(dtype=object)
    unknown_acc = ~np.isin(acc, list(accounts))
    _rows(
        problems,
        file,
        lines,
        unknown_acc,
        "account is not an account of organisation.yaml; add the account or fix the name "
        f"(known: {_list(sorted(accounts))})",
        values=acc,
    )
    unknown_res = ~np.isin(res, list(resources))
    _rows(
        problems,
        file,
        lines,
        unknown_res,
        f"resource is not declared under 'resources'; use one of {_list(sorted(resources))}",
        values=res,
    )
    if has_workload:
        owner = {w.id: w.account for w in org.workloads}
        wl = df["workload"].fillna("").to_numpy(dtype=object)
        given = wl != ""
        unknown_wl = given & ~np.isin(wl, list(owner))
        _rows(
            problems,
            file,
            lines,
            unknown_wl,
            "workload is not listed under 'workloads' in organisation.yaml; add it",
            values=wl,
        )
        wrong_owner = np.array(
            [
                bool(g) and w in owner and a in accounts and owner[w] != a
                for g, w, a in zip(given, wl, acc, strict=True)
            ],
            dtype=bool,
        )
        _rows(
            problems,
            file,
            lines,
            wrong_owner,
            "workload belongs to another account in organisation.yaml; fix the account column",
            values=wl,
        )
    if problems:
        raise InputError(problems)

    df["ts"] = ts.dt.tz_localize(None)
    df["value"] = vals
    keys = ["account", "resource", *(["workload"] if has_workload else [])]
    if has_workload:
        df["workload"] = df["workload"].fillna("")
    df["_line"] = lines
    dup = df.duplicated([*keys, "ts"], keep="first").to_numpy()
    _rows(
        problems,
        file,
        lines,
        dup,
        "repeats the account/resource/workload/ts of an earlier row; keep one",
    )
    order_bad = (
        df.groupby(keys, sort=False, observed=True)["ts"].diff() < pd.Timedelta(0)
    ).to_numpy()
    _rows(
        problems,
        file,
        lines,
        order_bad,
        "ts goes back in time within its series; sort the file by series, then ts",
    )
    if problems:
        raise InputError(problems)
    df = df.sort_values([*keys, "ts"], kind="stable").reset_index(drop=True)
    period = pd.Timedelta(minutes=org.rules.period_minutes)
    steps = df.groupby(keys, sort=False, observed=True)["ts"].diff()
    step = pd.Timedelta(steps.dropna().median()) if steps.notna().any() else period
    if pd.isna(step) or step <= pd.Timedelta(0):
        step = period
    if step > period:
        problems.append(
            Problem(
                file,
                "ts",
                f"usage is sampled every {step}, coarser than rules.period_minutes = "
                f"{org.rules.period_minutes}; give finer usage or raise period_minutes",
            )
        )
    gap = (steps > step * 1.5).to_numpy()
    if gap.any():
        gap_lines = df.loc[gap, "_line"].to_numpy()
        problems.append(
            Problem(
                file,
                _row_list(gap_lines),
                f"ts jumps by more than one step ({step}) after the previous row of its series: "
                "the history has gaps; add the missing rows (value 0 if the account was idle)",
            )
        )
    if problems:
        raise InputError(problems)
    return df.drop(columns="_line")


def _rows(
    problems: list[Problem],
    file: str,
    lines: np.ndarray,
    mask: np.ndarray,
    message: str,
    *,
    values: np.ndarray | None = None,
) -> None:
    if not mask.any():
        return
    shown = ""
    if values is not None:
        distinct = list(dict.fromkeys(str(v) for v in values[mask]))
        shown = f" ({_list(distinct)})"
    problems.append(Problem(file, _row_list(lines[mask]), message + shown))


def _row_list(lines: np.ndarray) -> str:
    listed = ", ".join(str(int(x)) for x in lines[:MAX_ROWS_LISTED])
    more = len(lines) - MAX_ROWS_LISTED
    word = "line" if len(lines) == 1 else "lines"
    return f"{word} {listed}" + (f" and {more} more" if more > 0 else "")


def _list(items: list[str]) -> str:
    shown = ", ".join(repr(x) for x in items[:MAX_ROWS_LISTED])
    more = len(items) - MAX_ROWS_LISTED
    return shown + (f" and {more} more" if more > 0 else "")
