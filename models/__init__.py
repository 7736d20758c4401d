"""quota-planner's data models: the vocabulary shared by inputs, outputs and callers."""

from models.events import Events, GrowthEvent, ScheduledJob
from models.organisation import (
    AccountTemplate,
    DependencyEdge,
    NegotiationRules,
    Organisation,
    ParentAccount,
    PerformanceThreshold,
    Resource,
    SubAccount,
    Workload,
    consistency_problems,
)
from models.plan import (
    Bid,
    CutEdge,
    Explanation,
    Migration,
    NewAccount,
    PeerRelation,
    Plan,
    QuotaAssignment,
    SolverReport,
    StateChange,
    Status,
)
from models.profile import NeedProfile, ResourceDemand
from models.quantity import UnitError, parse_quantity
from models.state import CurrentState, Loan, ShadowQuota

__all__ = [
    "AccountTemplate",
    "Bid",
    "CurrentState",
    "CutEdge",
    "DependencyEdge",
    "Events",
    "Explanation",
    "GrowthEvent",
    "Loan",
    "Migration",
    "NeedProfile",
    "NegotiationRules",
    "NewAccount",
    "Organisation",
    "ParentAccount",
    "PeerRelation",
    "PerformanceThreshold",
    "Plan",
    "QuotaAssignment",
    "Resource",
    "ResourceDemand",
    "ScheduledJob",
    "ShadowQuota",
    "SolverReport",
    "StateChange",
    "Status",
    "SubAccount",
    "UnitError",
    "Workload",
    "consistency_problems",
    "parse_quantity",
]
