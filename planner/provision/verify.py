"""The provisioning rules every plan must keep, checked independently of how it was made.

:func:`verify_provisioning` reads only the organisation and the plan's ``new_accounts``,
``migrations`` and ``peers``; each broken rule is one sentence that starts with the rule's name:

- ``new-accounts-allowed``: no account opens when ``rules.allow_new_accounts`` is off, and at
  most ``rules.max_new_accounts`` open;
- ``new-account-id``: a new account's id is unique and names no existing account or workload;
- ``new-account-template``: its template exists;
- ``new-account-quota``: its quota is at least the template's seed and at most its limits;
- ``migration-target-opened``: every migration goes to an account the plan opens (or to an
  existing one), never to an unopened one;
- ``migration-source``: a migration moves a workload out of the account that holds it;
- ``migration-migratable``: only workloads marked ``migratable`` move;
- ``one-account-per-workload``: no workload moves twice (so none ends in two accounts);
- ``migration-steps``: steps are numbered 1, 2, ... in order;
- ``must-stay-together``: both ends of every ``rules.must_stay_together`` pair end in one
  account;
- ``cut-traffic-cap``: per account, the traffic the plan cuts is within
  ``rules.max_cut_traffic_per_account`` (when set);
- ``cut-edges``: each step's ``cut_edges`` are exactly the workload's edges the plan splits
  (ends in one account before, in two after), with their traffic.
"""

from __future__ import annotations

from collections import defaultdict

from models import Organisation, Plan
from planner.provision.extract import pair_traffic

TOL = 1e-6


def verify_provisioning(org: Organisation, plan: Plan) -> list[str]:
    """Every provisioning rule ``plan`` breaks for ``org`` (module docstring); empty when none.

    Parameters
    ----------
    org
        The organisation the plan was made for (before the plan).
    plan
        Any plan (greedy, program, baseline).
    """
    out: list[str] = []
    rules = org.rules
    new = plan.new_accounts
    if new and not rules.allow_new_accounts:
        out.append(f"new-accounts-allowed: {len(new)} account(s) open but the rules forbid it")
    if len(new) > rules.max_new_accounts:
        out.append(
            f"new-accounts-allowed: {len(new)} accounts open, above rules.max_new_accounts = "
            f"{rules.max_new_accounts}"
        )
    taken = set(org.account_ids) | {w.id for w in org.workloads}
    templates = {t.id: t for t in org.templates}
    seen: set[str] = set()
    for a in new:
        if a.id in taken or a.id in seen:
            out.append(f"new-account-id: {a.id!r} repeats an existing or new id")
        seen.add(a.id)
        tpl = templates.get(a.template)
        if tpl is None:
            out.append(f"new-account-template: {a.id} names the unknown template {a.template!r}")
            continue
        for r, s in tpl.seed.items():
            if a.quota.get(r, 0.0) < s - TOL * max(1.0, s):
                out.append(
                    f"new-account-quota: {a.id} holds {a.quota.get(r, 0.0):g} {r}, below its "
                    f"template's seed {s:g}"
                )
        for r, q in a.quota.items():
            lim = tpl.limits.get(r)
            if lim is not None and q > lim + TOL * max(1.0, lim):
                out.append(
                    f"new-account-quota: {a.id} holds {q:g} {r}, above its template's limit {lim:g}"
                )
    owner = {w.id: w.account for w in org.workloads}
    migratable = {w.id: w.migratable for w in org.workloads}
    where = dict(owner)
    moved: set[str] = set()
    existing = set(org.account_ids)
    for i, m in enumerate(plan.migrations):
        if m.step != i + 1:
            out.append(f"migration-steps: step {i + 1} is numbered {m.step}")
        if m.workload not in owner:
            out.append(f"migration-source: step {m.step} moves the unknown workload {m.workload!r}")
            continue
        if m.target not in seen and m.target not in existing:
            out.append(
                f"migration-target-opened: step {m.step} moves {m.workload} to {m.target!r}, "
                "which the plan does not open"
            )
        if m.workload in moved:
            out.append(
                f"one-account-per-workload: {m.workload} moves more than once (step {m.step})"
            )
        elif m.source != owner[m.workload]:
            out.append(
                f"migration-source: step {m.step} moves {m.workload} out of {m.source}, but it "
                f"lives in {owner[m.workload]}"
            )
        if not migratable[m.workload]:
            out.append(f"migration-migratable: {m.workload} is not migratable but moves")
        moved.add(m.workload)
        where[m.workload] = m.target
    for u, v in rules.must_stay_together:
        if where.get(u) != where.get(v):
            out.append(f"must-stay-together: {u} ends in {where.get(u)} and {v} in {where.get(v)}")
    traffic = pair_traffic(org)
    cut_at: dict[str, float] = defaultdict(float)
    for (u, v), t in traffic.items():
        if owner[u] == owner[v] and where[u] != where[v]:
            cut_at[where[u]] += t
            cut_at[where[v]] += t
    cap = rules.max_cut_traffic_per_account
    if cap is not None:
        for acc, t in sorted(cut_at.items()):
            if t > cap + TOL * max(1.0, cap):
                out.append(f"cut-traffic-cap: the plan cuts {t:g} traffic at {acc}, above {cap:g}")
    nbrs: dict[str, dict[str, float]] = defaultdict(dict)
    for (u, v), t in traffic.items():
        nbrs[u][v] = t
        nbrs[v][u] = t
    for m in plan.migrations:
        if m.workload not in owner:
            continue
        want = {
            (min(m.workload, v), max(m.workload, v)): t
            for v, t in nbrs[m.workload].items()
            if where[v] != where[m.workload] and owner[v] == owner[m.workload]
        }
        got = {(c.source, c.target): c.traffic for c in m.cut_edges}
        if set(want) != set(got) or any(
            abs(want[k] - got[k]) > TOL * max(1.0, want[k]) for k in want
        ):
            out.append(
                f"cut-edges: step {m.step} ({m.workload}) reports other cut edges than the plan makes"
            )
        elif abs(m.traffic_cut - sum(got.values())) > TOL * max(1.0, m.traffic_cut):
            out.append(f"cut-edges: step {m.step} traffic_cut is not the sum of its cut edges")
    return out
