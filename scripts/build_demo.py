"""Rebuild the embedded demo organisation and the test samples from ``../shared/data``.

Usage::

    .venv/bin/python scripts/build_demo.py                  # demo + test samples
    .venv/bin/python scripts/build_demo.py --only demo      # planner/demo_data/ only
    .venv/bin/python scripts/build_demo.py --only tests     # tests/data/ only
    .venv/bin/python scripts/build_demo.py --data-dir /path/to/shared/data

Deterministic: the same traces give byte-identical files (gzip without a time stamp, rounded
values, sorted rows). Everything is built by :mod:`planner.scenarios`; what this script adds to
the demo (the growth event, the scheduled job, the must-stay-together pairs) is stated in
:data:`DEMO_RULES` and written into ``planner/demo_data/README.md``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import math
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from models import Organisation  # noqa: E402
from planner.io import write_atomic  # noqa: E402
from planner.profiles import build_need_profiles  # noqa: E402
from planner.scenarios import (  # noqa: E402
    DEFAULT_DATA_DIR,
    alibaba_graph_tables,
    bitbrains_organisation,
)

DEMO = {
    "n_vms": 72,
    "n_accounts": 12,
    "tightness": 0.8,
    "seed": 27,
    "start": "2013-07-01 00:00",
    "end": "2013-07-15 00:00",
}
TEST_ORG = {
    "n_vms": 100,
    "n_accounts": 10,
    "tightness": 0.8,
    "seed": 0,
    "start": "2013-07-01 00:00",
    "end": "2013-07-15 00:00",
}
TEST_GRAPHS = ((12, 0), (14, 3), (40, 1), (120, 2))
GROWTH_OVERSHOOT = 1.5  # the grown median demand is 1.5 x the account's ceiling
GROWTH_DELAY, GROWTH_RAMP = 2, 6  # hours after the plan's start; hours to full growth
DEMO_RULES = f"""\
- **Growth event** (issue 5): the `web` account with the most VMs (ties: the highest CPU
  ceiling) grows, so that the split has workloads to choose from. Its demand is
  multiplied by `m = {GROWTH_OVERSHOOT} x ceiling / predicted median peak` for CPU (the
  planner's own forecast median without the event, its highest hour once the growth is
  complete; rounded up to 0.1), ramping over {GROWTH_RAMP} hours from {GROWTH_DELAY} hours after
  the last usage hour, so even its predicted *median* CPU reaches {GROWTH_OVERSHOOT} x its
  per-account ceiling: not an unlikely peak but the expected demand cannot fit one account, and
  a new one must open.
- **Scheduled job**: the `batch` account with the largest CPU quota runs `nightly-reindex`, half
  its CPU quota more, from 8 to 14 hours after the last usage hour.
- **Must stay together**: the critical dependency edges (calls to a database or Memcached) whose
  both ends lie in the growing account or, when it has none, its heaviest internal edge, so a
  split must keep that pair on one side.
- **Parent capacity**: the scenario rule (`{DEMO["tightness"]} x sum of per-account peaks`) plus
  the growth of the growing account (its ceiling x ({GROWTH_OVERSHOOT} - 1) for CPU), so there is
  room for the new account while the other accounts still compete: their bids do not all fit.
"""


def _gzip_csv(frame: pd.DataFrame) -> bytes:
    text = frame.to_csv(index=False, date_format="%Y-%m-%dT%H:%M:%S", lineterminator="\n")
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9, mtime=0) as gz:
        gz.write(text.encode())
    return buf.getvalue()


def _drop_empty(value: Any) -> Any:
    """Drop None and empty containers from mappings, recursively (they are the defaults)."""
    if isinstance(value, dict):
        out = {k: _drop_empty(v) for k, v in value.items()}
        return {k: v for k, v in out.items() if v is not None and v != [] and v != {}}
    if isinstance(value, list):
        return [_drop_empty(v) for v in value]
    return value


def _yaml(org: Organisation, header: str) -> str:
    data: dict[str, Any] = org.model_dump(mode="json", exclude={"edges"})
    data = _drop_empty({k: v for k, v in data.items() if k not in ("rules", "state")})
    data["rules"] = org.rules.model_dump(mode="json")
    body = yaml.safe_dump(data, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def _edges_csv(org: Organisation) -> str:
    rows = [f"{e.source},{e.target},{e.weight:.4f},{str(e.critical).lower()}" for e in org.edges]
    return "source,target,weight,critical\n" + "".join(r + "\n" for r in rows)


def write_org_folder(org: Organisation, usage: pd.DataFrame, folder: Path, header: str) -> None:
    """Write ``organisation.yaml``, ``usage.csv.gz`` and ``dependencies.csv`` into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    write_atomic(folder / "organisation.yaml", _yaml(org, header))
    write_atomic(folder / "usage.csv.gz", _gzip_csv(usage))
    write_atomic(folder / "dependencies.csv", _edges_csv(org))


