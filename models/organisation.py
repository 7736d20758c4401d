"""The input vocabulary: a parent account, its sub-accounts, workloads, dependencies, templates, rules.

Each record validates itself (field types, signs, ranges); :class:`Organisation` then checks the
cross-references once (unknown ids, duplicates, floors above capacity, ...) and reports all of them
together. After that, planner code trusts the data.

Conventions
-----------
- Amounts are per resource: ``dict[resource name, float]`` in the resource's declared unit
  (strings with units such as ``"64 GiB"`` are converted when the organisation is built).
- A missing key in a *limit* mapping (``ceiling``, ``borrow_limit``, ``lend_limit``) means
  "no limit"; a missing key in a *floor* or *quota* mapping means 0.
- ``priority``: higher is more important (as in Kubernetes PriorityClasses and Kueue).
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from models.events import Events
from models.profile import NeedProfile
from models.quantity import UnitError, parse_quantity
from models.state import CurrentState

Amounts = dict[str, float]
Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_.:/@+-]+$")]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _non_negative(values: dict[str, float], name: str) -> dict[str, float]:
    for resource, amount in values.items():
        if not amount >= 0:  # also catches NaN
            raise ValueError(f"{name}[{resource}] must be a non-negative number, got {amount}")
    return values


class Resource(_Value):
    """A countable resource the parent hands out (CPU, memory, GPUs, licences, ...)."""

    name: Id
    unit: str = Field("units", min_length=1, description="Unit all amounts of it are written in.")
    description: str = ""


class PerformanceThreshold(_Value):
    """What an account needs to perform.

    ``service_level`` is the forecast quantile it must be provisioned for (0.9 = its P90 demand);
    ``min_coverage`` is the fraction of that demand below which it is in violation. Under rules
    with ``hard_thresholds`` the planner must cover at least ``min_coverage`` of it.
    """

    service_level: float = Field(0.9, gt=0.0, lt=1.0)
    min_coverage: float = Field(0.95, ge=0.0, le=1.0)


class ParentAccount(_Value):
    """The parent: what there is to give out."""

    id: Id = "parent"
    name: str = "parent"
    capacity: Amounts = Field(description="Total per resource.")
    reserve: Amounts = Field(
        default_factory=dict,
        description="Part of capacity held back from base quotas; shadow quotas come from it.",
    )
    cost_per_unit: Amounts = Field(
        default_factory=dict, description="Cost of one unit of quota held for one period."
    )

    @field_validator("capacity", "reserve", "cost_per_unit")
    @classmethod
    def _check_amounts(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        return _non_negative(v, str(info.field_name))

    @model_validator(mode="after")
    def _reserve_within_capacity(self) -> ParentAccount:
        for r, amount in self.reserve.items():
            if r in self.capacity and amount > self.capacity[r]:
                raise ValueError(
                    f"reserve[{r}] = {amount} exceeds capacity[{r}] = {self.capacity[r]}; "
                    "lower the reserve or raise the capacity"
                )
        return self


class SubAccount(_Value):
    """A sub-account of the parent (a team, a tenant, a queue, a provider account)."""

    id: Id
    name: str = ""
    quota: Amounts = Field(default_factory=dict, description="Current base quota.")
    priority: int = Field(1, ge=0, le=1_000_000, description="Higher is more important.")
    floor: Amounts = Field(default_factory=dict, description="Quota never goes below this.")
    ceiling: Amounts = Field(
        default_factory=dict,
        description="Quota + shadow + borrowed never exceeds this (a provider's per-account limit).",
    )
    borrow_limit: Amounts = Field(default_factory=dict, description="Most it may borrow at once.")
    lend_limit: Amounts = Field(default_factory=dict, description="Most it may lend at once.")
    performance_threshold: PerformanceThreshold = Field(default_factory=PerformanceThreshold)
    application_profile: str | None = Field(
        None, description="Which template a new account split from it would use."
    )
    dependencies: list[Id] = Field(
        default_factory=list, description="Accounts this one depends on (besides workload edges)."
    )
    need_profile: NeedProfile | None = Field(
        None, description="Filled in by the planner's prediction stage; may be given to skip it."
    )

    @field_validator("quota", "floor", "ceiling", "borrow_limit", "lend_limit")
    @classmethod
    def _check_amounts(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        return _non_negative(v, str(info.field_name))

    @field_validator("performance_threshold", mode="before")
    @classmethod
    def _threshold_shorthand(cls, v: Any) -> Any:
        # ``performance_threshold: 0.95`` is shorthand for the service level.
        if isinstance(v, int | float) and not isinstance(v, bool):
            return {"service_level": v}
        return v

    @model_validator(mode="after")
    def _floor_below_ceiling(self) -> SubAccount:
        for r, low in self.floor.items():
            high = self.ceiling.get(r)
            if high is not None and low > high:
                raise ValueError(
                    f"floor[{r}] = {low} is above ceiling[{r}] = {high}; lower the floor or "
                    "raise the ceiling"
                )
        return self


class Workload(_Value):
    """A unit of work that lives in one account and may move to another."""

    id: Id
    account: Id
    migratable: bool = True
    migration_cost: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    description: str = ""


class DependencyEdge(_Value):
    """``source`` calls or depends on ``target`` (workload or account ids)."""

    source: Id
    target: Id
    weight: float = Field(1.0, ge=0.0, allow_inf_nan=False, description="Traffic or call rate.")
    critical: bool = False


class AccountTemplate(_Value):
    """How to open a new sub-account for an application profile."""

    id: Id
    application_profile: str = Field(min_length=1)
    seed: Amounts = Field(default_factory=dict, description="Quota a new account starts with.")
    limits: Amounts = Field(default_factory=dict, description="Per-account ceiling.")
    opening_cost: float = Field(0.0, ge=0.0, allow_inf_nan=False)
    splittable: bool = Field(True, description="Whether workloads of this profile may be split.")
    priority: int = Field(1, ge=0)

    @field_validator("seed", "limits")
    @classmethod
    def _check_amounts(cls, v: dict[str, float], info: ValidationInfo) -> dict[str, float]:
        return _non_negative(v, str(info.field_name))

    @model_validator(mode="after")
    def _seed_within_limits(self) -> AccountTemplate:
        for r, s in self.seed.items():
            if r in self.limits and s > self.limits[r]:
                raise ValueError(f"seed[{r}] = {s} exceeds limits[{r}] = {self.limits[r]}")
        return self


class NegotiationRules(_Value):
    """The parent's rules of negotiation, and the prices the optimiser weighs."""

    period_minutes: int = Field(60, ge=1, le=7 * 24 * 60, description="Length of one period.")
    horizon_periods: int = Field(24, ge=1, le=24 * 7 * 4, description="Periods planned ahead.")
    # loans
    allow_loans: bool = True
    loan_max_periods: int = Field(12, ge=1, description="A loan expires after this many periods.")
    loan_premium: float = Field(0.05, ge=0.0, description="Cost per unit-period lent.")
    guaranteed_loans: bool = Field(
        False,
        description=(
            "New loans whose lender's highest forecast quantile stays below what it keeps are "
            "returned only at expiry (the borrower can count on them). By default every new "
            "loan goes back as soon as the lender needs it, as Kueue's reclaimWithinCohort."
        ),
    )
    # shadow quotas
    allow_shadow: bool = True
    shadow_ttl_periods: int = Field(6, ge=1, description="Most consecutive periods of a shadow.")
    shadow_max_fraction: float = Field(
        0.5, ge=0.0, description="A shadow quota is at most this fraction of the base quota."
    )
    shadow_premium: float = Field(0.1, ge=0.0, description="Cost per unit-period of shadow.")
    # prices
    unmet_cost: float = Field(100.0, ge=0.0, description="Cost per unit-period of unmet demand.")
    churn_cost: float = Field(0.5, ge=0.0, description="Cost per unit of base quota changed.")
    hard_thresholds: bool = Field(
        False, description="Cover each account's min_coverage of its demand or be infeasible."
    )
    # provisioning
    allow_new_accounts: bool = True
    max_new_accounts: int = Field(4, ge=0)
    cut_cost: float = Field(1.0, ge=0.0, description="Cost per unit of traffic split.")
    max_cut_traffic_per_account: float | None = Field(None, ge=0.0)
    must_stay_together: list[tuple[Id, Id]] = Field(
        default_factory=list, description="Pairs of workloads that are never split."
    )


