"""Known future events the forecast must include: growth and scheduled jobs."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class GrowthEvent(_Value):
    """Projected growth of an account's demand from ``start``.

    The forecast is multiplied by a factor that ramps linearly from 1 at ``start`` to
    ``multiplier`` at ``start + ramp_hours`` (a step when ``ramp_hours`` is 0) and stays there.
    """

    account: str
    resource: str | None = Field(None, description="None: every resource of the account.")
    start: datetime
    multiplier: float = Field(gt=0.0, allow_inf_nan=False)
    ramp_hours: float = Field(0.0, ge=0.0, allow_inf_nan=False)


class ScheduledJob(_Value):
    """A known batch job: ``amount`` more demand on ``resource`` from ``start`` until ``end``."""

    account: str
    resource: str
    start: datetime
    end: datetime
    amount: float = Field(gt=0.0, allow_inf_nan=False)
    name: str = ""

    @model_validator(mode="after")
    def _ordered(self) -> ScheduledJob:
        if self.end <= self.start:
            raise ValueError(f"end {self.end} must be after start {self.start}")
        return self


class Events(_Value):
    """All known events of an organisation."""

    growth: list[GrowthEvent] = Field(default_factory=list)
    jobs: list[ScheduledJob] = Field(default_factory=list)