def _median_peak(
    org: Organisation, usage: pd.DataFrame, account: str, resource: str, since: timedelta
) -> float:
    """Highest hour of the planner's own forecast median for ``account`` (no events yet), from
    ``since`` after the plan's start on (once the growth has ramped up)."""
    profiles = build_need_profiles(org, usage)
    rd = next(p for p in profiles if p.account == account).demand[resource]
    first = rd.periods[0] + since
    return float(max(v for t, v in zip(rd.periods, rd.quantiles[0.5], strict=True) if t >= first))


def demo_organisation(data_dir: Path) -> tuple[Organisation, pd.DataFrame, dict[str, Any]]:
    """The demo: the scenario organisation plus the events and rules of :data:`DEMO_RULES`."""
    org, usage = bitbrains_organisation(
        data_dir,
        n_vms=DEMO["n_vms"],
        n_accounts=DEMO["n_accounts"],
        tightness=DEMO["tightness"],
        seed=DEMO["seed"],
        start=DEMO["start"],
        end=DEMO["end"],
        dependencies=True,
    )
    web = [a for a in org.accounts if a.application_profile == "web"]
    batch = [a for a in org.accounts if a.application_profile == "batch"]
    n_vms = {a.id: sum(w.account == a.id for w in org.workloads) for a in org.accounts}
    grower = max(web, key=lambda a: (n_vms[a.id], a.ceiling["cpu"]))
    job_account = max(batch, key=lambda a: a.quota["cpu"])
    last = pd.Timestamp(usage["ts"].max()).to_pydatetime()
    plan_start = last + timedelta(hours=1)
    peak = _median_peak(org, usage, grower.id, "cpu", timedelta(hours=GROWTH_DELAY + GROWTH_RAMP))
    multiplier = math.ceil(10 * GROWTH_OVERSHOOT * grower.ceiling["cpu"] / peak) / 10
    growth = {
        "account": grower.id,
        "resource": "cpu",
        "start": plan_start + timedelta(hours=GROWTH_DELAY),
        "multiplier": multiplier,
        "ramp_hours": float(GROWTH_RAMP),
    }
    job = {
        "account": job_account.id,
        "resource": "cpu",
        "start": plan_start + timedelta(hours=8),
        "end": plan_start + timedelta(hours=14),
        "amount": round(0.5 * job_account.quota["cpu"], 4),
        "name": "nightly-reindex",
    }
    owner = {w.id: w.account for w in org.workloads}
    inside = [e for e in org.edges if owner[e.source] == owner[e.target] == grower.id]
    together = [(e.source, e.target) for e in inside if e.critical]
    if not together and inside:
        heaviest = max(inside, key=lambda e: (e.weight, e.source, e.target))
        together = [(heaviest.source, heaviest.target)]
    extra_cpu = grower.ceiling["cpu"] * (GROWTH_OVERSHOOT - 1)
    capacity = dict(org.parent.capacity)
    capacity["cpu"] = round(capacity["cpu"] + extra_cpu, 4)
    data = org.model_dump(mode="json")
    data["name"] = "demo: 12 sub-accounts of Bitbrains VMs"
    data["parent"]["capacity"] = capacity
    data["events"] = {"growth": [growth], "jobs": [job]}
    data["rules"] = data["rules"] | {"must_stay_together": together, "max_new_accounts": 2}
    demo = Organisation.model_validate(data)
    facts = {
        "grower": grower.id,
        "multiplier": multiplier,
        "median_peak": peak,
        "ceiling": grower.ceiling["cpu"],
        "job_account": job_account.id,
        "plan_start": plan_start,
    }
    return demo, usage, facts


def _size(path: Path) -> str:
    return f"{path.stat().st_size / 1024:.0f} KB"


def build_demo(data_dir: Path, out: Path) -> None:
    """Write the demo folder ``out`` (organisation.yaml, usage.csv.gz, dependencies.csv, README)."""
    org, usage, facts = demo_organisation(data_dir)
    header = (
        "# The quota-planner demo organisation, generated by scripts/build_demo.py from real\n"
        "# Bitbrains VMs (GWA-T-12 Rnd, July 2013) and an Alibaba service topology (2021).\n"
        "# Units: cpu in GHz (Bitbrains cpu_mhz / 1000), memory in GiB (mem_kb / 2**20).\n"
        "# See README.md for the rules. Edges are in dependencies.csv.\n"
    )
    write_org_folder(org, usage, out, header)
    write_atomic(out / "README.md", _demo_readme(org, usage, facts, out))


