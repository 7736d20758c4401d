"""Deterministic organisations built from the real traces in ``../shared/data``.

Used by the demo script, the tests and the benchmarks. Each builder states its rules in its
docstring and in the docstrings of :mod:`planner.scenarios._traces` (reading, units, gaps,
replicas), :mod:`planner.scenarios._build` (capacity, quotas, ceilings, floors, limits,
profiles, priorities, templates) and :mod:`planner.scenarios.alibaba` (dependency graphs).
The same arguments always give the same organisation.

Grouping rule (Bitbrains and Google): the chosen series are sorted by id (VM id; Google job id,
which grows with submission time) and cut into ``n_accounts`` contiguous blocks whose sizes are
drawn from ``seed`` (one series each, the rest spread by a multinomial draw with Dirichlet(2)
weights). Neighbouring ids stand in for one team's machines; the traces carry no owner.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from models import Organisation
from planner.scenarios._build import (
    ResourceSpec,
    block_sizes,
    build_organisation,
    contiguous_assignment,
)
from planner.scenarios._traces import (
    ALIBABA_FILE,
    BITBRAINS_FILE,
    GOOGLE_FILE,
    bitbrains_frames,
    google_frames,
    trace_file,
)
from planner.scenarios.alibaba import (
    alibaba_graph_tables,
    alibaba_workload_graph,
    map_onto_workloads,
    tables_to_models,
)

#: ``$QUOTA_PLANNER_DATA`` when set, else ``../shared/data`` next to the project folder.
DEFAULT_DATA_DIR = Path(
    os.environ.get("QUOTA_PLANNER_DATA")
    or Path(__file__).resolve().parents[2].parent / "shared" / "data"
)

BITBRAINS_RESOURCES = (
    ResourceSpec("cpu", "GHz", "CPU used, Bitbrains cpu_mhz / 1000"),
    ResourceSpec("memory", "GiB", "memory used, Bitbrains mem_kb / 2**20"),
)
GOOGLE_RESOURCES = (
    ResourceSpec("cpu", "NCU", "CPU in normalised machines (Google cpu_pct / 100)"),
    ResourceSpec("memory", "NMU", "memory in normalised machines (Google mem_pct / 100)"),
)

__all__ = [
    "ALIBABA_FILE",
    "BITBRAINS_FILE",
    "BITBRAINS_RESOURCES",
    "DEFAULT_DATA_DIR",
    "GOOGLE_FILE",
    "GOOGLE_RESOURCES",
    "alibaba_graph_tables",
    "alibaba_workload_graph",
    "attach_alibaba_dependencies",
    "bitbrains_organisation",
    "block_sizes",
    "google_organisation",
    "map_onto_workloads",
    "tables_to_models",
    "trace_file",
]


def bitbrains_organisation(
    data_dir: Path | str,
    *,
    n_vms: int,
    n_accounts: int,
    tightness: float = 0.8,
    seed: int = 0,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    dependencies: bool = False,
) -> tuple[Organisation, pd.DataFrame]:
    """An organisation of ``n_accounts`` sub-accounts made of ``n_vms`` real Bitbrains VMs.

    Parameters
    ----------
    data_dir
        Folder holding ``bitbrains_rnd_2013-07_hourly.parquet`` (``../shared/data``).
    n_vms
        Number of VMs (workloads). Up to the eligible VMs of the window (495 of the 500 over
        July: those with a day of life in it) they are distinct real VMs sampled with
        ``seed``; beyond, shifted and scaled replicas (see :mod:`planner.scenarios._traces`),
        so any size works.
    n_accounts
        Number of sub-accounts (1 to ``n_vms``), contiguous blocks of VM ids.
    tightness
        Parent capacity = tightness x sum of per-account peaks; ceilings = peak / tightness.
    seed
        Chooses the VMs, the block sizes and the priority offsets.
    start, end
        Window ``[start, end)`` of the trace (default: 2013-07-01 00:00 to the end of July).
    dependencies
        Also attach an Alibaba service topology mapped onto the VMs
        (:func:`attach_alibaba_dependencies`; needs the Alibaba file).

    Returns
    -------
    tuple
        The :class:`~models.Organisation` and its hourly usage in long format (``account,
        resource, ts, value, workload``), cpu in GHz and memory in GiB.

    Raises
    ------
    FileNotFoundError
        When the trace file is not in ``data_dir``; the message says where it comes from.
    """
    frames = bitbrains_frames(data_dir, n_vms=n_vms, seed=seed, start=start, end=end)
    groups = contiguous_assignment(list(frames["cpu"].columns), n_accounts, seed)
    org, usage = build_organisation(
        frames,
        groups,
        name=f"bitbrains-{n_vms}vm-{n_accounts}acct-seed{seed}",
        resources=BITBRAINS_RESOURCES,
        tightness=tightness,
        seed=seed,
        mean_memory=frames["memory"].mean(),
    )
    if dependencies:
        org = attach_alibaba_dependencies(org, data_dir, seed=seed)
    return org, usage


def google_organisation(
    data_dir: Path | str,
    *,
    n_jobs: int,
    n_accounts: int,
    tightness: float = 0.8,
    seed: int = 0,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    dependencies: bool = False,
) -> tuple[Organisation, pd.DataFrame]:
    """An organisation of ``n_accounts`` sub-accounts made of ``n_jobs`` Google 2011 jobs.

    Jobs (CPU and memory summed over their tasks) are averaged from 5 minutes to hours; cpu is
    in NCU and memory in NMU (one unit = one normalised machine). Hours when a job did not run
    count as 0. The rules are those of :func:`bitbrains_organisation`; the window defaults to
    the 7 days of the file, on a nominal clock starting 2011-05-02 00:00. Beyond the 236 jobs of
    the file, replicas as for Bitbrains.

    Raises
    ------
    FileNotFoundError
        When the trace file is not in ``data_dir``.
    """
    frames = google_frames(data_dir, n_jobs=n_jobs, seed=seed, start=start, end=end)
    groups = contiguous_assignment(list(frames["cpu"].columns), n_accounts, seed)
    org, usage = build_organisation(
        frames,
        groups,
        name=f"google2011-{n_jobs}jobs-{n_accounts}acct-seed{seed}",
        resources=GOOGLE_RESOURCES,
        tightness=tightness,
        seed=seed,
        mean_memory=frames["memory"].mean(),
    )
    if dependencies:
        org = attach_alibaba_dependencies(org, data_dir, seed=seed)
    return org, usage


def attach_alibaba_dependencies(
    org: Organisation, data_dir: Path | str, *, seed: int = 0
) -> Organisation:
    """``org`` with dependency edges of a real Alibaba topology mapped onto its workloads.

    A graph of as many microservices as ``org`` has workloads is built by
    :func:`alibaba_workload_graph` (weights per user request) and mapped by
    :func:`map_onto_workloads`: database and Memcached nodes onto the workloads of ``datastore``
    accounts, the others onto the rest in workload order.
    """
    ids = [w.id for w in org.workloads]
    if len(ids) < 2:
        raise ValueError("attaching dependencies needs an organisation with at least 2 workloads")
    profile = {a.id: a.application_profile for a in org.accounts}
    stateful = [w.id for w in org.workloads if profile[w.account] == "datastore"]
    nodes, edges = alibaba_graph_tables(
        data_dir, n_workloads=len(ids), seed=seed, weight="per_request"
    )
    mapped = map_onto_workloads(nodes, edges, ids, stateful)
    deps = [
        {"source": str(src), "target": str(dst), "weight": round(float(w), 4), "critical": bool(c)}
        for src, dst, w, c in zip(
            mapped["source"].tolist(),
            mapped["target"].tolist(),
            mapped["weight"].tolist(),
            mapped["critical"].tolist(),
            strict=True,
        )
    ]
    return Organisation.model_validate(org.model_dump() | {"edges": deps})
