"""The state carried from one planning cycle to the next: open loans and active shadow quotas."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

ReclaimCondition = Literal["expiry", "lender_need"]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Loan(_Value):
    """``lender`` lends ``amount`` of ``resource`` to ``borrower`` over ``[start, until)``.

    ``reclaim``: ``expiry`` returns it at ``until``; ``lender_need`` also returns it early as soon
    as the lender's own predicted need exceeds what it kept.
    """

    id: str = ""
    lender: str
    borrower: str
    resource: str
    amount: float = Field(gt=0.0, allow_inf_nan=False)
    start: datetime
    until: datetime
    reclaim: ReclaimCondition = "lender_need"

    @model_validator(mode="after")
    def _check(self) -> Loan:
        if self.until <= self.start:
            raise ValueError(f"until {self.until} must be after start {self.start}")
        if self.lender == self.borrower:
            raise ValueError(f"an account cannot lend to itself ({self.lender})")
        return self


class ShadowQuota(_Value):
    """A temporary expansion of ``account``'s quota over ``[start, until)``.

    It comes from the parent's reserve and reverts by itself at ``until`` (its time-to-live) or
    earlier, at the next planning cycle, when the need has subsided.
    """

    account: str
    resource: str
    amount: float = Field(gt=0.0, allow_inf_nan=False)
    start: datetime
    until: datetime
    reason: str = ""

    @model_validator(mode="after")
    def _check(self) -> ShadowQuota:
        if self.until <= self.start:
            raise ValueError(f"until {self.until} must be after start {self.start}")
        return self


class CurrentState(_Value):
    """What is in force when the planning call is made."""

    now: datetime | None = Field(None, description="Plan start; default: after the last usage.")
    loans: list[Loan] = Field(default_factory=list)
    shadow_quotas: list[ShadowQuota] = Field(default_factory=list)