class Organisation(BaseModel):
    """Everything one planning call takes: the parent, its accounts, their graph, rules and state."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "organisation"
    resources: list[Resource] = Field(min_length=1)
    parent: ParentAccount
    accounts: list[SubAccount] = Field(min_length=1)
    workloads: list[Workload] = Field(default_factory=list)
    edges: list[DependencyEdge] = Field(default_factory=list)
    templates: list[AccountTemplate] = Field(default_factory=list)
    rules: NegotiationRules = Field(default_factory=NegotiationRules)
    events: Events = Field(default_factory=Events)
    state: CurrentState = Field(default_factory=CurrentState)

    @model_validator(mode="before")
    @classmethod
    def _convert_units(cls, data: Any) -> Any:
        """Turn amounts such as ``"64 GiB"`` into floats in each resource's unit."""
        if not isinstance(data, dict):
            return data
        units: dict[str, str] = {}
        for res in data.get("resources") or []:
            if isinstance(res, dict) and isinstance(res.get("name"), str):
                units[res["name"]] = str(res.get("unit", "units"))
            elif isinstance(res, Resource):
                units[res.name] = res.unit
        if not units:
            return data
        data = dict(data)

        def convert(mapping: Any, where: str) -> Any:
            if not isinstance(mapping, dict):
                return mapping
            out = {}
            for r, v in mapping.items():
                if isinstance(v, str) and r in units:
                    try:
                        v = parse_quantity(v, units[r], what=f"{where}.{r}")
                    except UnitError as exc:
                        raise ValueError(str(exc)) from None
                out[r] = v
            return out

        if isinstance(data.get("parent"), dict):
            parent = dict(data["parent"])
            for key in ("capacity", "reserve"):
                parent[key] = convert(parent.get(key), f"parent.{key}")
            data["parent"] = {k: v for k, v in parent.items() if v is not None}
        for list_key, keys in (
            ("accounts", ("quota", "floor", "ceiling", "borrow_limit", "lend_limit")),
            ("templates", ("seed", "limits")),
        ):
            items = data.get(list_key)
            if not isinstance(items, list):
                continue
            new_items = []
            for i, item in enumerate(items):
                if isinstance(item, dict):
                    item = dict(item)
                    for key in keys:
                        if key in item:
                            item[key] = convert(item[key], f"{list_key}[{i}].{key}")
                new_items.append(item)
            data[list_key] = new_items
        return data

    @model_validator(mode="after")
    def _cross_references(self) -> Organisation:
        problems = consistency_problems(self)
        if problems:
            raise ValueError("\n".join(problems))
        return self

    # --- convenient views (derived, never stored) ---
    @property
    def resource_names(self) -> list[str]:
        """Resource names in declaration order."""
        return [r.name for r in self.resources]

    @property
    def account_ids(self) -> list[str]:
        """Account ids in declaration order."""
        return [a.id for a in self.accounts]

    def account(self, account_id: str) -> SubAccount:
        """The account with this id (``KeyError`` naming it when absent)."""
        for a in self.accounts:
            if a.id == account_id:
                return a
        raise KeyError(f"no account with id {account_id!r}")


