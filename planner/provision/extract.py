"""From a placement (which workload moves where) to the plan's provisioning output.

Used by the joint program, the greedy (Kernighan-Lin) baseline and the random split alike:
each decides ``moves = {workload: new account id}`` and the new accounts' quotas; this module
turns that into :class:`models.NewAccount`, ordered :class:`models.Migration` steps and
:class:`models.PeerRelation` records.

A step's ``cut_edges`` are the workload's edges that the plan splits: both ends shared an
account before and do not after (an edge that already crossed accounts is not cut again).

Order of the steps: new accounts in the order they are listed; within one, the next workload is
the one with the most traffic to those already moved there (ties: more migration cost first,
then id), starting from the one with the most traffic to the whole moved set. A connected group
thus moves piece by piece next to its neighbours, which keeps the traffic crossing accounts
*while* migrating close to the final cut.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

from models import (
    CutEdge,
    Migration,
    NewAccount,
    Organisation,
    PeerRelation,
    Plan,
    QuotaAssignment,
    SolverReport,
    Status,
)


@dataclass
class ProvisioningOutcome:
    """The provisioning part of a plan, and figures to compare methods by.

    Attributes
    ----------
    new_accounts, migrations, peers
        Plan records.
    moves
        Workload -> new account id.
    cut_traffic
        Traffic on workload edges the plan cuts (ends in one account before, two after).
    migration_cost
        Sum of the moved workloads' ``migration_cost``.
    unmet
        New account -> resource -> unit-periods of demand left uncovered there.
    notes
        Free text (how it was decided).
    """

    new_accounts: list[NewAccount] = field(default_factory=list)
    migrations: list[Migration] = field(default_factory=list)
    peers: list[PeerRelation] = field(default_factory=list)
    moves: dict[str, str] = field(default_factory=dict)
    cut_traffic: float = 0.0
    migration_cost: float = 0.0
    unmet: dict[str, dict[str, float]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def final_account(org: Organisation, moves: Mapping[str, str]) -> dict[str, str]:
    """Every workload's account after the moves."""
    return {w.id: moves.get(w.id, w.account) for w in org.workloads}


def pair_traffic(org: Organisation) -> dict[tuple[str, str], float]:
    """Traffic per unordered workload pair ``(min id, max id)`` (both directions summed)."""
    wl = {w.id for w in org.workloads}
    out: dict[tuple[str, str], float] = defaultdict(float)
    for e in org.edges:
        if e.source in wl and e.target in wl:
            u, v = sorted((e.source, e.target))
            out[(u, v)] += e.weight
    return dict(out)


def cut_traffic(org: Organisation, moves: Mapping[str, str]) -> float:
    """Traffic on workload edges whose ends shared an account before the moves and not after."""
    before = {w.id: w.account for w in org.workloads}
    after = final_account(org, moves)
    return float(
        sum(
            t
            for (u, v), t in pair_traffic(org).items()
            if before[u] == before[v] and after[u] != after[v]
        )
    )


def outcome(
    org: Organisation,
    moves: Mapping[str, str],
    new_accounts: Sequence[NewAccount],
    moved_demand: Mapping[str, Mapping[str, float]],
    *,
    unmet: Mapping[str, Mapping[str, float]] | None = None,
    notes: Sequence[str] = (),
) -> ProvisioningOutcome:
    """Assemble the provisioning output of a placement.

    Parameters
    ----------
    org
        The organisation before the plan.
    moves
        Workload id -> id of the new account it moves to.
    new_accounts
        The accounts opened (every target of ``moves`` must be one of them).
    moved_demand
        Peak demand per resource of each moved workload.
    unmet, notes
        Copied into the outcome.

    Raises
    ------
    ValueError
        When a move targets an account that is not opened.
    """
    opened = [a.id for a in new_accounts]
    unknown = sorted({t for t in moves.values() if t not in opened})
    if unknown:
        raise ValueError(f"moves target accounts that are not opened: {unknown}")
    owner = {w.id: w.account for w in org.workloads}
    cost = {w.id: w.migration_cost for w in org.workloads}
    after = final_account(org, moves)
    traffic = pair_traffic(org)
    nbrs: dict[str, dict[str, float]] = defaultdict(dict)
    for (u, v), t in traffic.items():
        nbrs[u][v] = t
        nbrs[v][u] = t
    migrations: list[Migration] = []
    for acc in opened:
        group = sorted(w for w, t in moves.items() if t == acc)
        for w in _order(group, nbrs, cost):
            cuts = [
                CutEdge(source=min(w, v), target=max(w, v), traffic=t)
                for v, t in sorted(nbrs[w].items())
                if after[v] != acc and owner[v] == owner[w]
            ]
            migrations.append(
                Migration(
                    step=len(migrations) + 1,
                    workload=w,
                    source=owner[w],
                    target=acc,
                    moved_demand=dict(moved_demand.get(w, {})),
                    cut_edges=cuts,
                    traffic_cut=float(sum(c.traffic for c in cuts)),
                )
            )
    return ProvisioningOutcome(
        new_accounts=list(new_accounts),
        migrations=migrations,
        peers=peer_relations(org, moves, opened),
        moves=dict(moves),
        cut_traffic=cut_traffic(org, moves),
        migration_cost=float(sum(cost[w] for w in moves)),
        unmet={k: dict(v) for k, v in (unmet or {}).items()},
        notes=list(notes),
    )


