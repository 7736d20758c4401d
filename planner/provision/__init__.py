"""Dynamic provisioning: open new sub-accounts and move workloads along dependency cuts.

- :mod:`~planner.provision.demand`: each workload's share of its account's demand;
- :mod:`~planner.provision.coarsen`: clusters of heavily coupled workloads (bounded binaries);
- :mod:`planner.formulation.provisioning`: the block of the joint program;
- :mod:`~planner.provision.joint`: build, solve and read back the joint program;
- :mod:`~planner.provision.baselines`: the seed's greedy (Kernighan-Lin) and a random split;
- :mod:`~planner.provision.extract`: new accounts, ordered migrations, peer relations;
- :mod:`~planner.provision.verify`: the provisioning rules every plan must keep.
"""

from __future__ import annotations

from planner.provision.coarsen import DEFAULT_MAX_CLUSTERS, Cluster, Coarsening, coarsen
from planner.provision.demand import WorkloadDemand
from planner.provision.extract import ProvisioningOutcome, cut_traffic, outcome, peer_relations

__all__ = [
    "DEFAULT_MAX_CLUSTERS",
    "Cluster",
    "Coarsening",
    "ProvisioningOutcome",
    "WorkloadDemand",
    "coarsen",
    "cut_traffic",
    "outcome",
    "peer_relations",
]