def _demo_readme(org: Organisation, usage: pd.DataFrame, facts: dict[str, Any], out: Path) -> str:
    accounts = "\n".join(
        f"| {a.id} | {a.application_profile} | {a.priority} | "
        f"{sum(w.account == a.id for w in org.workloads)} | {a.quota['cpu']:.2f} | "
        f"{a.ceiling['cpu']:.2f} | {a.quota['memory']:.2f} | {a.ceiling['memory']:.2f} |"
        for a in org.accounts
    )
    return f"""# The demo organisation

Generated by `scripts/build_demo.py` from the public traces in `../shared/data`; do not edit by
hand: rerun the script (deterministic, byte-identical output).

## Sources and citations

- **Bitbrains** GWA-T-12, "Rnd" trace, July 2013 (public use): S. Shen, V. van Beek, A. Iosup,
  "Statistical Characterization of Business-Critical Workloads Hosted in Cloud Datacenters",
  CCGrid 2015. <http://gwa.ewi.tudelft.nl/datasets/gwa-t-12-bitbrains>
- **Alibaba** microservice trace 2021, call-graph patterns: S. Luo et al., "Characterizing
  Microservice Dependency and Performance: Alibaba Trace Analysis", SoCC 2021. <https://github.com/alibaba/clusterdata>

## What is here

| file | content |
|---|---|
| `organisation.yaml` | resources, parent, {len(org.accounts)} sub-accounts, {len(org.workloads)} workloads (VMs), templates, rules, events |
| `usage.csv.gz` | hourly usage of each VM, long format `account, resource, ts, value, workload`, {usage["ts"].min():%Y-%m-%d %H:%M} to {usage["ts"].max():%Y-%m-%d %H:%M} ({usage["ts"].nunique()} hours) |
| `dependencies.csv` | {len(org.edges)} edges `source, target, weight, critical` between the VMs ({sum(e.critical for e in org.edges)} critical) |

Units: **cpu in GHz** (`cpu_mhz / 1000`), **memory in GiB** (`mem_kb / 2**20`).

## How it was built

`planner.scenarios.bitbrains_organisation(n_vms={DEMO["n_vms"]}, n_accounts={DEMO["n_accounts"]},
tightness={DEMO["tightness"]}, seed={DEMO["seed"]}, start="{DEMO["start"]}", end="{DEMO["end"]}",
dependencies=True)`, whose rules are (see `planner/scenarios/` for the full text):

- VMs with at least a day of life (rows with non-zero provisioned capacity) in the window are
  eligible; {DEMO["n_vms"]} are sampled with the seed. Before its first and after its last such
  row a VM did not exist and uses 0 (VMs created during the month are growth). Rows with zero
  provisioned capacity count as 0 (in the July file 62 VMs have such rows; the data README
  counts 73 across the trace). Hours missing inside a VM's life (the trace's outages) are
  filled with the value of the same hour the day before (then the day after).
- Accounts: the VMs sorted by id are cut into contiguous blocks whose sizes are drawn from the
  seed. Profile by rank: the quarter of accounts with the highest memory/CPU ratio are
  `datastore`, a third of the rest with the burstiest CPU (peak/median) `batch`, the others
  `web`. Priority and performance threshold follow the profile (datastore 30+, 0.99; web 20+,
  0.95; batch 10+, 0.90; plus a seeded 0..9).
- Parent capacity = tightness x sum of per-account peaks (CPU adjusted below); reserve 5 %.
  Current quota = P95 of the first week; ceiling = peak / tightness; floor = half the
  first-week median; borrowing and lending limits = half the quota.
- Templates per profile: seed = median quota, limits = largest ceiling of the profile.
- Dependencies: an Alibaba service topology of {len(org.workloads)} microservices (services
  merged), database and Memcached nodes mapped onto the VMs of datastore accounts, the others
  onto the rest in VM order; weight = mean calls per user request; critical = calls to a
  database or Memcached.

Added for the demo:

{DEMO_RULES}
Here: `{facts["grower"]}` grows by x{facts["multiplier"]} (forecast median CPU peak
{facts["median_peak"]:.2f} GHz, ceiling {facts["ceiling"]:.2f} GHz); `{facts["job_account"]}` runs
the scheduled job; the plan starts at {facts["plan_start"]:%Y-%m-%d %H:%M}.

## Accounts

| account | profile | priority | VMs | cpu quota | cpu ceiling | memory quota | memory ceiling |
|---|---|---|---|---|---|---|---|
{accounts}

Parent capacity: cpu {org.parent.capacity["cpu"]:.2f} GHz, memory
{org.parent.capacity["memory"]:.2f} GiB.
"""


