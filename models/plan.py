"""The output of one planning call: a :class:`Plan`."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from models.profile import NeedProfile
from models.state import Loan, ShadowQuota


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Status(StrEnum):
    """How a solve ended, the same words for every backend."""

    OPTIMAL = "optimal"  # proven within the requested gap
    FEASIBLE = "feasible"  # a plan, not proven optimal (time limit, gap not reached)
    HEURISTIC = "heuristic"  # a plan from a heuristic (greedy); no bound
    INFEASIBLE = "infeasible"  # the rules cannot all hold; see the diagnosis
    UNBOUNDED = "unbounded"
    ERROR = "error"  # the solver failed; the plan is the fallback's


class SolverReport(_Value):
    """What the method did and how good the answer is."""

    method: str = Field(description="greedy, mip, mip-fast, ...")
    solver: str | None = None
    status: Status
    objective: float | None = Field(None, description="None: no feasible plan was scored.")
    bound: float | None = Field(None, description="Best proven bound on the objective.")
    gap: float | None = Field(None, description="(objective - bound) / max(1, |objective|).")
    build_seconds: float = 0.0
    solve_seconds: float = 0.0
    wall_seconds: float = 0.0
    fallback: str | None = Field(None, description="Why the plan is not the asked method's own.")
    messages: list[str] = Field(default_factory=list)


class QuotaAssignment(_Value):
    """Base quota of one account for one resource: before and after this plan."""

    account: str
    resource: str
    before: float
    after: float

    @property
    def change(self) -> float:
        """after - before."""
        return self.after - self.before


class Bid(_Value):
    """One sub-account's bid for one resource and what came of it."""

    account: str
    resource: str
    demand: float = Field(description="Peak predicted demand it provisions for.")
    current_quota: float
    amount: float = Field(description="demand - current quota (what it asked for).")
    granted: float = 0.0
    outcome: Literal["granted", "partial", "denied", "none"]
    reason: str = ""


class StateChange(_Value):
    """What the plan does with a loan or shadow quota that was in force."""

    kind: Literal["loan", "shadow"]
    account: str
    resource: str
    ref: str = Field(description="Loan id, or account/resource of the shadow quota.")
    action: Literal["extended", "returned", "reverted", "kept", "reclaimed"]
    reason: str


class NewAccount(_Value):
    """A sub-account the plan opens from a template."""

    id: str
    name: str
    template: str
    seed: dict[str, float]
    quota: dict[str, float]


class CutEdge(_Value):
    """A dependency edge that a migration splits across two accounts."""

    source: str
    target: str
    traffic: float


class Migration(_Value):
    """One step of moving a workload to another account."""

    step: int
    workload: str
    source: str
    target: str
    moved_demand: dict[str, float] = Field(description="Peak demand per resource that moves.")
    cut_edges: list[CutEdge] = Field(default_factory=list)
    traffic_cut: float = 0.0


class PeerRelation(_Value):
    """A relationship the plan creates: ``account`` depends on or serves ``peer``."""

    account: str
    peer: str
    relation: Literal["depends_on", "serves"]
    traffic: float


class Explanation(_Value):
    """One account's plan in plain words."""

    account: str
    text: str
    binding: list[str] = Field(default_factory=list, description="Limits that bound it.")
    marginal_value: dict[str, float] = Field(
        default_factory=dict, description="Objective gain of one more unit, per resource."
    )


class Plan(_Value):
    """Quotas, loans, shadow quotas, new accounts and migrations for one planning horizon."""

    organisation: str
    created_at: datetime
    start: datetime = Field(description="Start of the first period.")
    period_minutes: int
    periods: int
    quotas: list[QuotaAssignment]
    loans: list[Loan] = Field(default_factory=list)
    shadow_quotas: list[ShadowQuota] = Field(default_factory=list)
    bids: list[Bid] = Field(default_factory=list)
    new_accounts: list[NewAccount] = Field(default_factory=list)
    migrations: list[Migration] = Field(default_factory=list)
    peers: list[PeerRelation] = Field(default_factory=list)
    state_changes: list[StateChange] = Field(default_factory=list)
    unmet: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="account -> resource -> unit-periods left uncovered."
    )
    need_profiles: list[NeedProfile] = Field(default_factory=list)
    report: SolverReport
    explanations: list[Explanation] = Field(default_factory=list)
    violations: list[str] = Field(
        default_factory=list, description="Rules the independent check found broken (none: ok)."
    )

    def quota(self, account: str, resource: str) -> float:
        """Base quota after this plan (0 when the plan has none for it)."""
        for q in self.quotas:
            if q.account == account and q.resource == resource:
                return q.after
        return 0.0
