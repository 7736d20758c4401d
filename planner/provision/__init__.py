"""Dynamic provisioning: open new sub-accounts and move workloads along dependency cuts.

Typical use, in the negotiation engine::

    ext = provisioning_for(org, usage, start=start)        # None: nothing can be provisioned
    model = build_model(data, extensions=[ext] if ext else [])
    ... solve ...
    plan = ext.finish(model, x, plan)                       # new accounts, migrations, peers
    violations += verify_provisioning(org, plan)

- :mod:`~planner.provision.demand`: each workload's share of its account's demand;
- :mod:`~planner.provision.coarsen`: clusters of heavily coupled workloads (bounded binaries);
- :mod:`planner.formulation.provisioning`: the block of the joint program;
- :mod:`~planner.provision.joint`: build, solve and read back the joint program;
- :mod:`~planner.provision.baselines`: the seed's greedy (Kernighan-Lin) and a random split;
- :mod:`~planner.provision.extract`: new accounts, ordered migrations, peer relations;
- :mod:`~planner.provision.verify`: the provisioning rules every plan must keep.
"""

from __future__ import annotations

from typing import Any

from planner.provision.coarsen import DEFAULT_MAX_CLUSTERS, Cluster, Coarsening, coarsen
from planner.provision.demand import WorkloadDemand
from planner.provision.extract import ProvisioningOutcome, cut_traffic, outcome, peer_relations

# These import planner.formulation.provisioning, which imports this package: load them lazily.
_LAZY = {
    "ProvisioningExtension": "planner.provision.joint",
    "provisioning_for": "planner.provision.joint",
    "solve_joint": "planner.provision.joint",
    "joint_plan": "planner.provision.joint",
    "extract_provisioning": "planner.provision.joint",
    "kernighan_lin_provisioning": "planner.provision.baselines",
    "random_provisioning": "planner.provision.baselines",
    "verify_provisioning": "planner.provision.verify",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'planner.provision' has no attribute {name!r}")


__all__ = [
    "DEFAULT_MAX_CLUSTERS",
    "Cluster",
    "Coarsening",
    "ProvisioningExtension",
    "ProvisioningOutcome",
    "WorkloadDemand",
    "coarsen",
    "cut_traffic",
    "extract_provisioning",
    "joint_plan",
    "kernighan_lin_provisioning",
    "outcome",
    "peer_relations",
    "provisioning_for",
    "random_provisioning",
    "solve_joint",
    "verify_provisioning",
]
