"""The provisioning block of the joint program: open new accounts and move workloads into them.

Plugs into :func:`planner.formulation.build_model` through its extension hook::

    ext = provisioning_extension(coarse, candidates=None)
    model = build_model(data, extensions=[ext])

Notation (on top of :mod:`planner.formulation.allocation`): candidate new accounts ``k``, each
split off one *source* account ``a(k)`` from a template (seed ``s[r]``, limits ``U[r]``,
opening cost ``F``); movable clusters ``c`` of workloads (:mod:`planner.provision.coarsen`) with
demand ``D[c,r,t] = share[c,r] x d[a(c),r,t]``, migration cost ``m[c]`` and traffic ``f[c]`` to
pinned workloads of their account; placement pairs ``(c,k)`` with ``a(c) = a(k)``; coarse edges
``e = (i, j)`` inside one account with traffic ``w[e]``.

Variables: ``open[k]`` binary (cost ``F``); ``new_quota[k,r]`` in ``[0, min(U, C - S)]`` (cost
``cost_per_unit x periods``); ``new_unmet[k,r,t]`` (priced like the source's unmet demand);
``place[c,k]`` binary (cost ``m[c] + cut_cost x f[c]``); ``cut[e]`` in ``[0, 1]`` (cost
``cut_cost x w[e]``); ``cut_at[e,k]`` only when ``rules.max_cut_traffic_per_account`` is set.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from models import AccountTemplate, Organisation
from planner.formulation.core import FloatArray, IntArray, ModelBuilder
from planner.formulation.data import ProblemData
from planner.provision.coarsen import Coarsening
from planner.provision.rounding import round_open, round_place

K, R, T = "candidate", "resource", "period"


@dataclass(frozen=True)
class Candidate:
    """A new account the program may open: split off ``source`` from ``template``."""

    id: str
    source: str
    template: AccountTemplate


@dataclass
class ProvisioningLayout:
    """How the provisioning blocks map to candidates and clusters (read by the extraction).

    ``pairs[p] = (cluster index, candidate index)`` is the ``p``-th ``place`` variable;
    ``cluster_demand`` is ``D[c,r,t]``; ``edge_pairs`` lists ``(edge index, candidate index)``
    of the ``cut`` rows.
    """

    coarse: Coarsening
    candidates: list[Candidate]
    pairs: list[tuple[int, int]]
    cluster_demand: FloatArray
    edge_pairs: list[tuple[int, int]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def matching_template(org: Organisation, account: str) -> AccountTemplate | None:
    """The template a new account split off ``account`` uses (``None``: it cannot be split).

    The templates whose ``application_profile`` is the account's; among them the cheapest to
    open (ties by id). A template that is not ``splittable`` rules the account out.
    """
    profile = org.account(account).application_profile
    if profile is None:
        return None
    found = sorted(
        (t for t in org.templates if t.application_profile == profile),
        key=lambda t: (t.opening_cost, t.id),
    )
    if not found or not found[0].splittable:
        return None
    return found[0]


def candidate_accounts(
    data: ProblemData, coarse: Coarsening, *, spare: int = 1, per_account: int = 3
) -> list[Candidate]:
    """Candidate new accounts derived from the predicted excess.

    An account gets candidates when it has a matching template (:func:`matching_template`),
    movable clusters, and its peak demand exceeds what it can get without moving anything,
    ``avail[r] = min(ceiling[r], quota0[r] + pool[r] + borrow_limit[r])`` with ``pool`` the
    parent's unallocated base capacity. It gets
    ``n = min(per_account, ceil(max_r excess[r] / U[r]) + spare, clusters)`` candidates
    (``n >= 1``; ``U`` the template's limit, infinite limits count as one account), and at
    most ``rules.max_new_accounts`` (the program caps the total opened). None when
    ``rules.allow_new_accounts`` is off.

    A parent short of capacity gets no candidates from this rule unless an account is also
    short of its own ``available``: a new account's quota comes out of the same parent
    capacity, so opening one helps only against per-account ceilings (a provider's
    per-account limit) and borrowing limits.
    """
    org = data.org
    rules = org.rules
    if not rules.allow_new_accounts or rules.max_new_accounts == 0:
        return []
    pool = np.maximum(data.capacity - data.reserve - data.quota0.sum(axis=0), 0.0)
    out: list[Candidate] = []
    for i, acc in enumerate(data.accounts):
        clusters = coarse.of_account(acc)
        template = matching_template(org, acc)
        if not clusters or template is None:
            continue
        peak = data.demand[i].max(axis=1)
        avail = np.minimum(data.ceiling[i], data.quota0[i] + pool + data.borrow_limit[i])
        excess = peak - avail
        if not (excess > 1e-9).any():
            continue
        limits = np.array([template.limits.get(r, math.inf) for r in data.resources])
        ratio = np.where(np.isfinite(limits) & (limits > 0), excess / limits, 1.0)
        needed = max(1, math.ceil(float(ratio[excess > 1e-9].max()) - 1e-9))
        n = min(per_account, rules.max_new_accounts, needed + spare, len(clusters))
        out.extend(Candidate(f"{acc}+new{j + 1}", acc, template) for j in range(n))
    return out


def provisioning_extension(
    coarse: Coarsening,
    *,
    candidates: Sequence[Candidate] | None = None,
    spare: int = 1,
    per_account: int = 3,
) -> Callable[[ModelBuilder, ProblemData], None]:
    """An extension for :func:`planner.formulation.build_model` adding the provisioning block.

    Parameters
    ----------
    coarse
        The coarse workload graph (:func:`planner.provision.coarsen.coarsen`).
    candidates
        Candidate new accounts (default :func:`candidate_accounts`).
    spare, per_account
        Passed to :func:`candidate_accounts`.

    Returns
    -------
    callable
        ``extend(builder, data)``; it leaves the layout in ``builder.meta["provisioning"]``.
    """

    def extend(b: ModelBuilder, data: ProblemData) -> None:
        cands = (
            list(candidates)
            if candidates is not None
            else candidate_accounts(data, coarse, spare=spare, per_account=per_account)
        )
        layout = _layout(data, coarse, cands)
        b.meta["provisioning"] = layout
        if not layout.pairs:
            return
        for define in FAMILIES:
            define(b, data, layout)
        b.meta.setdefault("rounders", {}).update({"place": round_place, "open": round_open})

    return extend


def _layout(data: ProblemData, coarse: Coarsening, cands: list[Candidate]) -> ProvisioningLayout:
    acc_pos = {a: i for i, a in enumerate(data.accounts)}
    n_r, n_t = len(data.resources), len(data.periods)
    share = np.array([c.share for c in coarse.clusters]).reshape(len(coarse.clusters), n_r)
    rows = np.array([acc_pos[c.account] for c in coarse.clusters], dtype=np.int64)
    demand = share[:, :, None] * data.demand[rows] if rows.size else np.zeros((0, n_r, n_t))
    pairs = [(c, k) for k, cand in enumerate(cands) for c in coarse.of_account(cand.source)]
    by_account: dict[str, list[int]] = {}
    for k, cand in enumerate(cands):
        by_account.setdefault(cand.source, []).append(k)
    edge_pairs = [
        (e, k)
        for e, (i, _, _) in enumerate(coarse.edges)
        for k in by_account.get(coarse.clusters[i].account, [])
    ]
    return ProvisioningLayout(coarse, cands, pairs, demand, edge_pairs)


def _pair_arrays(layout: ProvisioningLayout) -> tuple[IntArray, IntArray]:
    arr = np.array(layout.pairs, dtype=np.int64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def define_provisioning_variables(b: ModelBuilder, d: ProblemData, lay: ProvisioningLayout) -> None:
    """Add ``open``, ``new_quota``, ``new_unmet``, ``place``, ``cut`` (and ``cut_at``).

    ``new_quota[k,r] <= min(U[r], C[r] - S[r])``; a candidate whose seed does not fit under
    that bound cannot open (``open[k] <= 0``). ``new_unmet[k,r,t] <= sum_c D[c,r,t]`` over the
    clusters that may move to ``k``.
    """
    rules = d.org.rules
    n_t = len(d.periods)
    cids = [c.id for c in lay.candidates]
    base = np.maximum(d.capacity - d.reserve, 0.0)
    seed = np.array([[c.template.seed.get(r, 0.0) for r in d.resources] for c in lay.candidates])
    lim = np.array(
        [[c.template.limits.get(r, math.inf) for r in d.resources] for c in lay.candidates]
    )
    q_hi = np.minimum(lim, base[None, :])
    fits = (seed <= q_hi + 1e-9).all(axis=1)
    for c in np.flatnonzero(~fits):
        lay.notes.append(f"{cids[c]} cannot open: its template's seed exceeds the base capacity")
    costs = [c.template.opening_cost for c in lay.candidates]
    b.add_block(
        "open",
        (K,),
        (cids,),
        upper=fits.astype(float),
        cost=costs,
        integer=True,
        doc="1 when the candidate account opens",
    )
    b.add_block(
        "new_quota",
        (K, R),
        (cids, d.resources),
        upper=q_hi,
        cost=d.unit_cost[None, :] * n_t,
        doc="base quota of a new account",
    )
    pc, pk = _pair_arrays(lay)
    movable = np.zeros((len(cids), len(d.resources), n_t))
    np.add.at(movable, pk, lay.cluster_demand[pc])
    src = np.array([d.accounts.index(c.source) for c in lay.candidates], dtype=np.int64)
    b.add_block(
        "new_unmet",
        (K, R, T),
        (cids, d.resources, d.periods),
        upper=movable,
        cost=d.unmet_weight[src][:, None, None],
        doc="demand a new account leaves uncovered",
    )
    cl = lay.coarse
    labels = [f"{cl.clusters[c].id}->{cids[k]}" for c, k in lay.pairs]
    cost = np.array(
        [cl.clusters[c].migration_cost + rules.cut_cost * cl.fixed_traffic[c] for c, _ in lay.pairs]
    )
    b.add_block(
        "place",
        ("cluster->candidate",),
        (labels,),
        upper=1.0,
        cost=cost,
        integer=True,
        doc="1 when the cluster moves to the candidate",
    )
    elabels = [f"{cl.clusters[i].id}~{cl.clusters[j].id}" for i, j, _ in cl.edges]
    w = np.array([x for _, _, x in cl.edges])
    b.add_block(
        "cut",
        ("edge",),
        (elabels,),
        upper=1.0,
        cost=rules.cut_cost * w,
        doc="1 when the edge ends up between two accounts",
    )
    if rules.max_cut_traffic_per_account is not None:
        ek = [f"{elabels[e]}@{cids[k]}" for e, k in lay.edge_pairs]
        b.add_block(
            "cut_at",
            ("edge@candidate",),
            (ek,),
            upper=1.0,
            doc="1 when the edge is cut at the candidate account",
        )


def define_open_seed(b: ModelBuilder, d: ProblemData, lay: ProvisioningLayout) -> None:
    """An open account holds at least its seed.

    ``new_quota[k,r] - s[r] x open[k] >= 0``.
    """
    f = b.add_family(
        "open_seed",
        (K, R),
        b.blocks["new_quota"].labels,
        lower=0.0,
        doc=define_open_seed.__doc__ or "",
    )
    seed = np.array([[c.template.seed.get(r, 0.0) for r in d.resources] for c in lay.candidates])
    b.add_terms("open_seed", "new_quota", f.index(), b.blocks["new_quota"].index(), 1.0)
    b.add_terms("open_seed", "open", f.index(), b.blocks["open"].index()[:, None], -seed)


def define_open_limit(b: ModelBuilder, d: ProblemData, lay: ProvisioningLayout) -> None:
    """A candidate that does not open holds nothing; an open one at most its limit.

    ``new_quota[k,r] - min(U[r], C[r] - S[r]) x open[k] <= 0``.
    """
    nq = b.blocks["new_quota"]
    f = b.add_family(
        "open_limit", (K, R), nq.labels, upper=0.0, doc=define_open_limit.__doc__ or ""
    )
    b.add_terms("open_limit", "new_quota", f.index(), nq.index(), 1.0)
    b.add_terms(
        "open_limit",
        "open",
        f.index(),
        b.blocks["open"].index()[:, None],
        -nq.upper.reshape(nq.shape),
    )


def define_place_open(b: ModelBuilder, d: ProblemData, lay: ProvisioningLayout) -> None:
    """Workloads move only to an open account.

    ``place[c,k] - open[k] <= 0``.
    """
    _, pk = _pair_arrays(lay)
    f = b.add_family(
        "place_open",
        ("cluster->candidate",),
        b.blocks["place"].labels,
        upper=0.0,
        doc=define_place_open.__doc__ or "",
    )
    b.add_terms("place_open", "place", f.index(), b.blocks["place"].index(), 1.0)
    b.add_terms("place_open", "open", f.index(), pk, -1.0)


def define_assign_once(b: ModelBuilder, d: ProblemData, lay: ProvisioningLayout) -> None:
    """A cluster moves to at most one new account (so no workload is in two accounts).

    ``sum_k place[c,k] <= 1``  for every movable cluster c with candidates.
    """
    pc, _ = _pair_arrays(lay)
    used = sorted(set(pc.tolist()))
    pos = {c: i for i, c in enumerate(used)}
    b.add_family(
        "assign_once",
        ("cluster",),
        ([lay.coarse.clusters[c].id for c in used],),
        upper=1.0,
        doc=define_assign_once.__doc__ or "",
    )
    rows = np.array([pos[c] for c in pc.tolist()], dtype=np.int64)
    b.add_terms("assign_once", "place", rows, b.blocks["place"].index(), 1.0)


def define_moved_demand(b: ModelBuilder, d: ProblemData, lay: ProvisioningLayout) -> None:
    """The demand of a moved cluster leaves its source account and arrives at the new one.

    Source (terms into the base ``coverage`` family):
    ``quota + shadow + borrow - lend + unmet + sum_k D[c,r,t] place[c,k] >= d[a,r,t]``;
    under hard thresholds also into ``min_coverage``:
    ``unmet[a,r,t] + (1 - mc[a]) sum_k D place <= (1 - mc[a]) d[a,r,t]``.
    Target (family ``new_coverage``):
    ``new_quota[k,r] + new_unmet[k,r,t] - sum_c D[c,r,t] place[c,k] >= 0``;
    under hard thresholds (family ``new_min_coverage``):
    ``new_unmet[k,r,t] - (1 - mc[a(k)]) sum_c D[c,r,t] place[c,k] <= 0``.
    """
    pc, pk = _pair_arrays(lay)
    place = b.blocks["place"].index()[:, None, None]
    acc_pos = {a: i for i, a in enumerate(d.accounts)}
    src = np.array([acc_pos[lay.coarse.clusters[c].account] for c in pc.tolist()], dtype=np.int64)
    dem = lay.cluster_demand[pc]
    cov = b.families["coverage"].index()
    b.add_terms("coverage", "place", cov[src], place, dem)
    hard = "min_coverage" in b.families
    if hard:
        slack = (1.0 - d.min_coverage)[src][:, None, None]
        b.add_terms(
            "min_coverage", "place", b.families["min_coverage"].index()[src], place, slack * dem
        )
    f = b.add_family(
        "new_coverage",
        (K, R, T),
        b.blocks["new_unmet"].labels,
        lower=0.0,
        doc=define_moved_demand.__doc__ or "",
    )
    b.add_terms(
        "new_coverage", "new_quota", f.index(), b.blocks["new_quota"].index()[:, :, None], 1.0
    )
    b.add_terms("new_coverage", "new_unmet", f.index(), b.blocks["new_unmet"].index(), 1.0)
    b.add_terms("new_coverage", "place", f.index()[pk], place, -dem)
    if hard:
        g = b.add_family(
            "new_min_coverage",
            (K, R, T),
            b.blocks["new_unmet"].labels,
            upper=0.0,
            doc="new accounts keep their source's performance threshold",
        )
        ksrc = np.array([acc_pos[c.source] for c in lay.candidates], dtype=np.int64)
        mc = (1.0 - d.min_coverage)[ksrc]
        b.add_terms("new_min_coverage", "new_unmet", g.index(), b.blocks["new_unmet"].index(), 1.0)
        b.add_terms("new_min_coverage", "place", g.index()[pk], place, -mc[pk][:, None, None] * dem)


def define_new_capacity(b: ModelBuilder, d: ProblemData, lay: ProvisioningLayout) -> None:
    """New accounts' quotas come out of the parent's base capacity like every quota.

    Terms into ``capacity[r,t]``: ``+ sum_k new_quota[k,r]``; into ``reserve[r]``: the same.
    """
    nq = b.blocks["new_quota"].index()
    b.add_terms(
        "capacity", "new_quota", b.families["capacity"].index()[None, :, :], nq[:, :, None], 1.0
    )
    b.add_terms("reserve", "new_quota", b.families["reserve"].index()[None, :], nq, 1.0)


def define_cut(b: ModelBuilder, d: ProblemData, lay: ProvisioningLayout) -> None:
    """An edge is cut when its ends are placed differently at some candidate.

    ``cut[e] - place[i,k] + place[j,k] >= 0`` and ``cut[e] + place[i,k] - place[j,k] >= 0``
    for every coarse edge ``e = (i, j)`` and candidate ``k`` of its account (with
    ``cut_at[e,k]`` in place of ``cut[e]`` as well, when the per-account cap is set).
    Edges to pinned workloads are cut exactly when the cluster moves: their traffic is priced
    on ``place``.
    """
    if not lay.edge_pairs:
        return
    idx = {p: n for n, p in enumerate(lay.pairs)}
    ep = np.array(lay.edge_pairs, dtype=np.int64)
    e, k = ep[:, 0], ep[:, 1]
    ends = np.array([(i, j) for i, j, _ in lay.coarse.edges], dtype=np.int64)
    pi = np.array([idx[(int(c), int(q))] for c, q in zip(ends[e, 0], k, strict=True)])
    pj = np.array([idx[(int(c), int(q))] for c, q in zip(ends[e, 1], k, strict=True)])
    blocks = ["cut", "cut_at"] if "cut_at" in b.blocks else ["cut"]
    for name in blocks:
        fam = f"{name}_split"
        labels = [
            f"{b.blocks['cut'].labels[0][x]}@{lay.candidates[y].id}" for x, y in lay.edge_pairs
        ]
        f = b.add_family(
            fam,
            ("edge@candidate", "side"),
            (labels, ["+", "-"]),
            lower=0.0,
            doc=define_cut.__doc__ or "",
        )
        rows = f.index()
        col = e if name == "cut" else np.arange(len(lay.edge_pairs))
        b.add_terms(fam, name, rows, col[:, None], 1.0)
        b.add_terms(fam, "place", rows, pi[:, None], np.array([-1.0, 1.0]))
        b.add_terms(fam, "place", rows, pj[:, None], np.array([1.0, -1.0]))


def define_cut_cap(b: ModelBuilder, d: ProblemData, lay: ProvisioningLayout) -> None:
    """Cap on the traffic the plan cuts, per account (``rules.max_cut_traffic_per_account``).

    Source account a: ``sum_{e in a} w[e] cut[e] + sum_{(c,k), a(c) = a} f[c] place[c,k] <= cap``.
    New account k: ``sum_e w[e] cut_at[e,k] + sum_c f[c] place[c,k] <= cap``.
    (Traffic that was already between two accounts before the plan does not count.)
    """
    cap = d.org.rules.max_cut_traffic_per_account
    if cap is None:
        return
    cl = lay.coarse
    sources = sorted({c.source for c in lay.candidates})
    labels = sources + [c.id for c in lay.candidates]
    b.add_family(
        "cut_cap",
        ("account",),
        (labels,),
        upper=cap,
        doc=define_cut_cap.__doc__ or "",
        relaxable=True,
    )
    spos = {a: i for i, a in enumerate(sources)}
    w = np.array([x for _, _, x in cl.edges])
    if cl.edges:
        erow = [spos.get(cl.clusters[i].account, -1) for i, _, _ in cl.edges]
        keep = np.array([r >= 0 for r in erow])
        b.add_terms("cut_cap", "cut", np.array(erow)[keep], np.flatnonzero(keep), w[keep])
    if lay.edge_pairs:
        ep = np.array(lay.edge_pairs, dtype=np.int64)
        b.add_terms("cut_cap", "cut_at", len(sources) + ep[:, 1], np.arange(len(ep)), w[ep[:, 0]])
    pc, pk = _pair_arrays(lay)
    fixed = cl.fixed_traffic[pc]
    srow = np.array([spos[cl.clusters[c].account] for c in pc.tolist()], dtype=np.int64)
    b.add_terms("cut_cap", "place", srow, np.arange(len(pc)), fixed)
    b.add_terms("cut_cap", "place", len(sources) + pk, np.arange(len(pc)), fixed)


def define_max_new_accounts(b: ModelBuilder, d: ProblemData, lay: ProvisioningLayout) -> None:
    """At most ``rules.max_new_accounts`` new accounts; candidates of one source open in order.

    ``sum_k open[k] <= max_new_accounts``; ``open[k_j] - open[k_{j+1}] >= 0`` for consecutive
    candidates of one source (they are interchangeable: this removes symmetric solutions).
    """
    b.add_family(
        "max_new_accounts",
        ("all",),
        (["all"],),
        upper=d.org.rules.max_new_accounts,
        doc="sum_k open[k] <= max_new_accounts",
    )
    n = len(lay.candidates)
    b.add_terms("max_new_accounts", "open", np.zeros(n, dtype=np.int64), np.arange(n), 1.0)
    order = [
        (k, k + 1) for k in range(n - 1) if lay.candidates[k].source == lay.candidates[k + 1].source
    ]
    if not order:
        return
    g = b.add_family(
        "open_order",
        ("candidate pair",),
        ([f"{lay.candidates[i].id}>={lay.candidates[j].id}" for i, j in order],),
        lower=0.0,
        doc=define_max_new_accounts.__doc__ or "",
    )
    arr = np.array(order, dtype=np.int64)
    b.add_terms("open_order", "open", g.index(), arr[:, 0], 1.0)
    b.add_terms("open_order", "open", g.index(), arr[:, 1], -1.0)


FAMILIES = (
    define_provisioning_variables,
    define_open_seed,
    define_open_limit,
    define_place_open,
    define_assign_once,
    define_moved_demand,
    define_new_capacity,
    define_cut,
    define_cut_cap,
    define_max_new_accounts,
)
