"""The replay loop: metrics recounted independently, resume = straight run, hand-checked mechanics."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from test_simulate_support import at, sample, tiny_org, tiny_usage, wave

from models import (
    Loan,
    NewAccount,
    Organisation,
    Plan,
    QuotaAssignment,
    ShadowQuota,
    SolverReport,
    Status,
)
from models.plan import Migration
from planner.simulate import account_metrics, build_trace, series_frame, simulate
from planner.simulate.metrics import cycles_frame, policy_metrics
from planner.simulate.play import play_cohort, play_planned
from planner.simulate.policies import apply_plan, get_policy
from planner.simulate.state import FIELDS, PolicyState, dump_state, load_state

_F = {name: i for i, name in enumerate(FIELDS)}

WEEK = {"start": "2013-07-08", "end": "2013-07-15"}


@pytest.fixture(scope="module")
def week():
    """A week of the 100-VM sample replayed under static, greedy and Kueue-like (6 h cycles)."""
    org, usage = sample()
    replay = simulate(org, usage, policies=["static", "greedy", "kueue"], **WEEK)
    return org, usage, replay


def _recount_throttled_and_idle(replay, usage: pd.DataFrame, start: str, end: str) -> pd.DataFrame:
    """Recount every policy's throttled and idle unit-hours from the raw usage (the account's
    usage is the sum of its workloads) and the recorded effective quotas, with plain pandas."""
    series = series_frame(replay)
    raw = usage.copy()
    raw["ts"] = pd.to_datetime(raw["ts"])
    raw = raw[(raw["ts"] >= start) & (raw["ts"] < end)]
    demand = raw.groupby(["account", "resource", "ts"], as_index=False)["value"].sum()
    merged = series.merge(demand, on=["account", "resource", "ts"], how="left")
    merged["value"] = merged["value"].fillna(0.0)
    assert np.allclose(merged["usage"], merged["value"], atol=1e-9)
    merged["thr"] = (merged["value"] - merged["effective"]).clip(lower=0)
    merged["idle"] = (merged["effective"] - merged["value"]).clip(lower=0)
    recount = merged.groupby(["policy", "account", "resource"])[["thr", "idle"]].sum()
    got = account_metrics(replay).set_index(["policy", "account"])
    for (policy, account, resource), row in recount.iterrows():
        assert got.loc[(policy, account), f"throttled_{resource}"] == pytest.approx(row["thr"])
        assert got.loc[(policy, account), f"idle_{resource}"] == pytest.approx(row["idle"])
    return merged


def test_week_metrics_match_an_independent_recount(week):
    org, usage, replay = week
    assert replay.complete
    assert len(replay.times) == 168
    merged = _recount_throttled_and_idle(replay, usage, WEEK["start"], WEEK["end"])
    assert len(merged) == 3 * len(org.accounts) * len(org.resources) * 168
    got = account_metrics(replay).set_index(["policy", "account"])
    # violation hours: account-hours where some resource is covered below min_coverage
    need = {a.id: a.performance_threshold.min_coverage for a in org.accounts}
    merged["low"] = (merged["value"] > 0) & (
        merged["effective"] < merged["account"].map(need) * merged["value"] - 1e-9
    )
    hours = merged.groupby(["policy", "account", "ts"])["low"].any().groupby(level=[0, 1]).sum()
    for (policy, account), n in hours.items():
        assert got.loc[(policy, account), "violation_hours"] == n
    # something happened: the static policy throttles, the Kueue-like one borrows
    totals = policy_metrics(replay).set_index("policy")
    assert totals.loc["static", "throttled_share"] > 0
    assert totals.loc["kueue", "loans"] > 0


def test_week_respects_capacity_and_limits(week):
    org, _, replay = week
    s = series_frame(replay)
    cap = pd.Series(org.parent.capacity)
    total = s.groupby(["policy", "resource", "ts"])["effective"].sum().reset_index()
    assert (total["effective"] <= total["resource"].map(cap) + 1e-6).all()
    quota0 = {(a.id, r): a.quota.get(r, 0.0) for a in org.accounts for r in org.resource_names}
    static = s[s["policy"] == "static"]
    expected = [quota0[(a, r)] for a, r in zip(static["account"], static["resource"], strict=True)]
    assert np.allclose(static["effective"], expected)
    k = s[s["policy"] == "kueue"]
    acc = {a.id: a for a in org.accounts}
    b_lim = [acc[a].borrow_limit[r] for a, r in zip(k["account"], k["resource"], strict=True)]
    l_lim = [acc[a].lend_limit[r] for a, r in zip(k["account"], k["resource"], strict=True)]
    assert (k["borrowed"].to_numpy() <= np.asarray(b_lim) + 1e-9).all()
    assert (k["lent"].to_numpy() <= np.asarray(l_lim) + 1e-9).all()
    # a lender only lends quota it does not use itself
    assert (k["lent"] <= (k["quota"] - k["usage"]).clip(lower=0) + 1e-9).all()
    g = s[s["policy"] == "greedy"]
    assert (g["quota"] != g["account"].map({a: 0 for a in acc})).any()


def _strip(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.drop(columns=[c for c in frame.columns if c.startswith("seconds")])


def test_interrupted_replay_resumes_to_the_same_metrics(tmp_path):
    org, usage = sample()
    kw = {"policies": ["static", "greedy", "kueue"], "start": "2013-07-09", "end": "2013-07-11"}
    straight = simulate(org, usage, **kw)
    ckpt = tmp_path / "ckpt"
    first = simulate(org, usage, checkpoint=ckpt, max_cycles=3, **kw)
    assert not first.complete
    assert sorted(p.name for p in ckpt.iterdir()) == [
        "greedy.ckpt.npz",
        "kueue.ckpt.npz",
        "static.ckpt.npz",
    ]
    resumed = simulate(org, usage, checkpoint=ckpt, **kw)
    assert resumed.complete
    assert [c["cycle"] for c in resumed.states["greedy"].cycles] == list(range(8))
    pd.testing.assert_frame_equal(series_frame(resumed), series_frame(straight))
    pd.testing.assert_frame_equal(_strip(policy_metrics(resumed)), _strip(policy_metrics(straight)))
    pd.testing.assert_frame_equal(account_metrics(resumed), account_metrics(straight))
    with pytest.raises(ValueError, match="other settings"):
        simulate(org, usage, checkpoint=ckpt, **(kw | {"end": "2013-07-12"}))


def test_state_round_trips_through_a_checkpoint():
    org = tiny_org()
    state = PolicyState("p", org, {"a-1": "a"}, n_steps=4)
    state.loans = [
        Loan(lender="c", borrower="a", resource="cpu", amount=1.0, start=at(0), until=at(3))
    ]
    state.row("a")[0, 1, :] = 2.5
    state.event("loan", at(0), "a", "cpu", amount=1.0, lender="c")
    back, cfg = load_state(dump_state(state, {"x": 1}))
    assert cfg == {"x": 1}
    assert back.loans == state.loans
    assert back.events == state.events
    assert np.array_equal(back.record["a"], state.record["a"], equal_nan=True)
    assert back.org == state.org


def test_loans_are_reclaimed_when_the_lender_needs_them_and_shadows_count():
    org = tiny_org()
    state = PolicyState("p", org, {}, n_steps=3)
    state.loans = [
        Loan(
            id="L1", lender="c", borrower="a", resource="cpu", amount=2.0, start=at(0), until=at(3)
        ),
        Loan(
            id="L2",
            lender="b",
            borrower="a",
            resource="cpu",
            amount=1.0,
            start=at(1),
            until=at(3),
            reclaim="expiry",
        ),
    ]
    state.shadows = [ShadowQuota(account="b", resource="cpu", amount=0.5, start=at(0), until=at(1))]
    # usage of a, b, c over 3 hours; c needs 2.5 of its 3 at hour 1, so only 0.5 stays lent
    usage = np.array([[[4.0, 5.0, 5.0]], [[1.0, 1.0, 1.0]], [[0.5, 2.5, 0.5]]])
    times = pd.date_range(at(0), periods=3, freq="h")
    play_planned(state, ["a", "b", "c"], usage, times, 0)
    eff = state.record["a"][0, :, 5]
    assert eff.tolist() == [3.0 + 2.0, 3.0 + 0.5 + 1.0, 3.0 + 0.5 + 1.0]
    assert state.record["b"][0, :, 5].tolist() == [3.5, 2.0, 2.0]
    assert state.record["c"][0, :, 4].tolist() == [2.0, 0.5, 0.5]
    kinds = [e["kind"] for e in state.events]
    assert kinds == ["loan_reclaimed"]
    assert state.events[0]["amount"] == pytest.approx(1.5)
    assert [x.amount for x in state.loans] == [0.5, 1.0]


def test_cohort_serves_higher_priority_first_within_limits():
    org = tiny_org()
    state = PolicyState("kueue", org, {}, n_steps=2)
    # parent has 1 unassigned; c lends at most 2 of its idle quota; a may borrow 2, b 5
    usage = np.array([[[6.0, 3.0]], [[7.0, 7.0]], [[0.0, 3.0]]])
    play_cohort(state, ["a", "b", "c"], usage, pd.date_range(at(0), periods=2, freq="h"), 0)
    borrowed = {x: state.record[x][0, :, 3].tolist() for x in "abc"}
    assert borrowed["a"] == [2.0, 0.0]  # its borrow limit; highest priority first
    assert borrowed["b"] == [1.0, 1.0]  # pool 1 + 2 = 3, a took 2; then c needs its quota back
    assert state.record["c"][0, :, 4].tolist() == [2.0, 0.0]
    kinds = [(e["kind"], e["account"]) for e in state.events]
    assert ("loan", "a") in kinds
    assert ("loan", "b") in kinds


def test_apply_plan_opens_moves_lends_and_reverts():
    org = tiny_org()
    org = org.model_copy(update={"templates": []})
    state = PolicyState("mip", org, {"a-1": "a", "b-1": "b", "c-1": "c"}, n_steps=4)
    now = pd.Timestamp(at(0))

    def plan(**kw):
        return Plan(
            organisation="tiny",
            created_at=at(0),
            start=at(0),
            period_minutes=60,
            periods=4,
            quotas=[QuotaAssignment(account="a", resource="cpu", before=3.0, after=4.0)],
            report=SolverReport(method="test", status=Status.HEURISTIC),
            **kw,
        )

    first = plan(
        new_accounts=[
            NewAccount(id="a2", name="a2", template="none", seed={"cpu": 1}, quota={"cpu": 1})
        ],
        migrations=[
            Migration(step=1, workload="a-1", source="a", target="a2", moved_demand={"cpu": 1})
        ],
        loans=[
            Loan(
                id="x",
                lender="c",
                borrower="b",
                resource="cpu",
                amount=1.0,
                start=at(0),
                until=at(2),
            )
        ],
        shadow_quotas=[
            ShadowQuota(account="b", resource="cpu", amount=1.0, start=at(0), until=at(4))
        ],
    )
    apply_plan(state, first, now)
    assert state.org.account("a").quota["cpu"] == 4.0
    assert state.org.account("a2").quota["cpu"] == 1.0
    assert state.placement["a-1"] == "a2"
    assert next(w for w in state.org.workloads if w.id == "a-1").account == "a2"
    assert state.org.state.loans == state.loans
    assert len(state.loans) == 1
    apply_plan(state, plan(), pd.Timestamp(at(1)))
    kinds = sorted(e["kind"] for e in state.events)
    assert kinds == [
        "account_opened",
        "loan",
        "quota_change",
        "shadow",
        "shadow_reverted",
        "workload_moved",
    ]
    assert state.shadows == []
    assert len(state.loans) == 1


def test_bad_arguments_are_refused():
    org, usage = tiny_org(), tiny_usage({x: wave(72, 2, 1) for x in "abc"})
    with pytest.raises(ValueError, match="unknown policy 'nope'; choose among static"):
        simulate(org, usage, policies=["nope"])
    with pytest.raises(ValueError, match="multiple of the period"):
        simulate(org, usage, policies=["static"], cycle_hours=1.5)
    with pytest.raises(ValueError, match="nothing to replay"):
        simulate(org, usage, policies=["static"], start="2013-07-03", end="2013-07-02")
    assert get_policy("kueue").play == "cohort"
    trace = build_trace(org, usage)
    assert trace.values.shape == (3, 1, 72)


def test_program_and_oracle_policies_run_on_a_small_replay():
    org, usage = (
        tiny_org(),
        tiny_usage({"a": wave(96, 3, 2), "b": wave(96, 3, 1, 6), "c": wave(96, 1, 1)}),
    )
    replay = simulate(org, usage, policies=["mip", "oracle"], cycle_hours=12, start="2013-07-03")
    cycles = cycles_frame(replay)
    assert len(cycles) == 2 * 4
    if (cycles["fallback"] == "planner.mip is not available: greedy used").all():
        assert set(cycles["method"]) == {"greedy"}
    else:
        assert set(cycles["method"]) <= {"mip", "mip-fast"}
    m = policy_metrics(replay).set_index("policy")
    # perfect foresight of the same planner never throttles more than the forecasts do here
    assert m.loc["oracle", "throttled_share"] <= m.loc["mip", "throttled_share"] + 1e-9
    # the program's metrics recount from the raw usage like every other policy's
    _recount_throttled_and_idle(replay, usage, "2013-07-03", "2013-07-05")
    s = series_frame(replay)
    total = s.groupby(["policy", "ts"])["effective"].sum()
    assert (total <= org.parent.capacity["cpu"] + 1e-6).all()


def _shadow_org(capacity: float) -> Organisation:
    org = tiny_org(shadow_ttl_periods=2, shadow_max_fraction=0.5)
    return org.model_copy(
        update={"parent": org.parent.model_copy(update={"capacity": {"cpu": capacity}})}
    )


def test_shadow_quotas_on_demand_come_from_free_capacity_within_fraction_and_ttl():
    org = _shadow_org(12.0)  # quotas 3 + 3 + 3: 3 free
    state = PolicyState("mip", org, {}, n_steps=5)
    # a wants 7 for three hours, then 3; b and c stay within their quotas
    usage = np.array([[[7.0, 7.0, 7.0, 3.0, 7.0]], [[3.0] * 5], [[1.0] * 5]])
    times = pd.date_range(at(0), periods=5, freq="h")
    play_planned(state, ["a", "b", "c"], usage, times, 0, cohort=True)
    borrowed = state.record["a"][0, :, _F["borrowed"]].tolist()
    shadow = state.record["a"][0, :, _F["shadow"]].tolist()
    # a borrows its limit (2) from the free 3, then a shadow of at most 0.5 x 3 from the 1
    # left; the time-to-live (2 periods) ends it at hour 2; it reverts when the need is gone
    assert borrowed == [2.0, 2.0, 2.0, 0.0, 2.0]
    assert shadow == [1.0, 1.0, 0.0, 0.0, 1.0]
    eff = {x: state.record[x][0, :, _F["effective"]] for x in "abc"}
    assert (sum(eff.values()) <= 12.0 + 1e-9).all()
    shadows = [
        (e["kind"], e["ts"][11:16], json.loads(e["detail"]).get("reason"))
        for e in state.events
        if e["kind"].startswith("shadow")
    ]
    assert shadows == [
        ("shadow", "00:00", None),
        ("shadow_reverted", "02:00", "time-to-live"),
        ("shadow", "04:00", None),
    ]


def test_no_shadow_on_demand_without_free_capacity_or_when_the_rules_forbid_it():
    usage = np.array([[[7.0, 7.0]], [[3.0, 3.0]], [[1.0, 1.0]]])
    times = pd.date_range(at(0), periods=2, freq="h")
    for org in (
        _shadow_org(10.0),
        tiny_org(allow_shadow=False).model_copy(update={"parent": _shadow_org(12.0).parent}),
    ):
        state = PolicyState("mip", org, {}, n_steps=2)
        play_planned(state, ["a", "b", "c"], usage, times, 0, cohort=True)
        assert state.record["a"][0, :, _F["shadow"]].tolist() == [0.0, 0.0]
        assert state.record["a"][0, :, _F["borrowed"]].tolist() == [2.0, 2.0]


def test_kueue_shadow_ablation_adds_shadows_to_the_cohort():
    org = _shadow_org(12.0)
    usage = np.array([[[7.0, 3.0]], [[3.0, 3.0]], [[1.0, 1.0]]])
    times = pd.date_range(at(0), periods=2, freq="h")
    plain, shadowed = PolicyState("kueue", org, {}, n_steps=2), PolicyState("k", org, {}, n_steps=2)
    play_cohort(plain, ["a", "b", "c"], usage, times, 0)
    play_cohort(shadowed, ["a", "b", "c"], usage, times, 0, shadows=True)
    assert plain.record["a"][0, :, _F["effective"]].tolist() == [5.0, 3.0]
    assert shadowed.record["a"][0, :, _F["effective"]].tolist() == [6.0, 3.0]
    assert get_policy("kueue-shadow").play == "cohort+shadow"
