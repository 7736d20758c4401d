"""Reports render: a replay folder and one plan, through the library and the command line."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from test_simulate_support import SAMPLE, at, sample

from models import Loan, NewAccount, ShadowQuota
from models.plan import Migration
from planner.cli import main
from planner.greedy import negotiate_resources
from planner.profiles import build_need_profiles
from planner.report import choose_accounts, render, render_run
from planner.simulate import simulate
from planner.simulate.output import read_run, run_tables, write_run

PNG = b"\x89PNG\r\n\x1a\n"


def _pngs_ok(paths: list[Path]) -> list[Path]:
    pngs = [p for p in paths if p.suffix == ".png"]
    for p in pngs:
        data = p.read_bytes()
        assert data.startswith(PNG), p
        assert len(data) > 5_000, p  # a drawn figure, not an empty canvas
    return pngs


@pytest.fixture(scope="module")
def tables():
    org, usage = sample()
    replay = simulate(
        org, usage, policies=["static", "greedy", "kueue"], start="2013-07-10", end="2013-07-12"
    )
    return run_tables(replay)


def test_run_report_renders_and_round_trips(tables, tmp_path):
    write_run(tables, tmp_path)
    stale = tmp_path / "account_gone_cpu.png"  # an earlier report's account plot
    stale.write_bytes(PNG)
    back = read_run(tmp_path)
    assert list(back.metrics["policy"]) == ["static", "greedy", "kueue"]
    assert len(back.series) == len(tables.series)
    written = render_run(back, tmp_path)
    names = {p.name for p in written}
    assert {"report.md", "report.html", "totals.png", "graph.png"} <= names
    chosen = choose_accounts(back)
    assert len(chosen) == 3
    assert len(_pngs_ok(written)) == 2 + len(chosen)
    assert not stale.exists()
    assert len(list(tmp_path.glob("account_*.png"))) == len(chosen)
    md = (tmp_path / "report.md").read_text()
    assert "| policy | throttled_cpu |" in md
    assert "![Throttled and idle per policy" in md
    assert "<table>" in (tmp_path / "report.html").read_text()
    # no policy fell back: no fallback paragraph (it once listed "greedy: nan" and the like)
    assert "Fallbacks" not in md
    cycles = back.cycles.copy()
    cycles["fallback"] = cycles["fallback"].astype(object)  # read back all empty: floats
    cycles.loc[cycles.index[cycles["policy"] == "greedy"][:2], "fallback"] = "time ran out"
    render_run(dataclasses.replace(back, cycles=cycles), tmp_path)
    md = (tmp_path / "report.md").read_text()
    assert "Fallbacks: greedy: 2 cycle(s): time ran out" in md
    assert "nan" not in md.split("Fallbacks")[1].splitlines()[0]


def test_cli_simulate_then_report(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(
        [
            "simulate",
            str(SAMPLE),
            "--policies",
            "static,kueue",
            "--start",
            "2013-07-12",
            "--end",
            "2013-07-13",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    assert "Replay of bitbrains-100vm" in capsys.readouterr().out
    for name in ("run.json", "metrics.csv", "series.csv.gz", "report.md", "totals.png"):
        assert (out / name).is_file(), name
    assert "kueue" in (out / "metrics.csv").read_text()
    assert main(["report", str(out), "--out", str(tmp_path / "again")]) == 0
    assert (tmp_path / "again" / "report.html").is_file()
    assert main(["simulate", str(SAMPLE), "--policies", "bogus"]) == 2
    assert "unknown policy 'bogus'" in capsys.readouterr().err


def test_plan_report_marks_loans_shadows_new_accounts_and_moves(tmp_path):
    org, usage = sample()
    start = at(24 * 10)
    profiles = {p.account: p for p in build_need_profiles(org, usage, start=start)}
    base = negotiate_resources(org, profiles, start=start)
    a, b = org.account_ids[:2]
    wl = next(w.id for w in org.workloads if w.account == a)
    plan = base.model_copy(
        update={
            "need_profiles": list(profiles.values()),
            "loans": [
                Loan(
                    lender=b,
                    borrower=a,
                    resource="cpu",
                    amount=5.0,
                    start=start,
                    until=at(24 * 10 + 6),
                )
            ],
            "shadow_quotas": [
                ShadowQuota(
                    account=a,
                    resource="cpu",
                    amount=3.0,
                    start=at(24 * 10 + 2),
                    until=at(24 * 10 + 8),
                )
            ],
            "new_accounts": [
                NewAccount(
                    id="web-new",
                    name="web-new",
                    template="web-template",
                    seed={"cpu": 1.0},
                    quota={"cpu": 1.0},
                )
            ],
            "migrations": [
                Migration(
                    step=1, workload=wl, source=a, target="web-new", moved_demand={"cpu": 1.0}
                )
            ],
        }
    )
    path = tmp_path / "plan.json"
    path.write_text(plan.model_dump_json())
    assert main(["report", str(path), "--org", str(SAMPLE)]) == 0
    out = tmp_path / "plan_report"
    assert (out / "report.md").is_file()
    md = (out / "report.md").read_text()
    assert "## Loans" in md
    assert "## Shadow quotas" in md
    assert "web-new" in md
    assert len(_pngs_ok(sorted(out.iterdir()))) >= 2
    # without the organisation the graph still draws the plan's own accounts
    written = render(path, tmp_path / "bare")
    assert any(p.name == "graph.png" for p in written)
    with pytest.raises(ValueError, match="is not a plan"):
        render(SAMPLE / "dependencies.csv", tmp_path / "x")


def test_the_graph_draws_only_the_busiest_loan_pairs(tmp_path, monkeypatch):
    from planner.report import plots

    org, _ = sample()
    ids = [a.id for a in org.accounts]
    loans = [(a, b) for a in ids for b in ids if a != b]  # every pair once
    loans += [(ids[0], ids[1])] * 5  # the busiest pair
    drawn: list[list] = []
    real = plots.nx.draw_networkx_edges

    def spy(g, pos, **kw):  # type: ignore[no-untyped-def]
        if kw.get("edge_color") == "#1f77b4":
            drawn.append(list(kw["edgelist"]))
        return real(g, pos, **kw)

    monkeypatch.setattr(plots.nx, "draw_networkx_edges", spy)
    path = plots.graph_plot(org, tmp_path / "g.png", loans=loans)
    assert path.read_bytes().startswith(PNG)
    assert len(drawn) == 1
    assert len(drawn[0]) == min(plots.MAX_LOAN_PAIRS, len(set(loans)))
    assert drawn[0][0] == (ids[0], ids[1])