def consistency_problems(org: Organisation) -> list[str]:
    """Every cross-reference problem of ``org``, each a sentence naming the record and the fix.

    One check per rule, in the order a user would fix them.
    """
    problems: list[str] = []
    resources = org.resource_names
    res_set = set(resources)
    _duplicates(problems, "resources", resources)
    account_ids = org.account_ids
    _duplicates(problems, "accounts", account_ids)
    workload_ids = [w.id for w in org.workloads]
    _duplicates(problems, "workloads", workload_ids)
    _duplicates(problems, "templates", [t.id for t in org.templates])
    acc_set, wl_set = set(account_ids), set(workload_ids)
    for both in sorted(acc_set & wl_set):
        problems.append(f"id {both!r} names both an account and a workload; rename one")

    def check_keys(mapping: dict[str, float], where: str) -> None:
        for r in mapping:
            if r not in res_set:
                problems.append(
                    f"{where} names the unknown resource {r!r}; declare it under 'resources' "
                    f"(known: {', '.join(resources)})"
                )

    for key in ("capacity", "reserve", "cost_per_unit"):
        check_keys(getattr(org.parent, key), f"parent.{key}")
    for r in resources:
        if r not in org.parent.capacity:
            problems.append(f"parent.capacity has no amount for resource {r!r}; add one")
    for i, a in enumerate(org.accounts):
        for key in ("quota", "floor", "ceiling", "borrow_limit", "lend_limit"):
            check_keys(getattr(a, key), f"accounts[{i}] ({a.id}).{key}")
        for dep in a.dependencies:
            if dep not in acc_set:
                problems.append(
                    f"accounts[{i}] ({a.id}).dependencies names the unknown account {dep!r}"
                )
    for r in resources:
        cap = org.parent.capacity.get(r, 0.0)
        floors = sum(a.floor.get(r, 0.0) for a in org.accounts)
        if floors > cap + 1e-9:
            problems.append(
                f"the accounts' floors for {r} add up to {floors:g}, above parent.capacity[{r}] "
                f"= {cap:g}; lower some floors or raise the capacity"
            )
    for i, w in enumerate(org.workloads):
        if w.account not in acc_set:
            problems.append(
                f"workloads[{i}] ({w.id}).account names the unknown account {w.account!r}"
            )
    nodes = acc_set | wl_set
    for i, e in enumerate(org.edges):
        for end in ("source", "target"):
            node = getattr(e, end)
            if node not in nodes:
                problems.append(
                    f"edges[{i}].{end} names {node!r}, which is neither an account nor a "
                    "workload; add it or remove the edge"
                )
        if e.source == e.target:
            problems.append(f"edges[{i}] joins {e.source!r} to itself; remove it")
    for i, t in enumerate(org.templates):
        check_keys(t.seed, f"templates[{i}] ({t.id}).seed")
        check_keys(t.limits, f"templates[{i}] ({t.id}).limits")
    for i, (u, v) in enumerate(org.rules.must_stay_together):
        for node in (u, v):
            if node not in wl_set:
                problems.append(
                    f"rules.must_stay_together[{i}] names {node!r}, which is not a workload"
                )
    for i, ev in enumerate(org.events.growth):
        if ev.account not in acc_set:
            problems.append(f"events.growth[{i}].account names the unknown account {ev.account!r}")
        if ev.resource is not None and ev.resource not in res_set:
            problems.append(
                f"events.growth[{i}].resource names the unknown resource {ev.resource!r}"
            )
    for i, job in enumerate(org.events.jobs):
        if job.account not in acc_set:
            problems.append(f"events.jobs[{i}].account names the unknown account {job.account!r}")
        if job.resource not in res_set:
            problems.append(
                f"events.jobs[{i}].resource names the unknown resource {job.resource!r}"
            )
    for i, loan in enumerate(org.state.loans):
        for end in ("lender", "borrower"):
            if getattr(loan, end) not in acc_set:
                problems.append(
                    f"state.loans[{i}].{end} names the unknown account {getattr(loan, end)!r}"
                )
        if loan.resource not in res_set:
            problems.append(
                f"state.loans[{i}].resource names the unknown resource {loan.resource!r}"
            )
    for i, sq in enumerate(org.state.shadow_quotas):
        if sq.account not in acc_set:
            problems.append(
                f"state.shadow_quotas[{i}].account names the unknown account {sq.account!r}"
            )
        if sq.resource not in res_set:
            problems.append(
                f"state.shadow_quotas[{i}].resource names the unknown resource {sq.resource!r}"
            )
    return problems


def _duplicates(problems: list[str], where: str, ids: list[str]) -> None:
    seen: dict[str, int] = {}
    for i, x in enumerate(ids):
        if x in seen:
            problems.append(
                f"{where}[{i}] repeats the id {x!r} of {where}[{seen[x]}]; ids must be unique"
            )
        else:
            seen[x] = i
