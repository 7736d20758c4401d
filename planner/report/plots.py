"""PNG plots (matplotlib, Agg backend): policy totals, one account over time, the dependency graph."""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import networkx as nx
import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from models import Organisation
from planner.io import write_atomic

COLORS = {
    "static": "#7f7f7f",
    "greedy": "#d62728",
    "kueue": "#ff7f0e",
    "kueue-shadow": "#e6a04d",
    "mip": "#1f77b4",
    "mip-plan": "#9ecae1",
    "oracle": "#2ca02c",
}


def save(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG atomically and close it."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    write_atomic(path, buf.getvalue())
    return path


def totals_plot(metrics: pd.DataFrame, path: Path) -> Path:
    """Bars per policy: throttled and idle, each as a share of the parent's capacity-hours."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    names = [str(p) for p in metrics["policy"]]
    colors = [COLORS.get(n, "#9467bd") for n in names]
    for ax, key, title in (
        (axes[0], "throttled_share", "Throttled demand (lower is better)"),
        (axes[1], "idle_share", "Idle quota (lower is better)"),
    ):
        values = metrics[key].to_numpy(dtype=float)
        bars = ax.bar(names, values, color=colors)
        ax.bar_label(bars, labels=[f"{v:,.3g}" for v in values], fontsize=8)
        ax.set_title(title, fontsize=10)
        ax.set_ylabel("parent capacity-hours")
        ax.grid(axis="y", alpha=0.3)
        # long policy names (kueue-shadow, mip-plan) overlap when set horizontally
        ax.tick_params(axis="x", labelrotation=30)
        for label in ax.get_xticklabels():
            label.set_horizontalalignment("right")
    fig.suptitle("Per policy, summed over accounts and resources (each / parent capacity)")
    return save(fig, path)


def account_plot(
    series: pd.DataFrame,
    events: pd.DataFrame,
    account: str,
    resource: str,
    policies: Sequence[str],
    path: Path,
    unit: str = "",
    demand_label: str = "demand (actual)",
) -> Path:
    """Demand vs effective quota of one account over time, one panel per policy.

    Shaded: shadow quota (green), borrowed (blue), lent (orange hatched), throttled usage (red);
    triangles: loans made (blue up) and reclaimed (black down); dashed: base quota.
    """
    fig, axes = plt.subplots(
        len(policies), 1, figsize=(11, 1.9 * len(policies) + 0.6), sharex=True, squeeze=False
    )
    for ax, name in zip(axes[:, 0], policies, strict=True):
        s = series[
            (series["policy"] == name)
            & (series["account"] == account)
            & (series["resource"] == resource)
        ].sort_values("ts")
        if s.empty:
            ax.text(0.5, 0.5, f"{name}: no data for {account}", transform=ax.transAxes, ha="center")
            continue
        t = pd.to_datetime(s["ts"]).to_numpy()
        u, q = s["usage"].to_numpy(float), s["quota"].to_numpy(float)
        sh, b, lent = (s[c].to_numpy(float) for c in ("shadow", "borrowed", "lent"))
        e = s["effective"].to_numpy(float)
        kw = {"step": "post", "linewidth": 0}
        ax.fill_between(t, q, q + sh, color="#2ca02c", alpha=0.35, label="shadow", **kw)
        ax.fill_between(
            t, q + sh - lent, q + sh - lent + b, color="#1f77b4", alpha=0.3, label="borrowed", **kw
        )
        ax.fill_between(
            t,
            q + sh - lent,
            q + sh,
            facecolor="none",
            edgecolor="#ff7f0e",
            hatch="///",
            label="lent",
            **kw,
        )
        ax.fill_between(
            t, e, np.maximum(u, e), color="#d62728", alpha=0.45, label="throttled", **kw
        )
        ax.step(t, q, where="post", color="#555", linestyle="--", linewidth=0.9, label="base quota")
        ax.step(
            t,
            e,
            where="post",
            color=COLORS.get(name, "#9467bd"),
            linewidth=1.4,
            label="effective quota",
        )
        ax.step(t, u, where="post", color="black", linewidth=0.9, label=demand_label)
        ev = events[(events["policy"] == name) & (events["account"] == account)]
        ev = ev[ev["resource"].astype(str) == resource] if len(ev) else ev
        top = float(np.nanmax(np.maximum(u, e))) if len(u) else 1.0
        for kind, marker, color in (("loan", "^", "#1f77b4"), ("loan_reclaimed", "v", "black")):
            if not len(ev):
                continue
            when = pd.to_datetime(ev[ev["kind"] == kind]["ts"])
            if len(when):
                ax.scatter(
                    when,
                    np.full(len(when), top * 1.04),
                    marker=marker,
                    color=color,
                    s=18,
                    label=kind.replace("_", " "),
                )
        thr = float(np.clip(u - e, 0, None).sum())
        ax.set_title(f"{name}: throttled {thr:,.3g} {unit or resource}-h", fontsize=9, loc="left")
        ax.set_ylabel(unit or resource, fontsize=8)
        ax.grid(alpha=0.25)
    handles, labels = [], []
    for ax in axes[:, 0]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.legend(
        handles,
        labels,
        loc="upper center",
        ncol=min(len(labels), 9),
        fontsize=7,
        bbox_to_anchor=(0.5, 0.0),
    )
    fig.suptitle(f"{account} / {resource}: demand vs effective quota")
    fig.autofmt_xdate()
    fig.tight_layout()
    return save(fig, path)


def account_graph(org: Organisation, extra_accounts: Iterable[str] = ()) -> nx.DiGraph:
    """Accounts as nodes; an edge ``a -> b`` when a workload (or the account) of ``a`` depends on
    one of ``b``, weighted by the summed traffic."""
    g = nx.DiGraph()
    g.add_nodes_from(org.account_ids)
    g.add_nodes_from(extra_accounts)
    owner = {w.id: w.account for w in org.workloads}
    for a in org.accounts:
        for dep in a.dependencies:
            g.add_edge(a.id, dep, weight=1.0)
    for e in org.edges:
        src, dst = owner.get(e.source, e.source), owner.get(e.target, e.target)
        if src == dst or src not in g or dst not in g:
            continue
        w = g.edges[src, dst]["weight"] + e.weight if g.has_edge(src, dst) else e.weight
        g.add_edge(src, dst, weight=w)
    return g


#: Lender-borrower pairs drawn on the graph (the busiest); the legend says how many there were.
MAX_LOAN_PAIRS = 12


def graph_plot(
    org: Organisation,
    path: Path,
    *,
    new_accounts: Sequence[str] = (),
    moves: Sequence[tuple[str, str, str]] = (),
    loans: Sequence[tuple[str, str]] = (),
    title: str = "Dependency graph",
) -> Path:
    """Draw the account graph; new accounts (red), workload moves (purple arrows, ``(workload,
    source, target)``) and loans (blue dotted, ``(lender, borrower)``, one entry per loan)
    highlighted: the :data:`MAX_LOAN_PAIRS` pairs with the most loans, wider for more."""
    g = account_graph(org, new_accounts)
    moved_from = {s for _, s, _ in moves}
    fig, ax = plt.subplots(figsize=(9, 7))
    pos = nx.spring_layout(g, seed=0, k=1.5 / max(1, len(g)) ** 0.5)
    colors = [
        "#d62728" if n in new_accounts else "#9467bd" if n in moved_from else "#aec7e8" for n in g
    ]
    sizes = [420 if n in new_accounts or n in moved_from else 160 for n in g]
    nx.draw_networkx_edges(g, pos, ax=ax, edge_color="#999", alpha=0.5, arrowsize=8, width=0.7)
    nx.draw_networkx_nodes(
        g, pos, ax=ax, node_color=colors, node_size=sizes, edgecolors="#333", linewidths=0.5
    )
    counts = Counter((s, t) for _, s, t in moves)
    if counts:
        mg = nx.DiGraph()
        mg.add_edges_from(counts)
        nx.draw_networkx_edges(
            mg,
            pos,
            ax=ax,
            edge_color="#9467bd",
            width=2.2,
            arrowsize=16,
            style="dashed",
            connectionstyle="arc3,rad=0.2",
        )
        nx.draw_networkx_edge_labels(
            mg, pos, ax=ax, edge_labels={k: f"{v} moved" for k, v in counts.items()}, font_size=7
        )
    pairs = Counter((a, b) for a, b in loans if a in pos and b in pos)
    # the busiest pairs only: a week of loans between every pair hides the graph
    top = sorted(pairs.items(), key=lambda kv: (-kv[1], kv[0]))[:MAX_LOAN_PAIRS]
    if top:
        edges = [k for k, _ in top]
        most = top[0][1]
        nx.draw_networkx_edges(
            nx.DiGraph(edges),
            pos,
            ax=ax,
            edgelist=edges,
            edge_color="#1f77b4",
            width=[0.8 + 2.2 * n / most for _, n in top],
            style="dotted",
            arrowsize=10,
            connectionstyle="arc3,rad=-0.2",
        )
    highlight = set(new_accounts) | moved_from | {t for _, _, t in moves}
    labels = {n: n for n in g if len(g) <= 40 or n in highlight}
    nx.draw_networkx_labels(g, pos, labels=labels, ax=ax, font_size=7)
    handles = [
        plt.Line2D([], [], marker="o", color="w", markerfacecolor=c, markersize=9, label=lab)
        for c, lab in (
            ("#aec7e8", "account"),
            ("#d62728", "new account"),
            ("#9467bd", "workloads moved out"),
        )
    ] + [
        plt.Line2D([], [], color="#9467bd", linestyle="--", label="workload move"),
        plt.Line2D(
            [],
            [],
            color="#1f77b4",
            linestyle=":",
            label=f"loans (busiest {len(top)} of {len(pairs)} pairs)" if pairs else "loans",
        ),
        plt.Line2D([], [], color="#999", label="dependency"),
    ]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7)
    ax.set_title(f"{title}: {len(g)} accounts, {g.number_of_edges()} dependencies")
    ax.axis("off")
    return save(fig, path)