def _order(
    group: list[str], nbrs: Mapping[str, Mapping[str, float]], cost: Mapping[str, float]
) -> list[str]:
    inside = set(group)
    done: list[str] = []
    left = set(group)
    gain = {w: 0.0 for w in group}
    while left:
        if not done or max(gain[w] for w in left) <= 0:
            # start (or restart in another component) where the moved set is densest
            key = {w: sum(t for v, t in nbrs[w].items() if v in inside) for w in left}
        else:
            key = gain
        nxt = min(left, key=lambda w: (-key[w], -cost[w], w))
        done.append(nxt)
        left.discard(nxt)
        for v, t in nbrs[nxt].items():
            if v in left:
                gain[v] += t
    return done


def peer_relations(
    org: Organisation, moves: Mapping[str, str], opened: Sequence[str]
) -> list[PeerRelation]:
    """What each new account depends on (its workloads call) and serves (calls into it).

    Edges are read "source depends on target"; an end that is an account id stands for that
    account. Traffic per (new account, peer, relation) is summed; peers are other accounts,
    old or new.
    """
    after = final_account(org, moves)
    accounts = set(org.account_ids)
    where = {**{a: a for a in accounts}, **after}
    rel: dict[tuple[str, str, str], float] = defaultdict(float)
    new = set(opened)
    for e in org.edges:
        s, t = where.get(e.source), where.get(e.target)
        if s is None or t is None or s == t:
            continue
        if s in new:
            rel[(s, t, "depends_on")] += e.weight
        if t in new:
            rel[(t, s, "serves")] += e.weight
    return [
        PeerRelation(account=a, peer=p, relation=r, traffic=float(w))
        for (a, p, r), w in sorted(rel.items())
    ]


def attach(plan: Plan, result: ProvisioningOutcome) -> Plan:
    """``plan`` with ``result``'s new accounts, migrations and peers (and their unmet demand).

    The new accounts' unmet demand joins ``plan.unmet`` under their ids; an id already in
    ``plan.unmet`` keeps its entries and gains the new ones.
    """
    unmet = {k: dict(v) for k, v in plan.unmet.items()}
    for acc, by_res in result.unmet.items():
        unmet.setdefault(acc, {}).update(by_res)
    return plan.model_copy(
        update={
            "new_accounts": list(result.new_accounts),
            "migrations": list(result.migrations),
            "peers": list(result.peers),
            "unmet": unmet,
        }
    )


def baseline_plan(
    org: Organisation, result: ProvisioningOutcome, *, start: datetime, method: str
) -> Plan:
    """A plan of a provisioning baseline: current quotas unchanged, plus ``result``."""
    quotas = [
        QuotaAssignment(
            account=a.id, resource=r, before=a.quota.get(r, 0.0), after=a.quota.get(r, 0.0)
        )
        for a in org.accounts
        for r in org.resource_names
    ]
    base = Plan(
        organisation=org.name,
        created_at=datetime.now(UTC),
        start=start,
        period_minutes=org.rules.period_minutes,
        periods=org.rules.horizon_periods,
        quotas=quotas,
        report=SolverReport(method=method, status=Status.HEURISTIC, messages=list(result.notes)),
    )
    return attach(base, result)
