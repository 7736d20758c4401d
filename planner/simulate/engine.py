"""The planning loop: forecast, plan, apply, then play the actual next cycle, for each policy.

Every cycle (``cycle_hours``) and for each policy: the history up to now (never after) is
forecast, the policy plans ``horizon_hours`` ahead from its own state (quotas, loans, shadow
quotas, accounts, placement), the plan is put in force, and the actual usage of the next cycle is
played against the resulting effective quotas, step by step (:mod:`planner.simulate.play`).
All policies see the same usage and the same parent capacity.

With a checkpoint folder, each policy's state is written atomically after every
``checkpoint_every`` cycles; a later call with the same arguments resumes from it and ends with
the same metrics as one run straight through (only the measured seconds differ).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from models import Organisation
from planner.forecast import default_forecaster
from planner.simulate.forecasting import SharedForecast
from planner.simulate.play import play_cohort, play_planned
from planner.simulate.policies import CycleContext, apply_plan, decide, expire, get_policy
from planner.simulate.state import PolicyState, read_checkpoint, save_checkpoint
from planner.simulate.trace import Trace, build_trace


@dataclass
class Replay:
    """What a replay produced: one :class:`PolicyState` per policy over the replayed steps."""

    trace: Trace
    times: pd.DatetimeIndex
    states: dict[str, PolicyState]
    config: dict[str, Any]
    initial: Organisation
    complete: bool

    @property
    def policies(self) -> list[str]:
        """Policy names in the order asked."""
        return list(self.states)


def default_start(trace: Trace, cycle: pd.Timedelta) -> pd.Timestamp:
    """First planned step: a warm-up of one week of history, or half the trace when it is shorter
    than two weeks, rounded up to a cycle boundary."""
    span = trace.times[-1] + trace.step - trace.times[0]
    warm = min(pd.Timedelta(days=7), span / 2)
    first = trace.times[0]
    return first + math.ceil(warm / cycle) * cycle


def simulate(
    org: Organisation,
    usage: pd.DataFrame,
    *,
    policies: Sequence[str] = ("static", "greedy", "kueue", "mip", "oracle"),
    cycle_hours: float = 6,
    horizon_hours: float = 24,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    history_days: float = 28,
    checkpoint: Path | None = None,
    checkpoint_every: int = 1,
    max_cycles: int | None = None,
    forecaster_factory: Callable[[], Any] | None = None,
    solver: str | None = None,
    time_limit: float | None = None,
    on_cycle: Callable[[int, int, str], None] | None = None,
    on_error: str = "raise",
) -> Replay:
    """Replay ``usage`` through time under each policy.

    Parameters
    ----------
    org, usage
        The organisation at the start and its usage (long: ``account, resource, ts, value`` and
        optionally ``workload``), which is both the history the planners see and the actual
        demand played.
    policies
        Names from :data:`planner.simulate.POLICIES`.
    cycle_hours, horizon_hours
        Replanning interval and planning horizon (multiples of the organisation's period).
    start, end
        Replayed window ``[start, end)``; default: after :func:`default_start`'s warm-up, to
        the end of the usage.
    history_days
        Trailing history handed to the forecaster each cycle.
    checkpoint
        Folder for checkpoints (resumed from when it holds some for the same settings).
    checkpoint_every
        Write checkpoints every this many cycles (and at the end).
    max_cycles
        Stop after this many cycles in this call (the rest resumes from the checkpoint).
    forecaster_factory
        Makes a fresh forecaster (default :func:`planner.forecast.default_forecaster`).
    solver, time_limit
        Passed to the program's solver.
    on_cycle
        Called with ``(cycle, n_cycles, policy)`` as each policy's cycle starts.
    on_error
        ``"raise"`` (default): a planning cycle that raises stops the replay. ``"keep"``: the
        policy keeps its current quotas, loans and shadow quotas for that cycle and the error
        is logged in its cycle row (``status`` "error", ``fallback`` the message), so one
        failing solve does not end a month-long replay.

    Returns
    -------
    Replay
        ``complete`` is False when ``max_cycles`` stopped it early.

    Raises
    ------
    ValueError
        On an unknown policy, a cycle or horizon that is not a whole number of periods, or an
        empty window.
    """
    if on_error not in ("raise", "keep"):
        raise ValueError(f"on_error must be 'raise' or 'keep', got {on_error!r}")
    names = [get_policy(p).name for p in policies]
    if not names or len(set(names)) != len(names):
        raise ValueError(f"policies must be distinct names, got {list(policies)}")
    period = pd.Timedelta(minutes=org.rules.period_minutes)
    cycle = pd.Timedelta(hours=cycle_hours)
    horizon = pd.Timedelta(hours=horizon_hours)
    for label, span in (("cycle_hours", cycle), ("horizon_hours", horizon)):
        if span <= pd.Timedelta(0) or span % period != pd.Timedelta(0):
            raise ValueError(
                f"{label} must be a positive multiple of the period ({period}); got {span}"
            )
    if horizon < cycle:
        raise ValueError(f"horizon_hours ({horizon}) must cover at least one cycle ({cycle})")
    org = org.model_copy(
        update={"rules": org.rules.model_copy(update={"horizon_periods": int(horizon / period)})}
    )
    trace = build_trace(org, usage)
    t0 = pd.Timestamp(start) if start is not None else default_start(trace, cycle)
    t_end = pd.Timestamp(end) if end is not None else trace.times[-1] + trace.step
    t_end = min(t_end, trace.times[-1] + trace.step)
    lo = trace.index_of(t0)
    hi = trace.index_of(t_end)
    if hi <= lo:
        raise ValueError(f"nothing to replay between {t0} and {t_end}")
    cycle_steps = int(cycle / period)
    n_cycles = math.ceil((hi - lo) / cycle_steps)
    n_steps = hi - lo
    history_steps = int(pd.Timedelta(days=history_days) / period)
    config = {
        "organisation": org.name,
        "policies": names,
        "cycle_hours": float(cycle_hours),
        "horizon_hours": float(horizon_hours),
        "start": str(t0),
        "end": str(t_end),
        "history_days": float(history_days),
        "accounts": org.account_ids,
        "solver": solver,
        "time_limit": time_limit,
    }
    states: dict[str, PolicyState] = {}
    for name in names:
        saved = read_checkpoint(checkpoint, name, config) if checkpoint else None
        states[name] = saved or PolicyState(
            policy=name, org=org, placement=dict(trace.home), n_steps=n_steps
        )
    shared = SharedForecast(forecaster_factory or default_forecaster)
    ran = 0
    for c in range(min(s.cycle for s in states.values()), n_cycles):
        if max_cycles is not None and ran >= max_cycles:
            break
        a = lo + c * cycle_steps
        b = min(hi, a + cycle_steps)
        now = trace.times[a]
        for name in names:
            state = states[name]
            if state.cycle != c:
                continue
            if on_cycle:
                on_cycle(c, n_cycles, name)
            _run_cycle(
                state,
                name,
                trace,
                now,
                a,
                b,
                lo,
                history_steps,
                shared,
                solver,
                time_limit,
                on_error,
            )
            state.cycle = c + 1
            if checkpoint and (state.cycle % checkpoint_every == 0 or state.cycle == n_cycles):
                save_checkpoint(checkpoint, state, config)
        ran += 1
    times = trace.times[lo:hi]
    complete = all(s.cycle >= n_cycles for s in states.values())
    return Replay(trace, times, states, config, org, complete)


def _run_cycle(
    state: PolicyState,
    name: str,
    trace: Trace,
    now: pd.Timestamp,
    a: int,
    b: int,
    lo: int,
    history_steps: int,
    shared: SharedForecast,
    solver: str | None,
    time_limit: float | None,
    on_error: str = "raise",
) -> None:
    policy = get_policy(name)
    expire(state, now)
    accounts = tuple(state.org.account_ids)
    row: dict[str, Any] = {"method": name, "status": "", "fallback": "", "seconds": 0.0}
    if policy.method is not None:
        h0 = max(0, a - history_steps)
        history = trace.history(state.placement, accounts, h0, a)
        per_workload = None
        if policy.method.startswith("mip") and not any(w.endswith("/*") for w in trace.workloads):
            per_workload = trace.workload_history(state.placement, h0, a)
        ctx = CycleContext(now, trace, history, accounts, shared, solver, time_limit, per_workload)
        t0 = time.perf_counter()
        try:
            plan, row = decide(policy, state, ctx)
        except Exception as exc:  # any solver or model failure: keep the state, log it
            if on_error == "raise":
                raise
            plan = None
            first = str(exc).splitlines()[0] if str(exc) else ""
            row = {
                "method": policy.method,
                "status": "error",
                "fallback": f"planning failed, state kept: {type(exc).__name__}: {first}"[:300],
                "seconds": time.perf_counter() - t0,
            }
        if plan is not None:
            apply_plan(state, plan, now)
    accounts = tuple(state.org.account_ids)
    usage = trace.by_account(state.placement, accounts, a, b)
    times = trace.times[a:b]
    if policy.play in ("cohort", "cohort+shadow"):
        play_cohort(state, accounts, usage, times, a - lo, shadows=policy.play == "cohort+shadow")
    else:
        play_planned(state, accounts, usage, times, a - lo, cohort=policy.play == "planned+cohort")
    state.cycles.append({"policy": name, "cycle": state.cycle, "ts": str(now), **row})