def build_test_data(data_dir: Path, out: Path) -> None:
    """Write the CI samples: a 100-VM one-week organisation and a few Alibaba service graphs."""
    org, usage = bitbrains_organisation(data_dir, **TEST_ORG, dependencies=True)  # type: ignore[arg-type]
    header = (
        "# A 100-VM Bitbrains organisation (two weeks), generated by scripts/build_demo.py.\n"
        "# Units: cpu in GHz, memory in GiB. See ../README.md for sources and rules.\n"
    )
    write_org_folder(org, usage, out / "bitbrains_100vm", header)
    nodes_parts, edge_parts = [], []
    for n, seed in TEST_GRAPHS:
        nodes, edges = alibaba_graph_tables(data_dir, n_workloads=n, seed=seed)
        name = f"n{n}-seed{seed}"
        nodes_parts.append(nodes.assign(graph=name))
        edge_parts.append(edges.assign(graph=name))
    folder = out / "alibaba_graphs"
    folder.mkdir(parents=True, exist_ok=True)
    nodes_all = pd.concat(nodes_parts, ignore_index=True)
    edges_all = pd.concat(edge_parts, ignore_index=True)
    cols_n = ["graph", "id", "account", "service", "microservice", "label", "migration_cost"]
    cols_e = ["graph", "source", "target", "weight", "critical", "rpctype", "service"]
    write_atomic(folder / "nodes.csv", nodes_all[cols_n].to_csv(index=False, lineterminator="\n"))
    write_atomic(folder / "edges.csv", edges_all[cols_e].to_csv(index=False, lineterminator="\n"))
    write_atomic(out / "README.md", _tests_readme(org, usage))


def _tests_readme(org: Organisation, usage: pd.DataFrame) -> str:
    graphs = ", ".join(f"`n{n}-seed{s}`" for n, s in TEST_GRAPHS)
    return f"""# Test samples (small, attributed copies of public traces)

Generated by `scripts/build_demo.py --only tests` from `../shared/data`, so that CI (which has
no `../shared`) can run the replay and provisioning tests.

## `bitbrains_100vm/`: an organisation folder (`planner.io.load` reads it)

`planner.scenarios.bitbrains_organisation(n_vms={TEST_ORG["n_vms"]}, n_accounts={TEST_ORG["n_accounts"]},
tightness={TEST_ORG["tightness"]}, seed={TEST_ORG["seed"]}, start="{TEST_ORG["start"]}",
end="{TEST_ORG["end"]}", dependencies=True)`: {len(org.workloads)} real Bitbrains VMs in
{len(org.accounts)} accounts, hourly usage {usage["ts"].min():%Y-%m-%d %H:%M} to
{usage["ts"].max():%Y-%m-%d %H:%M} ({usage["ts"].nunique()} hours), cpu in GHz, memory in GiB,
{len(org.edges)} dependency edges from an Alibaba topology. Rules: see `planner/scenarios/`.

Source: Bitbrains GWA-T-12 "Rnd" trace (public use). Cite S. Shen, V. van Beek, A. Iosup,
"Statistical Characterization of Business-Critical Workloads Hosted in Cloud Datacenters",
CCGrid 2015.

## `alibaba_graphs/`: real service topologies

`nodes.csv` (graph, id, account, service, microservice, label, migration_cost) and `edges.csv`
(graph, source, target, weight, critical, rpctype, service) for the graphs {graphs}, each
`planner.scenarios.alibaba_graph_tables(n_workloads=n, seed=seed)`: weight = calls per request x
pattern count; critical = rpctype db/mc or a database/Memcached callee.
`planner.scenarios.tables_to_models(nodes, edges)` turns one graph into workloads and edges.

Source: Alibaba microservice trace 2021, call-graph patterns. Cite S. Luo et al.,
"Characterizing Microservice Dependency and Performance: Alibaba Trace Analysis", SoCC 2021.
"""


def main(argv: list[str] | None = None) -> int:
    """Parse the options and rebuild the requested folders."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--only", choices=("demo", "tests"), default=None)
    parser.add_argument("--demo-out", type=Path, default=ROOT / "planner" / "demo_data")
    parser.add_argument("--tests-out", type=Path, default=ROOT / "tests" / "data")
    args = parser.parse_args(argv)
    if args.only in (None, "demo"):
        build_demo(args.data_dir, args.demo_out)
        for f in sorted(args.demo_out.iterdir()):
            print(f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}: {_size(f)}")
    if args.only in (None, "tests"):
        build_test_data(args.data_dir, args.tests_out)
        for f in sorted(args.tests_out.rglob("*")):
            if f.is_file():
                print(f"{f.relative_to(ROOT) if f.is_relative_to(ROOT) else f}: {_size(f)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
