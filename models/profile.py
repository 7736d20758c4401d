"""Need profiles: what each sub-account is predicted to need, and why it matters."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ResourceDemand(_Value):
    """Predicted demand of one account for one resource over the planning horizon.

    ``quantiles`` maps a level (0.5, 0.9, 0.99, ...) to one value per period; ``target`` is the
    demand per period at the level the account's performance threshold asks for, and is what the
    negotiator provisions for.
    """

    resource: str
    periods: list[datetime] = Field(min_length=1, description="Start of each period.")
    target: list[float] = Field(description="Demand to provision for, per period.")
    service_level: float = Field(0.9, gt=0.0, lt=1.0)
    quantiles: dict[float, list[float]] = Field(default_factory=dict)
    method: str = Field("", description="Which forecaster produced it.")

    @model_validator(mode="after")
    def _lengths(self) -> ResourceDemand:
        n = len(self.periods)
        if len(self.target) != n:
            raise ValueError(f"target has {len(self.target)} values for {n} periods")
        for level, values in self.quantiles.items():
            if len(values) != n:
                raise ValueError(f"quantile {level} has {len(values)} values for {n} periods")
        for v in self.target:
            if not v >= 0:
                raise ValueError(f"target demand must be non-negative numbers, got {v}")
        return self

    @property
    def peak(self) -> float:
        """Highest target demand over the horizon."""
        return max(self.target)


class NeedProfile(_Value):
    """One sub-account's needs: predicted demand, critical dependencies, performance threshold."""

    account: str
    demand: dict[str, ResourceDemand] = Field(description="Per resource.")
    critical_dependencies: list[str] = Field(
        default_factory=list, description="Accounts on a critical chain this one depends on."
    )
    performance_threshold: float = Field(0.9, gt=0.0, lt=1.0)
    criticality: float = Field(0.0, ge=0.0, description="How much priority depends on it.")
    priority_score: float = Field(0.0, ge=0.0, description="Priority x criticality x shortfall.")
    shortfall: dict[str, float] = Field(
        default_factory=dict, description="Peak target demand minus current quota, per resource."
    )
    reason: str = ""
